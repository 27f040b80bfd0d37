/*  main.c: shoal-controller: options, objects, the loop, tear-down.

    The controller loads the definitions, binds the ROUTER socket workers
    connect to, serves the REST API, and runs the loop that owns all state
    until SIGINT or SIGTERM.                                              */
#include "http_api.h"
#include "loop.h"

#include "shoal/defs.h"
#include "shoal/endpoint.h"
#include "shoal/log.h"
#include "shoal/options.h"
#include "shoal/protocol.h"
#include "shoal/spawn.h"
#include "shoal/store.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
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
    const char *log_level;       /* error, warn, info or debug             */
    const char *log_format;      /* text or json                           */
    const char *token_file;      /* file holding the REST API token        */
    const char *state_dir;       /* where the SQLite state lives           */
    const char *curve_secret;    /* controller's CURVE key pair            */
    const char *curve_clients;   /* authorized workers' public keys        */
    bool plaintext;              /* allow no CURVE beyond loopback         */
    bool healthcheck;            /* probe a running controller and exit    */
    bool ephemeral;              /* keep state in memory only              */
    int http_threads;            /* civetweb handler threads               */
    int event_buffer;            /* events held for the event stream       */
    int max_spawn_entries;       /* bound on one spawn list                */
    int heartbeat_ms;            /* heartbeat period told to workers       */
    int retain_finished;         /* seconds an ended job is kept; 0: ever  */
    bool check_only;             /* load the definitions and exit          */
    bool compact_state;          /* compact the state store and exit       */
} s_options_t;

#define S_PROGRAM "shoal-controller"
/*  Seconds an ended job is kept (--retain-finished): 7 days.             */
#define S_RETAIN_FINISHED (7 * 24 * 3600)
/*  Read when neither --config nor SHOAL_CONFIG names a file, if present.  */
#define S_DEFAULT_CONFIG "/etc/shoal/controller.yaml"

static const char *const s_log_levels[] = { "error", "warn", "info",
                                            "debug", NULL };
static const char *const s_log_formats[] = { "text", "json", NULL };

/*  Reads flags, environment and configuration file into `opts` with
    `parser` (which owns the strings read from the file), then checks
    what the options say together. Returns SHOAL_OPTIONS_*.               */
static int
s_parse_options (shoal_options_t **parser_p, int argc, char *argv[],
                 s_options_t *opts)
{
    *opts = (s_options_t) {
        .data_dir = "./shoal-data",
        .http = "127.0.0.1:8080",
        .bind = "tcp://127.0.0.1:5555",
        .log_level = "info",
        .log_format = "text",
        .http_threads = 16,
        .event_buffer = SHOAL_EVENTS_CAPACITY,
        .max_spawn_entries = SHOAL_SPAWN_MAX_ENTRIES,
        .heartbeat_ms = SHOAL_HEARTBEAT_MS,
        .retain_finished = S_RETAIN_FINISHED,
    };
    const shoal_option_t table[] = {
        { "definitions", 'd', "SHOAL_DEFINITIONS", SHOAL_OPT_STRING, "FILE",
          "task and job definitions (YAML)", 0, 0, NULL, &opts->definitions,
          0 },
        { "data-dir", 'D', "SHOAL_DATA_DIR", SHOAL_OPT_STRING, "DIR",
          "shared volume holding job directories\n(default ./shoal-data)",
          0, 0, NULL, &opts->data_dir, 0 },
        { "http", 'H', "SHOAL_HTTP", SHOAL_OPT_STRING, "HOST:PORT",
          "REST API address (default 127.0.0.1:8080)", 0, 0, NULL,
          &opts->http, 0 },
        { "bind", 'b', "SHOAL_BIND", SHOAL_OPT_STRING, "ENDPOINT",
          "ZeroMQ endpoint workers connect to\n"
          "(default tcp://127.0.0.1:5555)", 0, 0, NULL, &opts->bind, 0 },
        { "state-dir", 0, "SHOAL_STATE_DIR", SHOAL_OPT_STRING, "DIR",
          "durable state (SQLite, keep it on a local\n"
          "disk; default DATA-DIR/state)", 0, 0, NULL, &opts->state_dir, 0 },
        { "ephemeral", 0, "SHOAL_EPHEMERAL", SHOAL_OPT_BOOL, NULL,
          "keep state in memory only: a restart\nforgets every job", 0, 0,
          NULL, &opts->ephemeral, 0 },
        { "curve-secret", 0, "SHOAL_CURVE_SECRET", SHOAL_OPT_STRING, "FILE",
          "this controller's key pair (NAME.key from\nshoal-keygen)", 0, 0,
          NULL, &opts->curve_secret, 0 },
        { "curve-clients", 0, "SHOAL_CURVE_CLIENTS", SHOAL_OPT_STRING, "DIR",
          "public keys of the workers admitted;\n"
          "add one to admit a worker, no restart", 0, 0, NULL,
          &opts->curve_clients, 0 },
        { "plaintext", 0, "SHOAL_PLAINTEXT", SHOAL_OPT_BOOL, NULL,
          "allow workers without CURVE on an endpoint\n"
          "beyond loopback (trusted networks only)", 0, 0, NULL,
          &opts->plaintext, 0 },
        { "http-threads", 0, "SHOAL_HTTP_THREADS", SHOAL_OPT_INT, "N",
          "HTTP handler threads, 1..1024 (default 16)", 1, 1024, NULL,
          &opts->http_threads, 0 },
        { "event-buffer", 0, "SHOAL_EVENT_BUFFER", SHOAL_OPT_INT, "N",
          "events held for clients of the event\n"
          "stream that reconnect, 1..1048576\n"
          "(default 65536)", 1, 1048576, NULL, &opts->event_buffer, 0 },
        { "max-spawn-entries", 0, "SHOAL_MAX_SPAWN_ENTRIES", SHOAL_OPT_INT,
          "N", "entries one spawn list may have (tasks\n"
          "in a spawned stage), 1..1000000\n(default 1000000)", 1,
          SHOAL_SPAWN_MAX_ENTRIES, NULL, &opts->max_spawn_entries, 0 },
        { "heartbeat-ms", 0, "SHOAL_HEARTBEAT_MS", SHOAL_OPT_INT, "MS",
          "least heartbeat period: it grows with the\n"
          "workers (0.4 ms each, whole seconds, at most\n"
          "10 s) and is told to them; a worker silent\n"
          "3 periods is lost, 100..60000 (default 1000)", 100, 60000, NULL,
          &opts->heartbeat_ms, 0 },
        { "retain-finished", 0, "SHOAL_RETAIN_FINISHED", SHOAL_OPT_INT,
          "SECONDS", "forget a job this long after it ended\n"
          "(succeeded, failed, canceled), in memory\n"
          "and in the state store; its directory\n"
          "stays. 0 keeps every job, 0..315360000\n"
          "(default 604800, 7 days)", 0, 315360000, NULL,
          &opts->retain_finished, 0 },
        { "api-token-file", 0, "SHOAL_API_TOKEN_FILE", SHOAL_OPT_STRING,
          "FILE", "require the token in FILE (first line)\n"
          "in the X-Shoal-Token header of /api/ calls\n"
          "(or the token itself in SHOAL_API_TOKEN;\n"
          "default: the API is open)", 0, 0, NULL, &opts->token_file, 0 },
        { "log-level", 0, "SHOAL_LOG_LEVEL", SHOAL_OPT_CHOICE, "LEVEL",
          "error, warn, info or debug (default info)", 0, 0, s_log_levels,
          &opts->log_level, 0 },
        { "log-format", 0, "SHOAL_LOG_FORMAT", SHOAL_OPT_CHOICE, "FORMAT",
          "text, or json: one object per line with\n"
          "time, level, component, message, and job\n"
          "and task where they apply (default text)", 0, 0, s_log_formats,
          &opts->log_format, 0 },
        { "check", 0, NULL, SHOAL_OPT_BOOL, NULL,
          "check the definitions file and exit", 0, 0, NULL,
          &opts->check_only, SHOAL_OPT_NO_FILE },
        { "compact-state", 0, NULL, SHOAL_OPT_BOOL, NULL,
          "give back the disk space of forgotten jobs:\n"
          "rewrite the state store without its free\n"
          "pages and exit; the controller must be\n"
          "stopped", 0, 0, NULL, &opts->compact_state,
          SHOAL_OPT_NO_FILE },
        { "healthcheck", 0, NULL, SHOAL_OPT_BOOL, NULL,
          "ask the controller at --http whether it\n"
          "is ready (GET /readyz); exit 0 if so, 1\n"
          "if not (for container health checks)", 0, 0, NULL,
          &opts->healthcheck, SHOAL_OPT_NO_FILE },
    };
    shoal_options_t *parser = *parser_p = shoal_options_new (
        S_PROGRAM, "--definitions FILE [OPTION]...",
        "Serve the shoal REST API and dispatch tasks to workers.",
        "Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up error,\n"
        "2 on a usage error.\n", S_DEFAULT_CONFIG, table,
        sizeof table / sizeof table[0]);
    if (!parser) {
        fprintf (stderr, S_PROGRAM ": out of memory\n");
        return SHOAL_OPTIONS_USAGE;
    }
    int rc = shoal_options_parse (parser, argc, argv, stdout, stderr);
    if (rc != SHOAL_OPTIONS_RUN || opts->healthcheck)
        return rc;      /* --healthcheck needs nothing but --http */
    if (opts->compact_state) {
        /* It needs only where the state is. */
        if (opts->ephemeral)
            return shoal_options_usage_error (parser, stderr,
                "--compact-state and --ephemeral exclude each other: an "
                "ephemeral controller keeps no state store");
        shoal_log_init ("controller", opts->log_level);
        return SHOAL_OPTIONS_RUN;
    }
    if (!opts->definitions)
        return shoal_options_usage_error (parser, stderr,
                                          "--definitions FILE is required");
    if (!opts->curve_secret != !opts->curve_clients)
        return shoal_options_usage_error (parser, stderr,
            "--curve-secret and --curve-clients go together");
    if (!opts->curve_secret && !opts->plaintext
        && !shoal_endpoint_is_local (opts->bind))
        return shoal_options_usage_error (parser, stderr,
            "%s (%s) can be reached from the network: give it CURVE keys "
            "(--curve-secret, --curve-clients; see shoal-keygen) or allow "
            "plain text with --plaintext", opts->bind,
            shoal_options_origin (parser, "bind"));
    /* Both were checked against their lists: neither can fail. */
    shoal_log_format (opts->log_format);
    shoal_log_init ("controller", opts->log_level);
    return SHOAL_OPTIONS_RUN;
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

/*  The state directory (--state-dir, default <data-dir>/state) and the
    store's file in it.                                                    */
static void
s_state_paths (const s_options_t *opts, char *state_dir, size_t dir_size,
               char *store_path, size_t path_size)
{
    snprintf (state_dir, dir_size, "%s", opts->state_dir ? opts->state_dir
                                                          : opts->data_dir);
    if (!opts->state_dir)
        strncat (state_dir, "/state", dir_size - strlen (state_dir) - 1);
    snprintf (store_path, path_size, "%s/shoal.db", state_dir);
}

/*  `bytes` as "512 KiB" or "3.2 MiB".                                    */
static const char *
s_size_text (uint64_t bytes, char *text, size_t size)
{
    if (bytes < 1024 * 1024)
        snprintf (text, size, "%.0f KiB", bytes / 1024.0);
    else
        snprintf (text, size, "%.1f MiB", bytes / 1048576.0);
    return text;
}

/*  --compact-state: VACUUM the store of a stopped controller. The store
    is opened as a controller opens it, so one running on it makes this
    fail ("in use by another controller") instead of waiting.             */
static int
s_compact_state (const s_options_t *opts)
{
    char state_dir[4096];
    char store_path[4200];
    s_state_paths (opts, state_dir, sizeof state_dir, store_path,
                   sizeof store_path);
    if (access (store_path, F_OK)) {
        fprintf (stderr, "shoal-controller: no state store at %s: %s\n",
                 store_path, strerror (errno));
        return 1;
    }
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (store_path, &err);
    shoal_store_sizes_t sizes;
    if (!store || shoal_store_compact (store, &sizes, &err)) {
        fprintf (stderr, "shoal-controller: %s\n", err.message);
        shoal_store_destroy (&store);
        return 1;
    }
    shoal_store_destroy (&store);
    char before[32], free_before[32], after[32];
    printf ("%s: %s, of which %s free, now %s\n", store_path,
            s_size_text (sizes.before, before, sizeof before),
            s_size_text (sizes.free_before, free_before, sizeof free_before),
            s_size_text (sizes.after, after, sizeof after));
    return 0;
}

/*  Runs the controller with checked options; returns the exit status.    */
static int
s_run (s_options_t opts)
{
    int rc;
    if (opts.healthcheck)
        return s_healthcheck (opts.http);
    if (opts.compact_state)
        return s_compact_state (&opts);

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
    s_state_paths (&opts, state_dir, sizeof state_dir, store_path,
                   sizeof store_path);
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
        .event_buffer = (size_t) opts.event_buffer,
        .max_spawn_entries = (size_t) opts.max_spawn_entries,
        .heartbeat_ms = opts.heartbeat_ms,
        .retain_finished_ms = (int64_t) opts.retain_finished * 1000,
    };
    shoal_loop_t *loop = shoal_loop_new (&config, &err);
    if (loop)
        http = shoal_http_new (defs, opts.data_dir, opts.http,
                               opts.http_threads, token,
                               shoal_loop_mailbox (loop), &err);
    if (http)
        shoal_http_set_events (http, shoal_loop_events (loop));
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

int
main (int argc, char *argv[])
{
    s_options_t opts;
    shoal_options_t *parser = NULL;
    int rc = s_parse_options (&parser, argc, argv, &opts);
    if (rc == SHOAL_OPTIONS_RUN)
        rc = s_run (opts);
    else if (rc == SHOAL_OPTIONS_EXIT)
        rc = 0;
    shoal_options_destroy (&parser);    /* owns strings `opts` points to */
    return rc;
}
