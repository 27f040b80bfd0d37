/*  cli.h: what the pieces of the `shoal` command line share.

    The command line is a table of commands (commands.c), each a function
    that takes a session and the parsed options. options.c reads argv into
    a cli_options_t against that table; session.c holds the HTTP client
    and the output settings, and turns API problems into messages; watch.c
    follows a job until it ends; logs.c prints and follows task logs.

    Exit codes are part of the interface (docs/cli.md): a script may act
    on them, so they are named here once.                                  */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include "client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_PROGRAM "shoal"
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/*  Exit codes.                                                            */
enum {
    CLI_EXIT_OK = 0,            /* done; a waited-for job succeeded        */
    CLI_EXIT_JOB_FAILED = 1,    /* a waited-for job failed                 */
    CLI_EXIT_USAGE = 2,         /* bad command line                        */
    CLI_EXIT_JOB_CANCELED = 3,  /* a waited-for job was canceled           */
    CLI_EXIT_API = 4,           /* the API refused, or could not be reached*/
};

/*  Bounds on repeated options.                                            */
#define CLI_PARAMS_MAX 256
#define CLI_HEADERS_MAX 64
#define CLI_ARGS_MAX 2

/*  Longest job id the command line sends (the controller's are 16 hex
    digits; it refuses ids over 64 bytes).                                 */
#define CLI_ID_MAX 255

/*  How often `logs -f` asks the controller again, and how often --wait
    shows the job's progress at most.                                      */
#define CLI_POLL_MS 200

/*  Option bits: which options a command accepts.                          */
enum {
    CLI_OPT_JSON = 1u << 0,
    CLI_OPT_PARAM = 1u << 1,
    CLI_OPT_HEADER = 1u << 2,
    CLI_OPT_NO_START = 1u << 3,
    CLI_OPT_WAIT = 1u << 4,
    CLI_OPT_IDEMPOTENCY_KEY = 1u << 5,
    CLI_OPT_STATE = 1u << 6,
    CLI_OPT_LIMIT = 1u << 7,
    CLI_OPT_FOLLOW = 1u << 8,
};

struct shoal_options;

/*  The command line, parsed. Strings point into argv, the environment or
    the configuration file read by `config` (freed by
    cli_options_release).                                                  */
typedef struct {
    const char *url;            /* --url, SHOAL_URL, the file, the default */
    const char *token;          /* --token, SHOAL_TOKEN or the file        */
    const char *token_file;     /* --token-file or the file's token-file   */
    const char *config_path;    /* --config, NULL when not given           */
    struct shoal_options *config;  /* owns the file's strings, or NULL     */
    bool json;                  /* --json: print the API's JSON            */
    bool wait;                  /* --wait: follow the job to its end       */
    bool no_start;              /* --no-start: submit in state created     */
    bool follow;                /* -f: follow logs                         */
    const char *idempotency_key;  /* --idempotency-key, NULL when absent   */
    const char *state;          /* --state filter, NULL when absent        */
    long limit;                 /* --limit, 0 when absent                  */
    const char *params[CLI_PARAMS_MAX];   /* -p KEY=VALUE, in order        */
    size_t param_count;         /* entries in params                       */
    const char *headers[CLI_HEADERS_MAX]; /* -H 'Name: value', in order    */
    size_t header_count;        /* entries in headers                      */
    const char *args[CLI_ARGS_MAX];       /* the command's operands        */
    size_t arg_count;           /* entries in args                         */
} cli_options_t;

/*  What a command runs with. Invariant: `client` is set while a command
    runs; `color` implies `tty`.                                           */
typedef struct {
    cli_client_t *client;       /* the controller's API; owned             */
    bool json;                  /* --json                                  */
    bool tty;                   /* stdout is a terminal that takes ANSI    */
    bool color;                 /* tty and NO_COLOR unset or empty         */
} cli_session_t;

typedef struct cli_command cli_command_t;

/*  A command's function: returns its exit code.                           */
typedef int (cli_run_fn) (cli_session_t *session,
                          const cli_options_t *options);

/*  One entry of the command table.                                        */
struct cli_command {
    const char *name;           /* what the user types                     */
    const char *operands;       /* "ID [TASK]" in the synopsis             */
    const char *summary;        /* one line for the command list           */
    const char *details;        /* more help, NULL for none                */
    unsigned accepts;           /* CLI_OPT_* bits beyond the global ones   */
    size_t min_args;            /* operands needed                         */
    size_t max_args;            /* operands allowed                        */
    cli_run_fn *run;            /* NULL for `help`, which options handles  */
};

/* ---- commands.c ------------------------------------------------------ */

/*  The command called `name`, or NULL. The table is static.               */
const cli_command_t *cli_command_find (const char *name);

/*  Prints every command with its summary, for --help.                     */
void cli_commands_print (FILE *out);

/* ---- options.c ------------------------------------------------------- */

/*  Reads argv, the environment and the configuration file into
    `options` and points *command at the command to run. Returns -1 to go
    on, or an exit code when there is nothing to run: 0 after --help or
    --version, CLI_EXIT_USAGE after a usage error (already reported on
    stderr). Call cli_options_release afterwards in every case.           */
int cli_options_parse (int argc, char **argv, cli_options_t *options,
                       const cli_command_t **command);

/*  Frees what cli_options_parse read from the configuration file.         */
void cli_options_release (cli_options_t *options);

/*  Reports a usage error: "shoal: <message>" and a pointer to --help, on
    stderr. Returns CLI_EXIT_USAGE.                                        */
int cli_usage_error (const char *format, ...)
    __attribute__ ((format (printf, 1, 2)));

/* ---- session.c ------------------------------------------------------- */

/*  Sets up `self` from the options: reads --token-file, makes the client,
    looks at stdout and NO_COLOR. Returns 0, or an exit code after saying
    why on stderr.                                                         */
int cli_session_open (cli_session_t *self, const cli_options_t *options);

/*  Frees what the session owns; safe on a session that failed to open.   */
void cli_session_close (cli_session_t *self);

/*  Sends a request and returns the JSON body of a 2xx answer (the
    caller's); when `response` is not NULL it keeps the raw answer too (the
    caller clears it). On any other answer reports it (see
    cli_session_report) and returns NULL.                                  */
json_t *cli_session_call (cli_session_t *self, const char *method,
                          const char *path, const char *body,
                          const char *const *headers, size_t count,
                          cli_response_t *response);

/*  Reports a failed request on stderr: a problem as "shoal: <title>:
    <detail> (field <field>)", anything else with its status. With --json
    a problem body is also printed on stdout, as the API sent it.          */
void cli_session_report (cli_session_t *self, const cli_response_t *response);

/*  Reports a request that got no answer: "shoal: <client error>".         */
void cli_session_report_unreachable (cli_session_t *self);

/*  Writes an API body to stdout as received, with a final newline.        */
void cli_print_raw (const cli_response_t *response);

/*  Builds "/api/v1/jobs/<id><suffix>" with the id percent-encoded.
    Returns 0, or CLI_EXIT_USAGE after reporting an id over CLI_ID_MAX.    */
int cli_job_path (const char *id, const char *suffix, char *out,
                  size_t size);

/*  Tasks per page when a command reads a job's task list: the API's
    default. The controller's loop renders each page and dispatches
    nothing meanwhile, and every task carries its job's params, so a
    bigger page costs the cluster more and may pass CLI_BODY_MAX.         */
#define CLI_TASK_PAGE 1000

/*  Called with each page of a task list, in order (`page` and its raw
    `response` borrowed, `number` from 0, `last` for the last one the list
    gives). Returns 0 to go on, or not 0 (after reporting) to stop.       */
typedef int (cli_page_fn) (json_t *page, cli_response_t *response,
                           size_t number, bool last, void *arg);

/*  GETs the task list of job `id` page after page, following `next`, and
    hands each page to `page_fn` as it comes, so that only one page is in
    memory at a time. `max` (> 0) is the most tasks to fetch; `query`
    ("state=failed&stage=2", values percent-encoded; "" for none) goes
    with each page. Returns 0, or -1 when a request or `page_fn` failed
    (reported).                                                            */
int cli_job_task_pages (cli_session_t *self, const char *id,
                        const char *query, long max, cli_page_fn *page_fn,
                        void *arg);

/*  A string member of a JSON object, or `fallback` when it is absent or
    not a string. Borrowed from `object`.                                  */
const char *cli_json_str (const json_t *object, const char *key,
                          const char *fallback);

/*  An integer member of a JSON object, or 0.                              */
long long cli_json_int (const json_t *object, const char *key);

/*  Sleeps `ms` milliseconds, resuming after signals.                      */
void cli_sleep_ms (long ms);

/* ---- watch.c --------------------------------------------------------- */

/*  Follows job `id` until it has ended, reading its event stream (and
    resuming it with Last-Event-ID when it breaks), and shows its
    progress at most every CLI_POLL_MS: bars redrawn in place on a terminal, one line per
    change otherwise, nothing with --json (which prints the final job).
    Tolerates the controller being away for a while (a restart). Returns
    CLI_EXIT_OK, CLI_EXIT_JOB_FAILED or CLI_EXIT_JOB_CANCELED by how the
    job ended, or CLI_EXIT_API after reporting an error.                   */
int cli_watch_job (cli_session_t *session, const char *id);

/*  The exit code that goes with a job's final state.                      */
int cli_exit_for_state (const char *state);

/* ---- logs.c ---------------------------------------------------------- */

/*  `shoal logs ID [TASK] [-f]`.                                           */
int cli_cmd_logs (cli_session_t *session, const cli_options_t *options);

#endif
