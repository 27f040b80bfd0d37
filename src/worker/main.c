/*  main.c: shoal-worker, the process that runs tasks for a controller.

    Thin on purpose: read the options (shoal/options.h: flags over
    environment over configuration file), take ownership of the signals, build the runner and the
    agent, run the agent's loop, tear down in reverse order.

    Signals are main's alone. czmq is told not to install its handlers;
    ours only write one byte to a non-blocking self-pipe, which the agent
    polls beside its socket, so no real work ever happens in a handler.    */
#include "agent.h"
#include "runner.h"

#include "shoal/endpoint.h"
#include "shoal/log.h"
#include "shoal/options.h"
#include "shoal/protocol.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "unknown"
#endif

#define S_PROGRAM "shoal-worker"
#define S_DEFAULT_CONNECT "tcp://127.0.0.1:5555"
#define S_DEFAULT_DATA_DIR "./shoal-data"
#define S_DEFAULT_LOG_LEVEL "info"
#define S_SLOTS_MAX 4096
#define S_NAME_MAX 255

/*  Exit codes: 2 for a usage error, 1 for a failure at run time.          */
/*  Seconds a SIGTERM leaves running tasks: under the 30 s Kubernetes
    gives a pod between SIGTERM and SIGKILL, with room to say BYE.         */
#define S_DEFAULT_DRAIN_S 25

#define S_EXIT_USAGE 2
#define S_EXIT_FAILURE 1

/*  The options, checked.                                                  */
typedef struct {
    const char *connect;        /* controller endpoint                     */
    const char *data_dir;       /* shared volume                           */
    int slots;                  /* tasks at once                           */
    const char *name;           /* worker name, NULL: <host>-<pid>         */
    const char *log_level;      /* error|warn|info|debug                   */
    const char *log_format;     /* text|json                               */
    int drain_s;                /* seconds running tasks get on SIGTERM    */
    const char *curve_secret;   /* our key pair file                       */
    const char *curve_server;   /* the controller's public key file        */
    bool plaintext;             /* no CURVE beyond loopback, on purpose    */
    const char *health_file;    /* touched while connected                 */
    bool healthcheck;           /* check the health file and exit          */
} s_options_t;

/*  Read when neither --config nor SHOAL_CONFIG names a file, if present.  */
#define S_DEFAULT_CONFIG "/etc/shoal/worker.yaml"

/*  The self-pipe: [0] polled by the agent, [1] written by the handlers.   */
static int s_wake[2] = { -1, -1 };

static void
s_on_signal (int sig)
{
    int saved = errno;
    char byte = sig == SIGCHLD ? SHOAL_AGENT_WAKE_CHILD : SHOAL_AGENT_WAKE_STOP;
    //  A full pipe already holds a wake-up; losing this byte is harmless.
    ssize_t written = write (s_wake[1], &byte, 1);
    (void) written;
    errno = saved;
}

static long
s_online_cpus (void)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    /* In a container the machine's CPUs are not ours: take the CPUs we
       may run on, and a cgroup v2 CPU quota when there is one. */
    cpu_set_t set;
    if (sched_getaffinity (0, sizeof set, &set) == 0 && CPU_COUNT (&set) > 0
        && CPU_COUNT (&set) < cpus)
        cpus = CPU_COUNT (&set);
    FILE *file = fopen ("/sys/fs/cgroup/cpu.max", "re");
    if (file) {
        long quota = 0, period = 0;
        if (fscanf (file, "%ld %ld", &quota, &period) == 2 && quota > 0
            && period > 0) {
            long limit = (quota + period - 1) / period;
            if (limit < cpus)
                cpus = limit;
        }
        fclose (file);
    }
    if (cpus < 1)
        return 1;
    return cpus > S_SLOTS_MAX ? S_SLOTS_MAX : cpus;
}

static const char *const s_log_levels[] = { "error", "warn", "info",
                                            "debug", NULL };
static const char *const s_log_formats[] = { "text", "json", NULL };

/*  Reads flags, environment and configuration file into `options` with
    `parser` (which owns the strings read from the file), then checks
    what they say together. Returns SHOAL_OPTIONS_*.                       */
static int
s_parse (shoal_options_t **parser_p, int argc, char **argv,
         s_options_t *options)
{
    long cpus = s_online_cpus ();
    *options = (s_options_t) {
        .connect = S_DEFAULT_CONNECT, .data_dir = S_DEFAULT_DATA_DIR,
        .slots = (int) cpus, .log_level = S_DEFAULT_LOG_LEVEL,
        .log_format = "text", .drain_s = S_DEFAULT_DRAIN_S,
    };
    char slots_help[160], drain_help[256];
    snprintf (slots_help, sizeof slots_help, "tasks run at once, 1..%d\n"
              "(default: CPUs it may use, here %ld)", S_SLOTS_MAX, cpus);
    snprintf (drain_help, sizeof drain_help,
              "on SIGTERM, take no new tasks and let\n"
              "running ones finish this long, 0..3600;\n"
              "the rest are stopped and run elsewhere\n"
              "(default %d, under Kubernetes' 30 s\n"
              "grace period)", S_DEFAULT_DRAIN_S);
    const shoal_option_t table[] = {
        { "connect", 0, "SHOAL_CONNECT", SHOAL_OPT_STRING, "ENDPOINT",
          "controller endpoint\n(default " S_DEFAULT_CONNECT ")", 0, 1024,
          NULL, &options->connect, 0 },
        { "data-dir", 0, "SHOAL_DATA_DIR", SHOAL_OPT_STRING, "DIR",
          "shared data directory holding jobs/\n"
          "(default " S_DEFAULT_DATA_DIR ")", 0, 1024, NULL,
          &options->data_dir, 0 },
        { "slots", 0, "SHOAL_SLOTS", SHOAL_OPT_INT, "N", slots_help, 1,
          S_SLOTS_MAX, NULL, &options->slots, 0 },
        { "name", 0, "SHOAL_WORKER_NAME", SHOAL_OPT_STRING, "NAME",
          "worker name (default <hostname>-<pid>)", 0, S_NAME_MAX, NULL,
          &options->name, 0 },
        { "drain-timeout", 0, "SHOAL_DRAIN_TIMEOUT", SHOAL_OPT_INT,
          "SECONDS", drain_help, 0, 3600, NULL, &options->drain_s, 0 },
        { "curve-secret", 0, "SHOAL_CURVE_SECRET", SHOAL_OPT_STRING, "FILE",
          "this worker's key pair (NAME.key from\nshoal-keygen)", 0, 0,
          NULL, &options->curve_secret, 0 },
        { "curve-server", 0, "SHOAL_CURVE_SERVER", SHOAL_OPT_STRING, "FILE",
          "the controller's public key file", 0, 0, NULL,
          &options->curve_server, 0 },
        { "plaintext", 0, "SHOAL_PLAINTEXT", SHOAL_OPT_BOOL, NULL,
          "connect without CURVE to a controller\n"
          "beyond loopback (trusted networks only)", 0, 0, NULL,
          &options->plaintext, 0 },
        { "health-file", 0, "SHOAL_HEALTH_FILE", SHOAL_OPT_STRING, "FILE",
          "touch FILE at each heartbeat while the\ncontroller has us", 0, 0,
          NULL, &options->health_file, 0 },
        { "log-format", 0, "SHOAL_LOG_FORMAT", SHOAL_OPT_CHOICE, "FORMAT",
          "text, or json: one object per line with\n"
          "time, level, component, message, and job\n"
          "and task where they apply (default text)", 0, 0, s_log_formats,
          &options->log_format, 0 },
        { "log-level", 0, "SHOAL_LOG_LEVEL", SHOAL_OPT_CHOICE, "LEVEL",
          "error, warn, info or debug\n(default " S_DEFAULT_LOG_LEVEL ")", 0,
          0, s_log_levels, &options->log_level, 0 },
        { "healthcheck", 0, NULL, SHOAL_OPT_BOOL, NULL,
          "exit 0 if --health-file was touched in\n"
          "the last 10 s, else 1 (container probes)", 0, 0, NULL,
          &options->healthcheck, SHOAL_OPT_NO_FILE },
    };
    shoal_options_t *parser = *parser_p = shoal_options_new (
        S_PROGRAM, "[OPTION]...",
        "Connect to a shoal controller and run the tasks it sends.",
        "Exit status: 0 after SIGINT/SIGTERM, 1 on a failure at run time,\n"
        "2 on a usage error.\n", S_DEFAULT_CONFIG, table,
        sizeof table / sizeof table[0]);
    if (!parser) {
        fprintf (stderr, S_PROGRAM ": out of memory\n");
        return SHOAL_OPTIONS_USAGE;
    }
    int rc = shoal_options_parse (parser, argc, argv, stdout, stderr);
    if (rc != SHOAL_OPTIONS_RUN)
        return rc;
    if (options->healthcheck && !options->health_file)
        return shoal_options_usage_error (parser, stderr,
                                          "--healthcheck needs --health-file");
    if (!options->curve_secret != !options->curve_server)
        return shoal_options_usage_error (parser, stderr,
            "--curve-secret and --curve-server go together");
    if (!options->healthcheck && !options->curve_secret
        && !options->plaintext && !shoal_endpoint_is_local (options->connect))
        return shoal_options_usage_error (parser, stderr,
            "%s (%s) is beyond loopback: give CURVE keys (--curve-secret, "
            "--curve-server; see shoal-keygen) or allow plain text with "
            "--plaintext", options->connect,
            shoal_options_origin (parser, "connect"));
    /* Both were checked against their lists: neither can fail. */
    shoal_log_format (options->log_format);
    shoal_log_init ("worker", options->log_level);
    return SHOAL_OPTIONS_RUN;
}

/*  Tasks get /dev/null and a log file as 0, 1 and 2; were one of those
    closed here, the next open would take its number and dup2 in the
    child could land a descriptor on itself.                               */
static void
s_keep_stdio_open (void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl (fd, F_GETFD) < 0 && errno == EBADF) {
            int null_fd = open ("/dev/null", O_RDWR);
            if (null_fd >= 0 && null_fd != fd)
                close (null_fd);    // cannot happen: lowest fd is `fd`
        }
}

static int
s_catch_signals (void)
{
    if (pipe2 (s_wake, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction (SIGTERM, &action, NULL) < 0
        || sigaction (SIGINT, &action, NULL) < 0)
        return -1;
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction (SIGCHLD, &action, NULL) < 0)
        return -1;
    //  A closed stderr or log reader must not kill the worker; tasks get
    //  the default back before exec.
    signal (SIGPIPE, SIG_IGN);
    return 0;
}

/*  Runs the worker with checked options; `parser` names where a value
    came from in errors. Returns the exit status.                          */
static int
s_run (const s_options_t *options, shoal_options_t *parser)
{
    if (options->healthcheck) {
        /* Healthy: the controller welcomed us and heartbeats flow. */
        struct stat st;
        bool fresh = stat (options->health_file, &st) == 0
                     && time (NULL) - st.st_mtime <= 10;
        printf ("%s\n", fresh ? "healthy" : "unhealthy");
        return fresh ? 0 : 1;
    }
    const char *connect = options->connect;
    const char *data_dir = options->data_dir;
    int slots = options->slots;
    int drain_s = options->drain_s;

    char host[256];
    if (gethostname (host, sizeof host) < 0)
        snprintf (host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char default_name[sizeof host + 32];
    snprintf (default_name, sizeof default_name, "%s-%ld", host,
              (long) getpid ());
    const char *name = options->name ? options->name : default_name;

    //  Before zsys_init, or czmq installs SIGINT and SIGTERM handlers.
    zsys_handler_set (NULL);
    zsys_init ();
    if (s_catch_signals () < 0) {
        fprintf (stderr, S_PROGRAM ": cannot set up signals: %s\n",
                 strerror (errno));
        zsys_shutdown ();
        return S_EXIT_FAILURE;
    }

    shoal_error_t err;
    shoal_error_clear (&err);
    shoal_runner_t *runner = shoal_runner_new (data_dir, (size_t) slots, &err);
    if (!runner) {
        fprintf (stderr, S_PROGRAM ": %s: %s\n",
                 shoal_options_origin (parser, "data-dir"), err.message);
        zsys_shutdown ();
        return S_EXIT_FAILURE;
    }
    shoal_agent_config_t config = {
        .endpoint = connect, .name = name, .host = host, .slots = slots,
        .drain_timeout_ms = (int64_t) drain_s * 1000,
        .curve_secret = options->curve_secret,
        .curve_server = options->curve_server,
        .health_file = options->health_file,
    };
    shoal_agent_t *agent = shoal_agent_new (&config, runner, &err);
    if (!agent) {
        //  libzmq refuses a malformed endpoint at once: a usage error.
        bool usage = strcmp (err.field, "connect") == 0;
        if (usage)
            fprintf (stderr, S_PROGRAM ": %s: %s\n",
                     shoal_options_origin (parser, "connect"), err.message);
        else
            fprintf (stderr, S_PROGRAM ": %s\n", err.message);
        shoal_runner_destroy (&runner);
        zsys_shutdown ();
        return usage ? S_EXIT_USAGE : S_EXIT_FAILURE;
    }
    shoal_info ("data directory %s", shoal_runner_data_dir (runner));

    int rc = shoal_agent_run (agent, s_wake[0]);

    shoal_agent_destroy (&agent);
    shoal_runner_destroy (&runner);
    zsys_shutdown ();
    close (s_wake[0]);
    close (s_wake[1]);
    return rc == 0 ? 0 : S_EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
    s_keep_stdio_open ();
    s_options_t options;
    shoal_options_t *parser = NULL;
    int rc = s_parse (&parser, argc, argv, &options);
    if (rc == SHOAL_OPTIONS_RUN)
        rc = s_run (&options, parser);
    else if (rc == SHOAL_OPTIONS_EXIT)
        rc = 0;
    shoal_options_destroy (&parser);    /* owns strings `options` uses */
    return rc;
}
