/*  main.c: shoal-loadgen, a load generator speaking the real protocols.

    Thin on purpose: read the options, build the simulated workers (sim.c)
    and the REST submitter (http.c), run one measurement, print the
    figures as one JSON object. The run goes:

      1. sample the controller (--controller-pid) before anything connects;
      2. connect the simulated workers and wait until each has a WELCOME;
      3. start the window: sample the controller, start submitting jobs;
      4. end the window at --duration, or once --tasks TASKs arrived and
         every job was submitted (and, with --wait, has ended);
      5. sample the controller, stop everything, report.

    The figures are defined in docs/benchmarks.md; every one is in the
    JSON even when the run gave it no sample (count 0, values 0).          */
#include "baseline.h"
#include "http.h"
#include "probe.h"
#include "sim.h"
#include "stats.h"
#include "tracker.h"

#include "shoal/protocol.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "unknown"
#endif

#define S_PROGRAM "shoal-loadgen"
#define S_EXIT_FAILURE 1
#define S_EXIT_USAGE 2

/*  How often the main thread looks at the end conditions.                 */
#define S_TICK_NS (2 * 1000000LL)

/*  Longest worker name prefix and host name sent in HELLO.                */
#define S_NAME_MAX 64

/*  Everything the options say.                                            */
typedef struct {
    lg_sim_config_t sim;         /* simulated workers (sim.workers 0: none) */
    lg_submit_config_t submit;   /* REST submission (submit.jobs 0: none)   */
    bool wait;                   /* wait for the submitted jobs to end      */
    int poll_ms;                 /* poll period while waiting               */
    uint64_t tasks;              /* end once this many TASKs arrived        */
    double duration_s;           /* or after this long, 0: not used         */
    double timeout_s;            /* give up after this long                 */
    double connect_timeout_s;    /* for every worker to be welcomed         */
    pid_t controller;            /* sampled from /proc, 0: none             */
    const char *output;          /* JSON file, NULL: stdout                 */
    long write_spawn;            /* write spawn.json and exit, -1: no       */
    double probe_s;              /* probe the machine this long, 0: no      */
    const char *baseline;        /* play the baseline controller there      */
    const char *baseline_http;   /* play the baseline REST server there     */
    uint64_t await_workers;      /* ... starting jobs after this many HELLOs */
    bool quiet;
    char name_prefix[S_NAME_MAX + 1];
    char host[S_NAME_MAX + 1];
} s_options_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: " S_PROGRAM " [OPTIONS]\n"
        "Loads a shoal controller with simulated workers (ZeroMQ, the real\n"
        "wire protocol) and REST job submissions; prints the figures as JSON.\n"
        "\n"
        "Simulated workers:\n"
        "  -c, --connect ENDPOINT  controller's --bind endpoint\n"
        "                          [default tcp://127.0.0.1:5555]\n"
        "  -w, --workers N         simulated workers, 0..%d [0]\n"
        "  -s, --slots N           slots of each worker, 1..%d [1]\n"
        "  -t, --threads N         threads sharing the workers, 1..%d [1]\n"
        "      --zmtp IMPL         builtin: each simulated worker's TCP\n"
        "                          connection is read and written by its\n"
        "                          thread (ZMTP 3.0, NULL mechanism);\n"
        "                          libzmq: a libzmq DEALER socket each,\n"
        "                          two thread hops per message [builtin]\n"
        "      --io-threads N      libzmq I/O threads (--zmtp libzmq) [1]\n"
        "      --handshake-ms MS   a builtin connection not welcomed MS\n"
        "                          after connecting is made again [10000]\n"
        "      --delay-ms MS       answer each plain task MS after it came\n"
        "                          [0: at once]; spawn tasks are always\n"
        "                          answered at once\n"
        "      --delay-jitter J    each delay uniform in MS x [1-J, 1+J],\n"
        "                          0..1 [0: all alike, finishing in step]\n"
        "      --fail SHARE        share of plain tasks answered with exit\n"
        "                          code 1, 0..1 [0]\n"
        "      --vanish N          N workers vanish (close without BYE) ...\n"
        "      --vanish-after K    ... on receiving their Kth task [1]\n"
        "      --spawn N           entries {\"i\": k} in each spawn RESULT,\n"
        "                          0..%d [1000]\n"
        "      --name PREFIX       workers are named PREFIX-<n> [lg-<pid>]\n"
        "\n"
        "REST submission:\n"
        "  -H, --http HOST:PORT    controller's REST address [127.0.0.1:8080]\n"
        "      --token TOKEN       X-Shoal-Token header [env SHOAL_API_TOKEN]\n"
        "  -j, --job CLASS         job class to submit\n"
        "  -p, --params JSON       params of each job [{}]\n"
        "  -n, --jobs N            jobs to submit, 0..%d [0]\n"
        "  -r, --rate R            jobs per second [0: back to back]\n"
        "      --connections N     keep-alive connections, 1..%d [1]\n"
        "      --wait              after submitting, poll each job until it\n"
        "                          has ended\n"
        "      --poll-ms MS        poll period while waiting [10]\n"
        "      --tcp-quickack      acknowledge each response segment at once\n"
        "                          (diagnosis: hides a server's Nagle and\n"
        "                          delayed-ACK stall)\n"
        "\n"
        "The run and its figures:\n"
        "      --tasks N           end once N TASK messages arrived (and\n"
        "                          every job was submitted)\n"
        "  -d, --duration S        end after S seconds, whatever else\n"
        "      --timeout S         fail after S seconds [600]\n"
        "      --connect-timeout S fail if the workers are not all welcomed\n"
        "                          within S seconds [120]\n"
        "      --controller-pid P  sample CPU time and memory of process P\n"
        "                          from /proc\n"
        "  -o, --output FILE       write the JSON there [stdout]\n"
        "  -q, --quiet             no progress on stderr\n"
        "\n"
        "The baseline controller (the floor to read latencies against):\n"
        "      --baseline-controller ENDPOINT\n"
        "                          play the least a controller can do on\n"
        "                          ENDPOINT (bound): welcome workers, start\n"
        "                          --jobs jobs at --rate by itself, each a\n"
        "                          spawn task, its list's tasks, one last\n"
        "                          task, and hand out tasks as credits free;\n"
        "                          no REST, store or retries. Load it with\n"
        "                          another shoal-loadgen's workers (--tasks)\n"
        "      --await-workers N   start the jobs once N workers said HELLO\n"
        "                          [0: at once]\n"
        "      --baseline-http HOST:PORT\n"
        "                          play the least a REST server can do:\n"
        "                          answer every request at once with 201\n"
        "                          and a job id. Load it with another\n"
        "                          shoal-loadgen's -H, -n and --rate\n"
        "\n"
        "Other:\n"
        "      --probe-machine S   time a fixed unit of CPU work every 2 ms\n"
        "                          for S seconds, write how steady the\n"
        "                          machine is (stalls) as JSON and exit\n"
        "      --write-spawn N     write spawn.json with N entries {\"i\": k}\n"
        "                          in the current directory and exit (a spawn\n"
        "                          task for real workers)\n"
        "  -h, --help              this text\n"
        "  -V, --version           the version\n"
        "\n"
        "Without --duration, the run needs --tasks or --jobs to know when\n"
        "it is over. Exit status: 0 done, 1 failed, 2 usage error.\n",
        LG_SIM_WORKERS_MAX, LG_SIM_SLOTS_MAX, LG_SIM_THREADS_MAX,
        LG_SIM_SPAWN_MAX, LG_SUBMIT_JOBS_MAX, LG_SUBMIT_CONNECTIONS_MAX);
}

/* ---- options ------------------------------------------------------ */

static int
s_usage_error (const char *option, const char *text, const char *want)
{
    fprintf (stderr, S_PROGRAM ": %s '%s': %s (see --help)\n", option, text,
             want);
    return -1;
}

static int
s_long (const char *option, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || end == text || *end || value < min || value > max) {
        char want[96];
        snprintf (want, sizeof want, "want a whole number %ld..%ld", min,
                  max);
        return s_usage_error (option, text, want);
    }
    *out = value;
    return 0;
}

static int
s_double (const char *option, const char *text, double min, double max,
          double *out)
{
    char *end;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || end == text || *end || !(value >= min && value <= max)) {
        char want[96];
        snprintf (want, sizeof want, "want a number %g..%g", min, max);
        return s_usage_error (option, text, want);
    }
    *out = value;
    return 0;
}

/*  Names go into HELLO's JSON as they are: only [A-Za-z0-9_.-].           */
static int
s_name (const char *option, const char *text, char *out, size_t size)
{
    size_t len = strlen (text);
    if (len == 0 || len >= size
        || strspn (text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_.-") != len) {
        char want[96];
        snprintf (want, sizeof want, "want 1..%zu of [A-Za-z0-9_.-]",
                  size - 1);
        return s_usage_error (option, text, want);
    }
    memcpy (out, text, len + 1);
    return 0;
}

/*  Returns 0, 1 when --help or --version was answered, -1 on an error.    */
static int
s_parse_options (int argc, char *argv[], s_options_t *opts)
{
    *opts = (s_options_t) {
        .sim = { .endpoint = "tcp://127.0.0.1:5555", .slots = 1,
                 .threads = 1, .io_threads = 1, .vanish_after = 1,
                 .spawn_entries = 1000 },
        .submit = { .address = "127.0.0.1:8080", .params = "{}",
                    .connections = 1, .token = getenv ("SHOAL_API_TOKEN") },
        .poll_ms = 10,
        .timeout_s = 600,
        .connect_timeout_s = 120,
        .write_spawn = -1,
    };
    snprintf (opts->name_prefix, sizeof opts->name_prefix, "lg-%ld",
              (long) getpid ());
    if (gethostname (opts->host, sizeof opts->host) != 0
        || strspn (opts->host, "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
               != strlen (opts->host)
        || !opts->host[0])
        strcpy (opts->host, "loadgen");
    if (opts->submit.token && !*opts->submit.token)
        opts->submit.token = NULL;
    enum {
        OPT_IO_THREADS = 256, OPT_DELAY, OPT_DELAY_JITTER, OPT_FAIL, OPT_VANISH,
        OPT_VANISH_AFTER, OPT_SPAWN, OPT_NAME, OPT_TOKEN, OPT_CONNECTIONS,
        OPT_WAIT, OPT_POLL, OPT_TASKS, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT,
        OPT_PID, OPT_WRITE_SPAWN, OPT_QUICKACK, OPT_ZMTP, OPT_HANDSHAKE,
        OPT_BASELINE, OPT_AWAIT_WORKERS, OPT_PROBE, OPT_BASELINE_HTTP
    };
    static const struct option long_options[] = {
        { "connect", required_argument, NULL, 'c' },
        { "workers", required_argument, NULL, 'w' },
        { "slots", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },
        { "io-threads", required_argument, NULL, OPT_IO_THREADS },
        { "zmtp", required_argument, NULL, OPT_ZMTP },
        { "handshake-ms", required_argument, NULL, OPT_HANDSHAKE },
        { "delay-ms", required_argument, NULL, OPT_DELAY },
        { "delay-jitter", required_argument, NULL, OPT_DELAY_JITTER },
        { "fail", required_argument, NULL, OPT_FAIL },
        { "vanish", required_argument, NULL, OPT_VANISH },
        { "vanish-after", required_argument, NULL, OPT_VANISH_AFTER },
        { "spawn", required_argument, NULL, OPT_SPAWN },
        { "name", required_argument, NULL, OPT_NAME },
        { "http", required_argument, NULL, 'H' },
        { "token", required_argument, NULL, OPT_TOKEN },
        { "job", required_argument, NULL, 'j' },
        { "params", required_argument, NULL, 'p' },
        { "jobs", required_argument, NULL, 'n' },
        { "rate", required_argument, NULL, 'r' },
        { "connections", required_argument, NULL, OPT_CONNECTIONS },
        { "wait", no_argument, NULL, OPT_WAIT },
        { "tcp-quickack", no_argument, NULL, OPT_QUICKACK },
        { "poll-ms", required_argument, NULL, OPT_POLL },
        { "tasks", required_argument, NULL, OPT_TASKS },
        { "duration", required_argument, NULL, 'd' },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "controller-pid", required_argument, NULL, OPT_PID },
        { "output", required_argument, NULL, 'o' },
        { "quiet", no_argument, NULL, 'q' },
        { "write-spawn", required_argument, NULL, OPT_WRITE_SPAWN },
        { "baseline-controller", required_argument, NULL, OPT_BASELINE },
        { "probe-machine", required_argument, NULL, OPT_PROBE },
        { "baseline-http", required_argument, NULL, OPT_BASELINE_HTTP },
        { "await-workers", required_argument, NULL, OPT_AWAIT_WORKERS },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    long n;
    double x;
    while ((c = getopt_long (argc, argv, "c:w:s:t:H:j:p:n:r:d:o:qhV",
                             long_options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
            case 'c': opts->sim.endpoint = optarg; break;
            case 'w':
                rc = s_long ("--workers", optarg, 0, LG_SIM_WORKERS_MAX, &n);
                opts->sim.workers = (int) n;
                break;
            case 's':
                rc = s_long ("--slots", optarg, 1, LG_SIM_SLOTS_MAX, &n);
                opts->sim.slots = (int) n;
                break;
            case 't':
                rc = s_long ("--threads", optarg, 1, LG_SIM_THREADS_MAX, &n);
                opts->sim.threads = (int) n;
                break;
            case OPT_IO_THREADS:
                rc = s_long ("--io-threads", optarg, 1, 64, &n);
                opts->sim.io_threads = (int) n;
                break;
            case OPT_HANDSHAKE:
                rc = s_long ("--handshake-ms", optarg, 1, 3600000, &n);
                opts->sim.handshake_ns = (int64_t) n * 1000000;
                break;
            case OPT_ZMTP:
                if (strcmp (optarg, "builtin") == 0)
                    opts->sim.zmtp = LG_SIM_ZMTP_BUILTIN;
                else if (strcmp (optarg, "libzmq") == 0)
                    opts->sim.zmtp = LG_SIM_ZMTP_LIBZMQ;
                else {
                    fprintf (stderr, S_PROGRAM ": --zmtp must be builtin or "
                             "libzmq, not '%s'\n", optarg);
                    rc = -1;
                }
                break;
            case OPT_DELAY:
                rc = s_double ("--delay-ms", optarg, 0, 86400000, &x);
                opts->sim.delay_ns = (int64_t) (x * 1e6);
                break;
            case OPT_DELAY_JITTER:
                rc = s_double ("--delay-jitter", optarg, 0, 1,
                               &opts->sim.delay_jitter);
                break;
            case OPT_FAIL:
                rc = s_double ("--fail", optarg, 0, 1, &opts->sim.fail_share);
                break;
            case OPT_VANISH:
                rc = s_long ("--vanish", optarg, 0, LG_SIM_WORKERS_MAX, &n);
                opts->sim.vanish = (int) n;
                break;
            case OPT_VANISH_AFTER:
                rc = s_long ("--vanish-after", optarg, 1, 1000000000, &n);
                opts->sim.vanish_after = (int) n;
                break;
            case OPT_SPAWN:
                rc = s_long ("--spawn", optarg, 0, LG_SIM_SPAWN_MAX, &n);
                opts->sim.spawn_entries = (uint32_t) n;
                break;
            case OPT_NAME:
                rc = s_name ("--name", optarg, opts->name_prefix,
                             sizeof opts->name_prefix);
                break;
            case 'H': opts->submit.address = optarg; break;
            case OPT_TOKEN: opts->submit.token = optarg; break;
            case 'j': opts->submit.job = optarg; break;
            case 'p': opts->submit.params = optarg; break;
            case 'n':
                rc = s_long ("--jobs", optarg, 0, LG_SUBMIT_JOBS_MAX, &n);
                opts->submit.jobs = (uint64_t) n;
                break;
            case 'r':
                rc = s_double ("--rate", optarg, 0, 1e7, &opts->submit.rate);
                break;
            case OPT_CONNECTIONS:
                rc = s_long ("--connections", optarg, 1,
                             LG_SUBMIT_CONNECTIONS_MAX, &n);
                opts->submit.connections = (int) n;
                break;
            case OPT_WAIT: opts->wait = true; break;
            case OPT_QUICKACK: opts->submit.quickack = true; break;
            case OPT_POLL:
                rc = s_long ("--poll-ms", optarg, 1, 60000, &n);
                opts->poll_ms = (int) n;
                break;
            case OPT_TASKS:
                rc = s_long ("--tasks", optarg, 1, LONG_MAX, &n);
                opts->tasks = (uint64_t) n;
                break;
            case 'd':
                rc = s_double ("--duration", optarg, 0.001, 1e6,
                               &opts->duration_s);
                break;
            case OPT_TIMEOUT:
                rc = s_double ("--timeout", optarg, 0.001, 1e7,
                               &opts->timeout_s);
                break;
            case OPT_CONNECT_TIMEOUT:
                rc = s_double ("--connect-timeout", optarg, 0.001, 1e6,
                               &opts->connect_timeout_s);
                break;
            case OPT_PID:
                rc = s_long ("--controller-pid", optarg, 1, INT32_MAX, &n);
                opts->controller = (pid_t) n;
                break;
            case 'o': opts->output = optarg; break;
            case 'q': opts->quiet = true; break;
            case OPT_WRITE_SPAWN:
                rc = s_long ("--write-spawn", optarg, 0, LG_SIM_SPAWN_MAX, &n);
                opts->write_spawn = n;
                break;
            case OPT_BASELINE: opts->baseline = optarg; break;
            case OPT_BASELINE_HTTP: opts->baseline_http = optarg; break;
            case OPT_PROBE:
                rc = s_double ("--probe-machine", optarg, 0.01, 86400,
                               &opts->probe_s);
                break;
            case OPT_AWAIT_WORKERS:
                rc = s_long ("--await-workers", optarg, 0, LONG_MAX, &n);
                opts->await_workers = (uint64_t) n;
                break;
            case 'h': s_usage (stdout); return 1;
            case 'V': printf (S_PROGRAM " " SHOAL_VERSION "\n"); return 1;
            default: s_usage (stderr); return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf (stderr, S_PROGRAM ": unexpected argument '%s' (see --help)\n",
                 argv[optind]);
        return -1;
    }
    if (opts->write_spawn >= 0 || opts->probe_s > 0)
        return 0;
    if (opts->baseline_http) {
        if (opts->baseline || opts->sim.workers || opts->submit.jobs) {
            fprintf (stderr, S_PROGRAM ": --baseline-http plays the REST "
                     "server: its clients are another shoal-loadgen's "
                     "(drop --baseline-controller, --workers and --jobs)\n");
            return -1;
        }
        return 0;
    }
    if (opts->baseline) {
        if (opts->sim.workers || opts->tasks || opts->wait) {
            fprintf (stderr, S_PROGRAM ": --baseline-controller plays the "
                     "controller: its workers are another shoal-loadgen's "
                     "(drop --workers, --tasks and --wait)\n");
            return -1;
        }
        if (!opts->submit.jobs) {
            fprintf (stderr, S_PROGRAM ": --baseline-controller needs "
                     "--jobs N, the jobs it starts\n");
            return -1;
        }
        return 0;
    }
    if (opts->await_workers) {
        fprintf (stderr, S_PROGRAM ": --await-workers is an option of "
                 "--baseline-controller\n");
        return -1;
    }
    if (opts->sim.vanish > opts->sim.workers) {
        fprintf (stderr, S_PROGRAM ": --vanish %d is more than --workers %d\n",
                 opts->sim.vanish, opts->sim.workers);
        return -1;
    }
    if (!opts->sim.workers && !opts->submit.jobs) {
        fprintf (stderr, S_PROGRAM ": nothing to do: give --workers or "
                 "--jobs (see --help)\n");
        return -1;
    }
    if (!opts->duration_s && !opts->tasks && !opts->submit.jobs) {
        fprintf (stderr, S_PROGRAM ": the run has no end: give --duration, "
                 "--tasks or --jobs (see --help)\n");
        return -1;
    }
    if (opts->tasks && !opts->sim.workers) {
        fprintf (stderr, S_PROGRAM ": --tasks counts what simulated workers "
                 "receive: give --workers too\n");
        return -1;
    }
    opts->submit.keep_ids = opts->wait;
    opts->sim.name_prefix = opts->name_prefix;
    opts->sim.host = opts->host;
    return 0;
}

/* ---- --write-spawn --------------------------------------------------- */

static int
s_write_spawn (long entries)
{
    FILE *file = fopen ("spawn.json.tmp", "w");
    if (!file) {
        fprintf (stderr, S_PROGRAM ": cannot write spawn.json.tmp: %s\n",
                 strerror (errno));
        return S_EXIT_FAILURE;
    }
    fputc ('[', file);
    for (long i = 0; i < entries; i++)
        fprintf (file, "%s{\"i\":%ld}", i ? "," : "", i);
    fputs ("]\n", file);
    if (fclose (file) || rename ("spawn.json.tmp", "spawn.json")) {
        fprintf (stderr, S_PROGRAM ": cannot write spawn.json: %s\n",
                 strerror (errno));
        return S_EXIT_FAILURE;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------ */

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal (int sig)
{
    s_interrupted = 1;
}

static double
s_own_cpu_s (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec
           / 1e6 + (double) usage.ru_stime.tv_sec
           + (double) usage.ru_stime.tv_usec / 1e6;
}

static void
s_sleep_ns (int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000,
                           .tv_nsec = ns % 1000000000 };
    nanosleep (&ts, NULL);
}

/*  Everything measured in one run.                                        */
typedef struct {
    double connect_s;            /* until every worker was welcomed        */
    double window_s;             /* the measurement window                 */
    bool controller_seen;        /* the /proc samples below are valid      */
    lg_proc_sample_t idle;       /* before any worker connected            */
    lg_proc_sample_t start;      /* at the start of the window             */
    lg_proc_sample_t end;        /* at its end                             */
    double own_cpu_s;            /* this process during the window         */
    lg_sim_stats_t sim;
    lg_submit_stats_t submit;
    lg_wait_stats_t wait;
    uint64_t untracked_jobs;
    bool timed_out;
    char error[512];             /* why the run failed, "" if it did not   */
} s_run_t;

static json_t *
s_report (const s_options_t *opts, s_run_t *run, int64_t window_start)
{
    const lg_sim_stats_t *sim = &run->sim;
    double span_s = sim->first_task_ns && sim->last_result_ns > sim->first_task_ns
                        ? (double) (sim->last_result_ns - sim->first_task_ns) / 1e9
                        : 0;
    json_t *workers = json_pack (
        "{s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}",
        "count", opts->sim.workers, "slots", opts->sim.slots,
        "zmtp", opts->sim.zmtp == LG_SIM_ZMTP_LIBZMQ ? "libzmq" : "builtin",
        "welcomed", (json_int_t) sim->welcomed,
        "vanished", (json_int_t) sim->vanished,
        "reconnects", (json_int_t) sim->reconnects,
        "disconnects", (json_int_t) sim->disconnects,
        "handshake_timeouts", (json_int_t) sim->handshake_timeouts,
        "heartbeats_sent", (json_int_t) sim->heartbeats,
        "connect_s", run->connect_s,
        "cancels", (json_int_t) sim->cancels);
    json_t *tasks = json_pack (
        "{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I}",
        "received", (json_int_t) sim->tasks,
        "spawn_tasks", (json_int_t) sim->spawn_tasks,
        "results", (json_int_t) sim->results,
        "failed", (json_int_t) sim->failed,
        "spawn_entries", (json_int_t) sim->spawn_entries,
        "span_s", span_s,
        "per_second", span_s > 0 ? (double) sim->results / span_s : 0.0,
        "send_errors", (json_int_t) sim->send_errors,
        "bad_messages", (json_int_t) sim->bad_messages);
    double rest_span = run->submit.end_ns > run->submit.start_ns
                           ? (double) (run->submit.end_ns
                                       - run->submit.start_ns) / 1e9
                           : 0;
    json_t *rest = json_pack (
        "{s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:s}",
        "jobs", (json_int_t) opts->submit.jobs,
        "created", (json_int_t) run->submit.created,
        "errors", (json_int_t) run->submit.errors,
        "rate_asked", opts->submit.rate,
        "span_s", rest_span,
        "per_second", rest_span > 0 ? (double) run->submit.created / rest_span
                                    : 0.0,
        "latency_ms", lg_hist_to_json (&run->submit.latency, 1000.0),
        "first_error", run->submit.first_error);
    json_t *jobs = json_pack (
        "{s:I, s:I, s:I, s:f, s:I}",
        "succeeded", (json_int_t) run->wait.succeeded,
        "failed", (json_int_t) run->wait.failed,
        "canceled", (json_int_t) run->wait.canceled,
        "wall_s", run->wait.last_end_ns > window_start
                      ? (double) (run->wait.last_end_ns - window_start) / 1e9
                      : 0.0,
        "untracked", (json_int_t) run->untracked_jobs);
    json_t *controller = json_null ();
    if (run->controller_seen) {
        double cpu = run->end.cpu_s - run->start.cpu_s;
        controller = json_pack (
            "{s:i, s:f, s:f, s:f, s:i, s:i, s:i, s:i}",
            "pid", (int) opts->controller,
            "cpu_s", cpu,
            "cpu_share", run->window_s > 0 ? cpu / run->window_s : 0.0,
            "cpu_us_per_task", sim->results ? cpu * 1e6 / (double) sim->results
                                            : 0.0,
            "rss_kib_idle", (int) run->idle.rss_kib,
            "rss_kib_start", (int) run->start.rss_kib,
            "rss_kib", (int) run->end.rss_kib,
            "hwm_kib", (int) run->end.hwm_kib);
    }
    return json_pack (
        "{s:s, s:f, s:o, s:o, s:o, s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, "
        "s:o, s:{s:f}, s:b, s:s}",
        "tool", S_PROGRAM " " SHOAL_VERSION,
        "window_s", run->window_s,
        "workers", workers,
        "tasks", tasks,
        "dispatch_ms", lg_hist_to_json (&sim->dispatch, 1000.0),
        "dispatch_by_cause_ms",
        "after_result", lg_hist_to_json (&sim->dispatch_result, 1000.0),
        "after_spawn", lg_hist_to_json (&sim->dispatch_spawn, 1000.0),
        "transition_ms", lg_hist_to_json (&sim->transition, 1000.0),
        "fanout_ms", lg_hist_to_json (&sim->fanout, 1000.0),
        "rest", rest,
        "jobs", jobs,
        "controller", controller,
        "options", json_pack ("{s:I, s:f, s:f, s:f, s:i, s:I}",
                              "spawn", (json_int_t) opts->sim.spawn_entries,
                              "delay_ms", (double) opts->sim.delay_ns / 1e6,
                              "delay_jitter", opts->sim.delay_jitter,
                              "fail", opts->sim.fail_share,
                              "threads", opts->sim.threads,
                              "tasks_target", (json_int_t) opts->tasks),
        "loadgen", "cpu_s", run->own_cpu_s,
        "timed_out", run->timed_out,
        "error", run->error);
}

/*  Samples the controller; a process that is gone fails the run.          */
static void
s_sample (const s_options_t *opts, s_run_t *run, lg_proc_sample_t *sample)
{
    if (!opts->controller)
        return;
    if (lg_proc_sample (opts->controller, sample)) {
        if (!run->error[0])
            snprintf (run->error, sizeof run->error,
                      "cannot read /proc/%d: is the controller running?",
                      (int) opts->controller);
        run->controller_seen = false;
    }
}

/*  Waits until every simulated worker was welcomed. Returns 0 or -1.      */
static int
s_wait_welcomed (const s_options_t *opts, lg_sim_t *sim, s_run_t *run)
{
    int64_t start = lg_now_ns ();
    int64_t deadline = start + (int64_t) (opts->connect_timeout_s * 1e9);
    int64_t next_note = start + 1000000000;
    while (lg_sim_welcomed (sim) < (uint64_t) opts->sim.workers) {
        if (lg_sim_failed (sim, run->error, sizeof run->error))
            return -1;
        int64_t now = lg_now_ns ();
        if (s_interrupted) {
            snprintf (run->error, sizeof run->error,
                      "interrupted with %" PRIu64 " of %d workers welcomed",
                      lg_sim_welcomed (sim), opts->sim.workers);
            return -1;
        }
        if (now > deadline) {
            snprintf (run->error, sizeof run->error,
                      "only %" PRIu64 " of %d workers were welcomed within "
                      "%g s", lg_sim_welcomed (sim), opts->sim.workers,
                      opts->connect_timeout_s);
            return -1;
        }
        if (!opts->quiet && now > next_note) {
            fprintf (stderr, S_PROGRAM ": %" PRIu64 "/%d workers welcomed\n",
                     lg_sim_welcomed (sim), opts->sim.workers);
            next_note += 1000000000;
        }
        s_sleep_ns (S_TICK_NS);
    }
    run->connect_s = (double) (lg_now_ns () - start) / 1e9;
    return 0;
}

/*  Runs the window: returns when it is over (run->error set on failure). */
static void
s_window (const s_options_t *opts, lg_sim_t *sim, lg_submit_t *submit,
          s_run_t *run, int64_t start)
{
    int64_t deadline = start + (int64_t) (opts->timeout_s * 1e9);
    int64_t end = opts->duration_s > 0
                      ? start + (int64_t) (opts->duration_s * 1e9) : 0;
    int64_t next_note = start + 1000000000;
    bool waited = false;
    while (true) {
        int64_t now = lg_now_ns ();
        if (sim && lg_sim_failed (sim, run->error, sizeof run->error))
            return;
        if (end && now >= end)
            return;
        bool tasks_done = !opts->tasks || lg_sim_tasks (sim) >= opts->tasks;
        bool submitted = !submit || lg_submit_done (submit);
        if (!end && submitted && opts->wait && !waited && submit) {
            atomic_bool stop = false;
            uint64_t count;
            const lg_job_id_t *ids = lg_submit_ids (submit, &count);
            if (lg_wait_jobs (opts->submit.address, opts->submit.token, ids,
                              count, opts->poll_ms, deadline, &stop,
                              &run->wait, run->error, sizeof run->error))
                return;
            waited = true;
            continue;
        }
        if (!end && tasks_done && submitted)
            return;
        if (now > deadline) {
            run->timed_out = true;
            snprintf (run->error, sizeof run->error,
                      "timed out after %.0f s with %" PRIu64 " tasks "
                      "received", opts->timeout_s,
                      sim ? lg_sim_tasks (sim) : 0);
            return;
        }
        if (s_interrupted) {
            snprintf (run->error, sizeof run->error, "interrupted");
            return;
        }
        if (!opts->quiet && now > next_note) {
            fprintf (stderr, S_PROGRAM ": %.0f s, %" PRIu64 " tasks\n",
                     (double) (now - start) / 1e9,
                     sim ? lg_sim_tasks (sim) : 0);
            next_note += 1000000000;
        }
        s_sleep_ns (S_TICK_NS);
    }
}

static int
s_write_report (const s_options_t *opts, json_t *report)
{
    return lg_json_write (report, opts->output);
}

int
main (int argc, char *argv[])
{
    s_options_t opts;
    int rc = s_parse_options (argc, argv, &opts);
    if (rc)
        return rc > 0 ? 0 : S_EXIT_USAGE;
    if (opts.write_spawn >= 0)
        return s_write_spawn (opts.write_spawn);
    if (opts.probe_s > 0)
        return lg_probe_run (opts.probe_s, opts.output) ? S_EXIT_FAILURE : 0;
    if (opts.baseline_http) {
        lg_baseline_http_config_t http = {
            .address = opts.baseline_http, .output = opts.output,
            .quiet = opts.quiet,
        };
        return lg_baseline_http_run (&http) ? S_EXIT_FAILURE : 0;
    }
    if (opts.baseline) {
        lg_baseline_config_t baseline = {
            .endpoint = opts.baseline, .jobs = opts.submit.jobs,
            .rate = opts.submit.rate, .await_workers = opts.await_workers,
            .output = opts.output, .quiet = opts.quiet,
        };
        return lg_baseline_run (&baseline) ? S_EXIT_FAILURE : 0;
    }

    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    static s_run_t run;   /* large: three histograms per figure set */
    char err[512] = "";
    lg_tracker_t *tracker = lg_tracker_new ();
    lg_sim_t *sim = NULL;
    lg_submit_t *submit = NULL;
    if (!tracker)
        snprintf (err, sizeof err, "out of memory");
    if (tracker && opts.sim.workers)
        sim = lg_sim_new (&opts.sim, tracker, err, sizeof err);
    if (!err[0] && opts.submit.jobs)
        submit = lg_submit_new (&opts.submit, err, sizeof err);
    if (err[0]) {
        fprintf (stderr, S_PROGRAM ": %s\n", err);
        lg_submit_destroy (&submit);
        lg_sim_destroy (&sim);
        lg_tracker_destroy (&tracker);
        return S_EXIT_FAILURE;
    }

    run.controller_seen = opts.controller != 0;
    s_sample (&opts, &run, &run.idle);
    if (sim && lg_sim_start (sim, run.error, sizeof run.error) == 0)
        s_wait_welcomed (&opts, sim, &run);
    int64_t start = lg_now_ns ();
    double own_cpu = s_own_cpu_s ();
    if (!run.error[0]) {
        s_sample (&opts, &run, &run.start);
        if (submit)
            lg_submit_start (submit, run.error, sizeof run.error);
        if (!run.error[0])
            s_window (&opts, sim, submit, &run, start);
    }
    run.window_s = (double) (lg_now_ns () - start) / 1e9;
    run.own_cpu_s = s_own_cpu_s () - own_cpu;
    s_sample (&opts, &run, &run.end);
    if (submit)
        lg_submit_stop (submit, &run.submit);
    if (sim)
        lg_sim_stop (sim, &run.sim);
    run.untracked_jobs = lg_tracker_untracked (tracker);

    json_t *report = s_report (&opts, &run, start);
    rc = report ? s_write_report (&opts, report) : -1;
    json_decref (report);
    if (run.error[0])
        fprintf (stderr, S_PROGRAM ": %s\n", run.error);
    else if (run.submit.errors)
        fprintf (stderr, S_PROGRAM ": %" PRIu64 " submissions failed; the "
                 "first: %s\n", run.submit.errors, run.submit.first_error);
    lg_submit_destroy (&submit);
    lg_sim_destroy (&sim);
    lg_tracker_destroy (&tracker);
    return rc || run.error[0] || run.submit.errors ? S_EXIT_FAILURE : 0;
}
