/*  main.c: shoal-worker, the process that runs tasks for a controller.

    Thin on purpose: read the options (environment variables first, flags
    over them), take ownership of the signals, build the runner and the
    agent, run the agent's loop, tear down in reverse order.

    Signals are main's alone. czmq is told not to install its handlers;
    ours only write one byte to a non-blocking self-pipe, which the agent
    polls beside its socket, so no real work ever happens in a handler.    */
#include "agent.h"
#include "runner.h"

#include "shoal/endpoint.h"
#include "shoal/log.h"
#include "shoal/protocol.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

/*  One option value and where it came from, so an error names that.      */
typedef struct {
    const char *value;          /* NULL: not given, use the default        */
    const char *origin;         /* "--slots" or "SHOAL_SLOTS"              */
} s_value_t;

/*  The options as given, before checking.                                 */
typedef struct {
    s_value_t connect;          /* controller endpoint                     */
    s_value_t data_dir;         /* shared volume                           */
    s_value_t slots;            /* tasks at once                           */
    s_value_t name;             /* worker name                             */
    s_value_t log_level;        /* error|warn|info|debug                   */
    s_value_t log_format;       /* text|json                               */
    s_value_t drain_timeout;    /* seconds running tasks get on SIGTERM    */
    s_value_t curve_secret;     /* our key pair file                       */
    s_value_t curve_server;     /* the controller's public key file        */
    bool plaintext;             /* no CURVE beyond loopback, on purpose    */
    s_value_t health_file;      /* touched while connected                 */
    bool healthcheck;           /* check the health file and exit          */
} s_options_t;

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

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: " S_PROGRAM " [OPTION]...\n"
             "Connect to a shoal controller and run the tasks it sends.\n"
             "\n"
             "  --connect ENDPOINT   controller endpoint\n"
             "                       (default " S_DEFAULT_CONNECT
             "; env SHOAL_CONNECT)\n"
             "  --data-dir DIR       shared data directory holding jobs/\n"
             "                       (default " S_DEFAULT_DATA_DIR
             "; env SHOAL_DATA_DIR)\n"
             "  --slots N            tasks run at once, 1..%d\n"
             "                       (default: CPUs it may use, here %ld; "
             "env SHOAL_SLOTS)\n"
             "  --name NAME          worker name\n"
             "                       (default <hostname>-<pid>; "
             "env SHOAL_WORKER_NAME)\n"
             "  --drain-timeout SECONDS\n"
             "                       on SIGTERM, take no new tasks and let\n"
             "                       running ones finish this long; the\n"
             "                       rest are stopped and run elsewhere\n"
             "                       (default %d, under Kubernetes' 30 s\n"
             "                       grace period; env SHOAL_DRAIN_TIMEOUT)\n"
             "  --curve-secret FILE  this worker's key pair (NAME.key from\n"
             "                       shoal-keygen; env SHOAL_CURVE_SECRET)\n"
             "  --curve-server FILE  the controller's public key file\n"
             "                       (env SHOAL_CURVE_SERVER)\n"
             "  --plaintext          connect without CURVE to a controller\n"
             "                       beyond loopback (trusted networks only;\n"
             "                       env SHOAL_PLAINTEXT=1)\n"
             "  --health-file FILE   touch FILE at each heartbeat while the\n"
             "                       controller has us (env SHOAL_HEALTH_FILE)\n"
             "  --healthcheck        exit 0 if --health-file was touched in\n"
             "                       the last 10 s, else 1 (container probes)\n"
             "  --log-format FORMAT  text, or json (one object per line)\n"
             "                       (default text; env SHOAL_LOG_FORMAT)\n"
             "  --log-level LEVEL    error, warn, info or debug\n"
             "                       (default " S_DEFAULT_LOG_LEVEL
             "; env SHOAL_LOG_LEVEL)\n"
             "  --help               print this help and exit\n"
             "  --version            print the version and exit\n",
             S_SLOTS_MAX, s_online_cpus (), S_DEFAULT_DRAIN_S);
}

static s_value_t
s_from_env (const char *variable)
{
    s_value_t value = { getenv (variable), variable };
    return value;
}

/*  Names where a value came from, `flag` when it is the default.          */
static const char *
s_origin (const s_value_t *value, const char *flag)
{
    return value->origin && value->value ? value->origin : flag;
}

/*  Reads the environment, then the flags. Returns -1 to go on, or the
    exit code for --help, --version and usage errors.                      */
static int
s_parse (int argc, char **argv, s_options_t *options)
{
    options->connect = s_from_env ("SHOAL_CONNECT");
    options->data_dir = s_from_env ("SHOAL_DATA_DIR");
    options->slots = s_from_env ("SHOAL_SLOTS");
    options->name = s_from_env ("SHOAL_WORKER_NAME");
    options->log_level = s_from_env ("SHOAL_LOG_LEVEL");
    options->log_format = s_from_env ("SHOAL_LOG_FORMAT");
    options->drain_timeout = s_from_env ("SHOAL_DRAIN_TIMEOUT");
    options->curve_secret = s_from_env ("SHOAL_CURVE_SECRET");
    options->curve_server = s_from_env ("SHOAL_CURVE_SERVER");
    const char *plain = getenv ("SHOAL_PLAINTEXT");
    options->plaintext = plain && (!strcmp (plain, "1")
                                   || !strcasecmp (plain, "true")
                                   || !strcasecmp (plain, "yes"));
    options->health_file = s_from_env ("SHOAL_HEALTH_FILE");
    options->healthcheck = false;

    enum { O_CONNECT = 256, O_DATA_DIR, O_SLOTS, O_NAME, O_LOG_LEVEL,
           O_DRAIN_TIMEOUT, O_CURVE_SECRET, O_CURVE_SERVER, O_PLAINTEXT,
           O_HEALTH_FILE, O_HEALTHCHECK, O_LOG_FORMAT };
    static const struct option long_options[] = {
        { "connect", required_argument, NULL, O_CONNECT },
        { "data-dir", required_argument, NULL, O_DATA_DIR },
        { "slots", required_argument, NULL, O_SLOTS },
        { "name", required_argument, NULL, O_NAME },
        { "log-level", required_argument, NULL, O_LOG_LEVEL },
        { "drain-timeout", required_argument, NULL, O_DRAIN_TIMEOUT },
        { "curve-secret", required_argument, NULL, O_CURVE_SECRET },
        { "curve-server", required_argument, NULL, O_CURVE_SERVER },
        { "plaintext", no_argument, NULL, O_PLAINTEXT },
        { "health-file", required_argument, NULL, O_HEALTH_FILE },
        { "healthcheck", no_argument, NULL, O_HEALTHCHECK },
        { "log-format", required_argument, NULL, O_LOG_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "hV", long_options, NULL)) != -1) {
        s_value_t flag = { optarg, NULL };
        switch (opt) {
            case O_CONNECT:
                flag.origin = "--connect";
                options->connect = flag;
                break;
            case O_DATA_DIR:
                flag.origin = "--data-dir";
                options->data_dir = flag;
                break;
            case O_SLOTS:
                flag.origin = "--slots";
                options->slots = flag;
                break;
            case O_NAME:
                flag.origin = "--name";
                options->name = flag;
                break;
            case O_LOG_LEVEL:
                flag.origin = "--log-level";
                options->log_level = flag;
                break;
            case O_DRAIN_TIMEOUT:
                flag.origin = "--drain-timeout";
                options->drain_timeout = flag;
                break;
            case O_CURVE_SECRET:
                flag.origin = "--curve-secret";
                options->curve_secret = flag;
                break;
            case O_CURVE_SERVER:
                flag.origin = "--curve-server";
                options->curve_server = flag;
                break;
            case O_PLAINTEXT:
                options->plaintext = true;
                break;
            case O_HEALTH_FILE:
                flag.origin = "--health-file";
                options->health_file = flag;
                break;
            case O_HEALTHCHECK:
                options->healthcheck = true;
                break;
            case O_LOG_FORMAT:
                flag.origin = "--log-format";
                options->log_format = flag;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf (S_PROGRAM " " SHOAL_VERSION "\n");
                return 0;
            default:            // getopt has printed what is wrong
                fprintf (stderr, "Try '" S_PROGRAM " --help'.\n");
                return S_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf (stderr, S_PROGRAM ": unexpected argument '%s'\n"
                         "Try '" S_PROGRAM " --help'.\n", argv[optind]);
        return S_EXIT_USAGE;
    }
    return -1;
}

/*  Parses a slot count; -1 when it is not an integer in 1..S_SLOTS_MAX.   */
static int
s_parse_slots (const char *text)
{
    char *end;
    errno = 0;
    long slots = strtol (text, &end, 10);
    if (errno || end == text || *end || slots < 1 || slots > S_SLOTS_MAX)
        return -1;
    return (int) slots;
}

/*  A non-empty value no longer than `max` bytes, or a message and false.  */
static bool
s_check_text (const s_value_t *value, size_t max)
{
    size_t len = strlen (value->value);
    if (len > 0 && len <= max)
        return true;
    fprintf (stderr, S_PROGRAM ": %s must be 1 to %zu bytes long\n",
             value->origin, max);
    return false;
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

int
main (int argc, char **argv)
{
    s_keep_stdio_open ();
    s_options_t options;
    int code = s_parse (argc, argv, &options);
    if (code >= 0)
        return code;

    if (options.healthcheck) {
        /* Healthy: the controller welcomed us and heartbeats flow. */
        struct stat st;
        if (!options.health_file.value) {
            fprintf (stderr, S_PROGRAM ": --healthcheck needs --health-file\n");
            return S_EXIT_USAGE;
        }
        bool fresh = stat (options.health_file.value, &st) == 0
                     && time (NULL) - st.st_mtime <= 10;
        printf ("%s\n", fresh ? "healthy" : "unhealthy");
        return fresh ? 0 : 1;
    }
    const char *connect = options.connect.value ? options.connect.value
                                                : S_DEFAULT_CONNECT;
    const char *data_dir = options.data_dir.value ? options.data_dir.value
                                                  : S_DEFAULT_DATA_DIR;
    const char *level = options.log_level.value ? options.log_level.value
                                                : S_DEFAULT_LOG_LEVEL;
    int slots = (int) s_online_cpus ();
    if (options.slots.value) {
        slots = s_parse_slots (options.slots.value);
        if (slots < 0) {
            fprintf (stderr, S_PROGRAM ": %s must be an integer from 1 to %d,"
                             " not '%s'\n", options.slots.origin,
                     S_SLOTS_MAX, options.slots.value);
            return S_EXIT_USAGE;
        }
    }
    if (!options.curve_secret.value != !options.curve_server.value) {
        fprintf (stderr, S_PROGRAM ": --curve-secret and --curve-server go "
                         "together\n");
        return S_EXIT_USAGE;
    }
    if (!options.curve_secret.value && !options.plaintext
        && !shoal_endpoint_is_local (connect)) {
        fprintf (stderr, S_PROGRAM ": %s is beyond loopback: give CURVE keys "
                         "(--curve-secret, --curve-server; see shoal-keygen) "
                         "or allow plain text with --plaintext\n", connect);
        return S_EXIT_USAGE;
    }
    int drain_s = S_DEFAULT_DRAIN_S;
    if (options.drain_timeout.value) {
        char *end;
        errno = 0;
        long value = strtol (options.drain_timeout.value, &end, 10);
        if (errno || end == options.drain_timeout.value || *end || value < 0
            || value > 3600) {
            fprintf (stderr, S_PROGRAM ": %s must be a number of seconds "
                             "from 0 to 3600, not '%s'\n",
                     options.drain_timeout.origin,
                     options.drain_timeout.value);
            return S_EXIT_USAGE;
        }
        drain_s = (int) value;
    }
    if (shoal_log_format (options.log_format.value) < 0) {
        fprintf (stderr, S_PROGRAM ": %s must be text or json, not '%s'\n",
                 options.log_format.origin, options.log_format.value);
        return S_EXIT_USAGE;
    }
    if (shoal_log_init ("worker", level) < 0) {
        fprintf (stderr, S_PROGRAM ": %s must be error, warn, info or debug,"
                         " not '%s'\n",
                 s_origin (&options.log_level, "--log-level"), level);
        return S_EXIT_USAGE;
    }
    if ((options.connect.value && !s_check_text (&options.connect, 1024))
        || (options.data_dir.value && !s_check_text (&options.data_dir, 1024))
        || (options.name.value && !s_check_text (&options.name, S_NAME_MAX)))
        return S_EXIT_USAGE;

    char host[256];
    if (gethostname (host, sizeof host) < 0)
        snprintf (host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char default_name[sizeof host + 32];
    snprintf (default_name, sizeof default_name, "%s-%ld", host,
              (long) getpid ());
    const char *name = options.name.value ? options.name.value : default_name;

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
                 s_origin (&options.data_dir, "--data-dir"), err.message);
        zsys_shutdown ();
        return S_EXIT_FAILURE;
    }
    shoal_agent_config_t config = {
        .endpoint = connect, .name = name, .host = host, .slots = slots,
        .drain_timeout_ms = (int64_t) drain_s * 1000,
        .curve_secret = options.curve_secret.value,
        .curve_server = options.curve_server.value,
        .health_file = options.health_file.value,
    };
    shoal_agent_t *agent = shoal_agent_new (&config, runner, &err);
    if (!agent) {
        //  libzmq refuses a malformed endpoint at once: a usage error.
        bool usage = strcmp (err.field, "connect") == 0;
        if (usage)
            fprintf (stderr, S_PROGRAM ": %s: %s\n",
                     s_origin (&options.connect, "--connect"), err.message);
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
