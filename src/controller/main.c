/*  main.c: shoal-controller: options, objects, the loop, tear-down.

    The controller loads the definitions, binds the ROUTER socket workers
    connect to, serves the REST API, and runs the loop that owns all state
    until SIGINT or SIGTERM.                                              */
#include "http_api.h"
#include "loop.h"

#include "shoal/defs.h"
#include "shoal/endpoint.h"
#include "shoal/log.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *definitions;     /* YAML file of tasks and jobs             */
    const char *data_dir;        /* the shared volume                      */
    const char *http;            /* HOST:PORT of the REST API              */
    const char *bind;            /* ZeroMQ endpoint for workers            */
    const char *log_level;
    const char *log_format;      /* text or json                           */
    const char *token_file;      /* file holding the REST API token        */
    const char *state_dir;       /* where the SQLite state lives           */
    const char *curve_secret;    /* controller's CURVE key pair            */
    const char *curve_clients;   /* authorized workers' public keys        */
    bool plaintext;              /* allow no CURVE beyond loopback         */
    bool healthcheck;            /* probe a running controller and exit    */
    bool ephemeral;              /* keep state in memory only              */
    int http_threads;
    bool check_only;             /* load the definitions and exit          */
} s_options_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: shoal-controller --definitions FILE [OPTION]...\n"
        "Serve the shoal REST API and dispatch tasks to workers.\n"
        "\n"
        "  -d, --definitions FILE  task and job definitions (YAML)\n"
        "                          [env SHOAL_DEFINITIONS]\n"
        "  -D, --data-dir DIR      shared volume holding job directories\n"
        "                          [env SHOAL_DATA_DIR, default ./shoal-data]\n"
        "  -H, --http HOST:PORT    REST API address\n"
        "                          [env SHOAL_HTTP, default 127.0.0.1:8080]\n"
        "  -b, --bind ENDPOINT     ZeroMQ endpoint workers connect to\n"
        "                          [env SHOAL_BIND, default tcp://127.0.0.1:5555]\n"
        "      --state-dir DIR     durable state (SQLite, keep it on a local\n"
        "                          disk) [env SHOAL_STATE_DIR,\n"
        "                          default DATA-DIR/state]\n"
        "      --ephemeral         keep state in memory only: a restart\n"
        "                          forgets every job [env SHOAL_EPHEMERAL=1]\n"
        "      --curve-secret FILE  this controller's key pair (NAME.key from\n"
        "                          shoal-keygen) [env SHOAL_CURVE_SECRET]\n"
        "      --curve-clients DIR  public keys of the workers admitted;\n"
        "                          add one to admit a worker, no restart\n"
        "                          [env SHOAL_CURVE_CLIENTS]\n"
        "      --plaintext         allow workers without CURVE on an endpoint\n"
        "                          beyond loopback (trusted networks only)\n"
        "                          [env SHOAL_PLAINTEXT=1]\n"
        "      --http-threads N    HTTP handler threads\n"
        "                          [env SHOAL_HTTP_THREADS, default 16]\n"
        "      --api-token-file FILE  require the token in FILE (first line)\n"
        "                          in the X-Shoal-Token header of /api/ calls\n"
        "                          [env SHOAL_API_TOKEN_FILE, or the token\n"
        "                          itself in SHOAL_API_TOKEN; default: open]\n"
        "      --log-level LEVEL   error, warn, info or debug\n"
        "                          [env SHOAL_LOG_LEVEL, default info]\n"
        "      --log-format FORMAT text, or json (one object per line)\n"
        "                          [env SHOAL_LOG_FORMAT, default text]\n"
        "      --check             check the definitions file and exit\n"
        "      --healthcheck       ask the controller at --http whether it\n"
        "                          is ready (GET /readyz); exit 0 if so, 1\n"
        "                          if not (for container health checks)\n"
        "  -h, --help              show this help and exit\n"
        "  -V, --version           show the version and exit\n"
        "\n"
        "Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up error,\n"
        "2 on a usage error.\n");
}

static const char *
s_env_or (const char *name, const char *fallback)
{
    const char *value = getenv (name);
    return value && *value ? value : fallback;
}

/*  True when environment variable `name` is set to 1, true or yes.       */
static bool
s_env_flag (const char *name)
{
    const char *value = getenv (name);
    return value && (!strcmp (value, "1") || !strcasecmp (value, "true")
                     || !strcasecmp (value, "yes"));
}

static int
s_parse_threads (const char *text, int *threads)
{
    char *end;
    long n = strtol (text, &end, 10);
    if (*end || end == text || n < 1 || n > 1024) {
        fprintf (stderr, "shoal-controller: --http-threads must be from 1 "
                 "to 1024, not '%s'\n", text);
        return -1;
    }
    *threads = (int) n;
    return 0;
}

/*  Returns 0 to run, 1 to exit 0 (help, version), -1 on a usage error. */
static int
s_parse_options (int argc, char *argv[], s_options_t *opts)
{
    *opts = (s_options_t) {
        .definitions = s_env_or ("SHOAL_DEFINITIONS", NULL),
        .data_dir = s_env_or ("SHOAL_DATA_DIR", "./shoal-data"),
        .http = s_env_or ("SHOAL_HTTP", "127.0.0.1:8080"),
        .bind = s_env_or ("SHOAL_BIND", "tcp://127.0.0.1:5555"),
        .log_level = s_env_or ("SHOAL_LOG_LEVEL", "info"),
        .log_format = s_env_or ("SHOAL_LOG_FORMAT", "text"),
        .token_file = s_env_or ("SHOAL_API_TOKEN_FILE", NULL),
        .state_dir = s_env_or ("SHOAL_STATE_DIR", NULL),
        .curve_secret = s_env_or ("SHOAL_CURVE_SECRET", NULL),
        .curve_clients = s_env_or ("SHOAL_CURVE_CLIENTS", NULL),
        .plaintext = s_env_flag ("SHOAL_PLAINTEXT"),
        .ephemeral = s_env_flag ("SHOAL_EPHEMERAL"),
        .http_threads = 16,
    };
    const char *threads = s_env_or ("SHOAL_HTTP_THREADS", NULL);
    if (threads && s_parse_threads (threads, &opts->http_threads))
        return -1;
    enum { OPT_HTTP_THREADS = 256, OPT_LOG_LEVEL, OPT_CHECK, OPT_TOKEN_FILE,
           OPT_STATE_DIR, OPT_EPHEMERAL, OPT_CURVE_SECRET, OPT_CURVE_CLIENTS,
           OPT_PLAINTEXT, OPT_HEALTHCHECK, OPT_LOG_FORMAT };
    static const struct option long_options[] = {
        { "definitions", required_argument, NULL, 'd' },
        { "data-dir", required_argument, NULL, 'D' },
        { "http", required_argument, NULL, 'H' },
        { "bind", required_argument, NULL, 'b' },
        { "http-threads", required_argument, NULL, OPT_HTTP_THREADS },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "check", no_argument, NULL, OPT_CHECK },
        { "api-token-file", required_argument, NULL, OPT_TOKEN_FILE },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "ephemeral", no_argument, NULL, OPT_EPHEMERAL },
        { "curve-secret", required_argument, NULL, OPT_CURVE_SECRET },
        { "curve-clients", required_argument, NULL, OPT_CURVE_CLIENTS },
        { "plaintext", no_argument, NULL, OPT_PLAINTEXT },
        { "healthcheck", no_argument, NULL, OPT_HEALTHCHECK },
        { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long (argc, argv, "d:D:H:b:hV", long_options, NULL))
           != -1) {
        switch (c) {
            case 'd': opts->definitions = optarg; break;
            case 'D': opts->data_dir = optarg; break;
            case 'H': opts->http = optarg; break;
            case 'b': opts->bind = optarg; break;
            case OPT_LOG_LEVEL: opts->log_level = optarg; break;
            case OPT_CHECK: opts->check_only = true; break;
            case OPT_TOKEN_FILE: opts->token_file = optarg; break;
            case OPT_STATE_DIR: opts->state_dir = optarg; break;
            case OPT_EPHEMERAL: opts->ephemeral = true; break;
            case OPT_CURVE_SECRET: opts->curve_secret = optarg; break;
            case OPT_CURVE_CLIENTS: opts->curve_clients = optarg; break;
            case OPT_PLAINTEXT: opts->plaintext = true; break;
            case OPT_HEALTHCHECK: opts->healthcheck = true; break;
            case OPT_LOG_FORMAT: opts->log_format = optarg; break;
            case OPT_HTTP_THREADS:
                if (s_parse_threads (optarg, &opts->http_threads))
                    return -1;
                break;
            case 'h': s_usage (stdout); return 1;
            case 'V': printf ("shoal-controller %s\n", SHOAL_VERSION); return 1;
            default:
                fprintf (stderr, "Try 'shoal-controller --help'.\n");
                return -1;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "shoal-controller: unexpected argument '%s'\n"
                 "Try 'shoal-controller --help'.\n", argv[optind]);
        return -1;
    }
    if (opts->healthcheck)
        return 0;       /* needs nothing but --http */
    if (!opts->definitions) {
        fprintf (stderr, "shoal-controller: --definitions FILE is required\n"
                 "Try 'shoal-controller --help'.\n");
        return -1;
    }
    if (!opts->curve_secret != !opts->curve_clients) {
        fprintf (stderr, "shoal-controller: --curve-secret and "
                 "--curve-clients go together\n");
        return -1;
    }
    if (!opts->curve_secret && !opts->plaintext
        && !shoal_endpoint_is_local (opts->bind)) {
        fprintf (stderr,
                 "shoal-controller: %s can be reached from the network: give "
                 "it CURVE keys (--curve-secret, --curve-clients; see "
                 "shoal-keygen) or allow plain text with --plaintext\n",
                 opts->bind);
        return -1;
    }
    if (shoal_log_format (opts->log_format)) {
        fprintf (stderr, "shoal-controller: --log-format must be text or "
                 "json, not '%s'\n", opts->log_format);
        return -1;
    }
    if (shoal_log_init ("controller", opts->log_level)) {
        fprintf (stderr, "shoal-controller: --log-level must be error, warn, "
                 "info or debug, not '%s'\n", opts->log_level);
        return -1;
    }
    return 0;
}

/* ---- signals: a self-pipe the loop polls ---------------------------- */

static int s_stop_pipe[2] = { -1, -1 };

static void
s_on_signal (int signum)
{
    int saved = errno;
    char byte = (char) signum;
    if (write (s_stop_pipe[1], &byte, 1) < 0) {
        /* The pipe is full: a stop is already pending. */
    }
    errno = saved;
}

static int
s_install_signals (void)
{
    if (pipe2 (s_stop_pipe, O_CLOEXEC | O_NONBLOCK))
        return -1;
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    return 0;
}

/*  Reads the API token: the first line of `path`, or SHOAL_API_TOKEN.
    Returns 0 with *token set (NULL: no token, the API is open), or -1
    after printing why.                                                    */
static int
s_load_token (const char *path, char **token)
{
    *token = NULL;
    if (!path) {
        const char *value = getenv ("SHOAL_API_TOKEN");
        if (value && *value && !(*token = strdup (value)))
            return -1;
        return 0;
    }
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "shoal-controller: cannot read API token file %s: "
                 "%s\n", path, strerror (errno));
        return -1;
    }
    char line[4096] = "";
    if (!fgets (line, sizeof line, file))
        line[0] = '\0';
    fclose (file);
    size_t len = strlen (line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'
                   || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    if (len == 0) {
        fprintf (stderr, "shoal-controller: API token file %s is empty\n",
                 path);
        return -1;
    }
    *token = strdup (line);
    explicit_bzero (line, sizeof line);
    return *token ? 0 : -1;
}

/*  GET /readyz on `address` (HOST:PORT) with plain sockets, so a container
    image needs no curl. Returns the exit status: 0 ready, 1 not.         */
static int
s_healthcheck (const char *address)
{
    char host[256];
    const char *colon = strrchr (address, ':');
    if (!colon || (size_t) (colon - address) >= sizeof host) {
        fprintf (stderr, "shoal-controller: --http must be HOST:PORT, not "
                 "'%s'\n", address);
        return 1;
    }
    snprintf (host, sizeof host, "%.*s", (int) (colon - address), address);
    if (!strcmp (host, "0.0.0.0") || !*host)
        snprintf (host, sizeof host, "127.0.0.1");
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *found = NULL;
    if (getaddrinfo (host, colon + 1, &hints, &found) || !found) {
        fprintf (stderr, "shoal-controller: cannot resolve %s\n", address);
        return 1;
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval timeout = { .tv_sec = 3 };
    int healthy = 0;
    if (fd >= 0) {
        setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    }
    if (fd >= 0 && connect (fd, found->ai_addr, found->ai_addrlen) == 0) {
        const char request[] = "GET /readyz HTTP/1.0\r\n\r\n";
        char answer[64] = "";
        if (write (fd, request, sizeof request - 1)
                == (ssize_t) sizeof request - 1
            && read (fd, answer, sizeof answer - 1) > 12)
            healthy = !strncmp (answer + 8, " 200", 4);
    }
    if (fd >= 0)
        close (fd);
    freeaddrinfo (found);
    printf ("%s\n", healthy ? "ready" : "not ready");
    return healthy ? 0 : 1;
}

/*  Makes `path` and `path`/jobs if missing.                              */
static int
s_prepare_data_dir (const char *path)
{
    char jobs[4096];
    if (mkdir (path, 0755) && errno != EEXIST)
        return -1;
    snprintf (jobs, sizeof jobs, "%s/jobs", path);
    if (mkdir (jobs, 0755) && errno != EEXIST)
        return -1;
    return 0;
}

int
main (int argc, char *argv[])
{
    s_options_t opts;
    int rc = s_parse_options (argc, argv, &opts);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (opts.healthcheck)
        return s_healthcheck (opts.http);

    shoal_error_t err = { 0 };
    shoal_defs_t *defs = shoal_defs_load (opts.definitions, &err);
    if (!defs) {
        fprintf (stderr, "shoal-controller: %s\n", err.message);
        return 1;
    }
    if (opts.check_only) {
        printf ("%s: %zu task classes, %zu job classes: ok\n",
                opts.definitions, shoal_defs_task_class_count (defs),
                shoal_defs_job_class_count (defs));
        shoal_defs_destroy (&defs);
        return 0;
    }
    if (s_prepare_data_dir (opts.data_dir)) {
        fprintf (stderr, "shoal-controller: cannot use data dir %s: %s\n",
                 opts.data_dir, strerror (errno));
        shoal_defs_destroy (&defs);
        return 1;
    }
    /* main owns the signals: czmq must not install its own handlers. */
    zsys_handler_set (NULL);
    zsys_init ();
    if (s_install_signals ()) {
        fprintf (stderr, "shoal-controller: cannot set up signals: %s\n",
                 strerror (errno));
        shoal_defs_destroy (&defs);
        return 1;
    }

    char *token = NULL;
    if (s_load_token (opts.token_file, &token)) {
        shoal_defs_destroy (&defs);
        return 1;
    }
    if (!token && strncmp (opts.http, "127.", 4) && strncmp (opts.http,
                                                             "localhost", 9))
        shoal_warn ("the REST API on %s takes no token: anyone who reaches "
                    "it can run jobs (see --api-token-file)", opts.http);

    char state_dir[4096];
    char store_path[4200];
    snprintf (state_dir, sizeof state_dir, "%s", opts.state_dir
                  ? opts.state_dir : opts.data_dir);
    if (!opts.state_dir)
        strncat (state_dir, "/state", sizeof state_dir - strlen (state_dir) - 1);
    snprintf (store_path, sizeof store_path, "%s/shoal.db", state_dir);
    if (!opts.ephemeral && mkdir (state_dir, 0700) && errno != EEXIST) {
        fprintf (stderr, "shoal-controller: cannot use state dir %s: %s\n",
                 state_dir, strerror (errno));
        free (token);
        shoal_defs_destroy (&defs);
        return 1;
    }

    rc = 1;
    shoal_http_t *http = NULL;
    shoal_loop_config_t config = {
        .defs = defs,
        .data_dir = opts.data_dir,
        .bind = opts.bind,
        .store_path = opts.ephemeral ? NULL : store_path,
        .curve_secret = opts.curve_secret,
        .curve_clients = opts.curve_clients,
    };
    shoal_loop_t *loop = shoal_loop_new (&config, &err);
    if (loop)
        http = shoal_http_new (defs, opts.http, opts.http_threads, token,
                               &err);
    if (token)
        explicit_bzero (token, strlen (token));
    free (token);
    if (!loop || !http)
        fprintf (stderr, "shoal-controller: %s\n", err.message);
    else {
        shoal_info ("shoal-controller %s: REST on http://%s, workers on %s "
                    "(%s), data in %s, %zu job classes", SHOAL_VERSION,
                    opts.http, opts.bind,
                    opts.curve_secret ? "CURVE" : "plain text",
                    opts.data_dir, shoal_defs_job_class_count (defs));
        rc = shoal_loop_run (loop, s_stop_pipe[0]) ? 1 : 0;
        shoal_info ("stopping");
    }
    shoal_http_destroy (&http);
    shoal_loop_destroy (&loop);
    shoal_defs_destroy (&defs);
    zsys_shutdown ();
    close (s_stop_pipe[0]);
    close (s_stop_pipe[1]);
    return rc;
}
