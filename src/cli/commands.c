/*  commands.c: the commands of `shoal` and their table.

    Each command is one static function: build the request, send it
    through the session, then print the API's JSON as received (--json) or
    a table. Adding a command is one function and one row in s_commands.
    `logs` lives in logs.c and following a job in watch.c; both are bigger
    than the rest.

    Tables show the API's values cleaned of control characters (a stage
    name is the definitions author's text, an error the engine's); JSON
    output is passed through untouched, for jq and friends.                */
#include "cli.h"
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Jobs per page when `jobs --limit` asks for more than one page; the
    API's own limit.                                                       */
#define S_PAGE_MAX 1000

/*  Most jobs `jobs --limit` fetches in all.                               */
#define S_JOBS_MAX 1000000

/* ---- formatting helpers ---------------------------------------------- */

/*  "2026-11-28T10:00:00.000Z" -> "2026-11-28T10:00:00Z": milliseconds
    are noise in a table. NULL stays NULL (shown as "-").                 */
static const char *
s_time (const json_t *object, const char *key, char *out, size_t size)
{
    const char *text = cli_json_str (object, key, NULL);
    if (!text)
        return NULL;
    const char *dot = strchr (text, '.');
    if (dot && dot[strspn (dot + 1, "0123456789") + 1] == 'Z')
        snprintf (out, size, "%.*sZ", (int) (dot - text), text);
    else
        snprintf (out, size, "%s", text);
    return out;
}

/*  A duration in ms as "41ms", "2.5s", "3m05s" or "2h07m".                */
static const char *
s_duration (const json_t *value, char *out, size_t size)
{
    if (!json_is_integer (value))
        return NULL;
    long long ms = json_integer_value (value);
    if (ms < 1000)
        snprintf (out, size, "%lldms", ms);
    else if (ms < 60 * 1000)
        snprintf (out, size, "%.1fs", (double) ms / 1000.0);
    else if (ms < 3600 * 1000LL)
        snprintf (out, size, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else
        snprintf (out, size, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
    return out;
}

/*  A JSON scalar as text: strings as they are, null as NULL ("-").       */
static const char *
s_scalar (const json_t *value, char *out, size_t size)
{
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value))
        snprintf (out, size, "%lld", (long long) json_integer_value (value));
    else if (json_is_real (value))
        snprintf (out, size, "%g", json_real_value (value));
    else if (json_is_boolean (value))
        snprintf (out, size, "%s", json_is_true (value) ? "true" : "false");
    else
        return NULL;
    return out;
}

/*  "key=value key=value" of a params object, cut to fit `size`.          */
static const char *
s_params (const json_t *params, char *out, size_t size)
{
    size_t used = 0;
    const char *key;
    json_t *value;
    out[0] = '\0';
    json_object_foreach ((json_t *) params, key, value) {
        char scalar[64];
        const char *text = s_scalar (value, scalar, sizeof scalar);
        int wrote = snprintf (out + used, size - used, "%s%s=%s",
                              used ? " " : "", key, text ? text : "null");
        if (wrote < 0 || (size_t) wrote >= size - used)
            break;
        used += (size_t) wrote;
    }
    return used ? out : NULL;
}

/*  The table a command built, printed, then freed. Returns 0, or
    CLI_EXIT_API when the table could not be built (out of memory).        */
static int
s_print_table (cli_session_t *session, cli_table_t **table_p, bool failed)
{
    if (!*table_p || failed) {
        fprintf (stderr, CLI_PROGRAM ": out of memory\n");
        cli_table_destroy (table_p);
        return CLI_EXIT_API;
    }
    cli_table_print (*table_p, stdout, session->color);
    cli_table_destroy (table_p);
    return CLI_EXIT_OK;
}

/* ---- job views ------------------------------------------------------- */

/*  The stages of a job view as a table.                                   */
static int
s_print_stages (cli_session_t *session, const json_t *job)
{
    static const char *const headers[] = {
        "#", "STAGE", "STATE", "TOTAL", "PENDING", "RUNNING", "SUCCEEDED",
        "FAILED", "CANCELED", "TASK CLASS",
    };
    cli_table_t *table = cli_table_new (10, headers);
    bool failed = !table;
    size_t index;
    json_t *stage;
    json_array_foreach (json_object_get (job, "stages"), index, stage) {
        if (failed)
            break;
        json_t *tasks = json_object_get (stage, "tasks");
        const char *state = cli_json_str (stage, "state", NULL);
        failed |= cli_table_addf (table, "%zu", index) != 0;
        failed |= cli_table_add (table, cli_json_str (stage, "name", NULL),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, state, cli_state_color (state)) != 0;
        static const char *const counts[] = {
            "total", "pending", "running", "succeeded", "failed", "canceled",
        };
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
            failed |= cli_table_addf (table, "%lld",
                                      cli_json_int (tasks, counts[i])) != 0;
        char task_class[256];
        const char *spawn = cli_json_str (stage, "spawn_task", NULL);
        snprintf (task_class, sizeof task_class, "%s%s%s",
                  cli_json_str (stage, "task_class", "-"),
                  spawn ? " via " : "", spawn ? spawn : "");
        failed |= cli_table_add (table, task_class, CLI_COLOR_NONE) != 0;
    }
    return s_print_table (session, &table, failed);
}

/*  One job in full: its fields, then its stages.                          */
static int
s_print_job (cli_session_t *session, const json_t *job)
{
    cli_table_t *table = cli_table_new (2, NULL);
    bool failed = !table;
    char created[64], started[64], finished[64], params[1024];
    const char *state = cli_json_str (job, "state", NULL);
    const char *rows[][2] = {
        { "job", cli_json_str (job, "id", NULL) },
        { "class", cli_json_str (job, "job", NULL) },
        { "state", state },
        { "params", s_params (json_object_get (job, "params"), params,
                              sizeof params) },
        { "created", s_time (job, "created_at", created, sizeof created) },
        { "started", s_time (job, "started_at", started, sizeof started) },
        { "finished", s_time (job, "finished_at", finished,
                              sizeof finished) },
        { "error", cli_json_str (job, "error", NULL) },
    };
    for (size_t i = 0; !failed && i < sizeof rows / sizeof rows[0]; i++) {
        failed |= cli_table_add (table, rows[i][0], CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, rows[i][1],
                                 i == 2 ? cli_state_color (state)
                                        : CLI_COLOR_NONE) != 0;
    }
    if (!failed) {
        failed |= cli_table_add (table, "retries", CLI_COLOR_NONE) != 0;
        failed |= cli_table_addf (table, "%lld",
                                  cli_json_int (job, "retries")) != 0;
    }
    /* The version of the definitions the job runs: `shoal definitions
       VERSION` shows them when the file has changed since. */
    json_t *definitions = json_object_get (job, "definitions");
    if (!failed) {
        failed |= cli_table_add (table, "definitions", CLI_COLOR_NONE) != 0;
        failed |= (json_is_integer (definitions)
                       ? cli_table_addf (table, "%lld",
                                         (long long) json_integer_value (
                                             definitions))
                       : cli_table_add (table, NULL, CLI_COLOR_NONE))
                  != 0;
    }
    int rc = s_print_table (session, &table, failed);
    if (rc)
        return rc;
    fputc ('\n', stdout);
    return s_print_stages (session, job);
}

/* ---- submit, start, cancel, retry ------------------------------------ */

/*  Frees the header lines s_submit made.                                  */
static void
s_free_lines (char **lines, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (lines[i]);
}

/*  Turns the -H values into request header lines. "Name:" with nothing
    after it becomes "Name;", curl's way to send an empty header ("Name:"
    alone would remove it). Returns the count or -1 when out of memory.   */
static int
s_header_lines (const cli_options_t *options, char **lines)
{
    size_t count = 0;
    for (size_t i = 0; i < options->header_count; i++) {
        const char *header = options->headers[i];
        const char *colon = strchr (header, ':');
        bool empty = colon[strspn (colon + 1, " \t") + 1] == '\0';
        char *line = empty ? strndup (header, (size_t) (colon - header) + 1)
                           : strdup (header);
        if (!line) {
            s_free_lines (lines, count);
            return -1;
        }
        if (empty)
            line[colon - header] = ';';
        lines[count++] = line;
    }
    if (options->idempotency_key) {
        size_t len = strlen ("Idempotency-Key: ")
                     + strlen (options->idempotency_key) + 1;
        char *line = malloc (len);
        if (!line) {
            s_free_lines (lines, count);
            return -1;
        }
        snprintf (line, len, "Idempotency-Key: %s", options->idempotency_key);
        lines[count++] = line;
    }
    return (int) count;
}

/*  The submit request's body as JSON text (the caller frees it), or NULL
    after reporting a usage error.                                         */
static char *
s_submit_body (const cli_options_t *options)
{
    json_t *params = json_object ();
    json_t *body = json_pack ("{s:s, s:o, s:b}", "job", options->args[0],
                              "params", params, "start", !options->no_start);
    if (!body) {
        cli_usage_error ("the job name '%s' is not valid UTF-8",
                         options->args[0]);
        return NULL;
    }
    for (size_t i = 0; i < options->param_count; i++) {
        const char *param = options->params[i];
        const char *equals = strchr (param, '=');
        char *key = strndup (param, (size_t) (equals - param));
        json_t *value = json_string (equals + 1);
        int rc = key && value ? json_object_set_new (params, key, value) : -1;
        if (rc && value)
            json_decref (value);
        free (key);
        if (rc) {
            cli_usage_error ("param '%s' is not valid UTF-8", param);
            json_decref (body);
            return NULL;
        }
    }
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    if (!text)
        fprintf (stderr, CLI_PROGRAM ": out of memory\n");
    return text;
}

/*  `shoal submit JOB`: POST /api/v1/jobs, then says which job it made
    (or, with --wait, follows it to its end).                              */
static int
s_submit (cli_session_t *session, const cli_options_t *options)
{
    char *body = s_submit_body (options);
    if (!body)
        return CLI_EXIT_USAGE;
    char *lines[CLI_HEADERS_MAX + 1];
    int count = s_header_lines (options, lines);
    if (count < 0) {
        free (body);
        fprintf (stderr, CLI_PROGRAM ": out of memory\n");
        return CLI_EXIT_API;
    }
    cli_response_t response;
    json_t *job = cli_session_call (session, "POST", "/api/v1/jobs", body,
                                    (const char *const *) lines,
                                    (size_t) count, &response);
    s_free_lines (lines, (size_t) count);
    free (body);
    int rc = CLI_EXIT_API;
    const char *id = cli_json_str (job, "id", NULL);
    if (job && !id)
        fprintf (stderr, CLI_PROGRAM ": the answer has no job id\n");
    else if (id && options->wait) {
        if (!session->json)
            printf ("%s job %s (%s)\n",
                    response.replayed ? "already submitted:" : "submitted",
                    id, cli_json_str (job, "job", "?"));
        fflush (stdout);
        rc = cli_watch_job (session, id);
    }
    else if (id) {
        if (session->json)
            cli_print_raw (&response);
        else if (response.replayed)
            printf ("job %s was already submitted with this idempotency key "
                    "(%s), state %s\n", id, cli_json_str (job, "job", "?"),
                    cli_json_str (job, "state", "?"));
        else
            printf ("submitted job %s (%s), state %s\n", id,
                    cli_json_str (job, "job", "?"),
                    cli_json_str (job, "state", "?"));
        rc = CLI_EXIT_OK;
    }
    json_decref (job);
    cli_response_clear (&response);
    return rc;
}

/*  POST /api/v1/jobs/ID/<action>, then says `done` or follows the job.    */
static int
s_job_action (cli_session_t *session, const cli_options_t *options,
              const char *action, const char *done)
{
    const char *id = options->args[0];
    char path[CLI_PATH_MAX];
    char suffix[32];
    snprintf (suffix, sizeof suffix, "/%s", action);
    int rc = cli_job_path (id, suffix, path, sizeof path);
    if (rc)
        return rc;
    cli_response_t response;
    json_t *job = cli_session_call (session, "POST", path, NULL, NULL, 0,
                                    &response);
    rc = job ? CLI_EXIT_OK : CLI_EXIT_API;
    if (job && options->wait) {
        if (!session->json)
            printf ("job %s %s\n", cli_json_str (job, "id", id), done);
        fflush (stdout);
        rc = cli_watch_job (session, cli_json_str (job, "id", id));
    }
    else if (job && session->json)
        cli_print_raw (&response);
    else if (job) {
        const char *state = cli_json_str (job, "state", "?");
        printf ("job %s %s", cli_json_str (job, "id", id), done);
        if (strcmp (state, done) != 0)
            printf (", state %s", state);
        if (strcmp (action, "retry") == 0)
            printf (" (retry %lld)", cli_json_int (job, "retries"));
        putchar ('\n');
    }
    json_decref (job);
    cli_response_clear (&response);
    return rc;
}

/*  `shoal start ID`, `shoal cancel ID`, `shoal retry ID`.                 */
static int
s_start (cli_session_t *session, const cli_options_t *options)
{
    return s_job_action (session, options, "start", "started");
}

static int
s_cancel (cli_session_t *session, const cli_options_t *options)
{
    return s_job_action (session, options, "cancel", "canceled");
}

static int
s_retry (cli_session_t *session, const cli_options_t *options)
{
    return s_job_action (session, options, "retry", "retried");
}

/* ---- status, jobs, tasks --------------------------------------------- */

/*  `shoal status ID`: the job view, or with --wait its progress.          */
static int
s_status (cli_session_t *session, const cli_options_t *options)
{
    char path[CLI_PATH_MAX];
    int rc = cli_job_path (options->args[0], "", path, sizeof path);
    if (rc)
        return rc;
    if (options->wait)
        return cli_watch_job (session, options->args[0]);
    cli_response_t response;
    json_t *job = cli_session_call (session, "GET", path, NULL, NULL, 0,
                                    &response);
    rc = CLI_EXIT_API;
    if (job && session->json) {
        cli_print_raw (&response);
        rc = CLI_EXIT_OK;
    }
    else if (job)
        rc = s_print_job (session, job);
    json_decref (job);
    cli_response_clear (&response);
    return rc;
}

/*  Adds one job to the jobs table. Returns 0 or -1.                       */
static int
s_add_job_row (cli_table_t *table, const json_t *job)
{
    const char *state = cli_json_str (job, "state", NULL);
    json_t *stages = json_object_get (job, "stages");
    size_t ended = 0;
    size_t index;
    json_t *stage;
    json_array_foreach (stages, index, stage) {
        const char *stage_state = cli_json_str (stage, "state", "");
        ended += strcmp (stage_state, "succeeded") == 0
                 || strcmp (stage_state, "failed") == 0;
    }
    char created[64], finished[64];
    int rc = 0;
    rc |= cli_table_add (table, cli_json_str (job, "id", NULL),
                         CLI_COLOR_NONE);
    rc |= cli_table_add (table, cli_json_str (job, "job", NULL),
                         CLI_COLOR_NONE);
    rc |= cli_table_add (table, state, cli_state_color (state));
    rc |= cli_table_addf (table, "%zu/%zu", ended, json_array_size (stages));
    rc |= cli_table_add (table, s_time (job, "created_at", created,
                                        sizeof created), CLI_COLOR_NONE);
    rc |= cli_table_add (table, s_time (job, "finished_at", finished,
                                        sizeof finished), CLI_COLOR_NONE);
    rc |= cli_table_add (table, cli_json_str (job, "error", NULL),
                         CLI_COLOR_NONE);
    return rc;
}

/*  Appends "?key=value" or "&key=value" to `path` when `value` is not
    empty; `value` is already percent-encoded. The caller sizes `path`.   */
static void
s_query_add (char *path, size_t size, const char *key, const char *value)
{
    if (!*value)
        return;
    size_t used = strlen (path);
    snprintf (path + used, size - used, "%c%s=%s",
              strchr (path, '?') ? '&' : '?', key, value);
}

/*  `shoal jobs`: GET /api/v1/jobs, page after page when --limit asks for
    more than one page holds.                                              */
static int
s_jobs (cli_session_t *session, const cli_options_t *options)
{
    if (options->limit > S_JOBS_MAX)
        return cli_usage_error ("--limit is at most %d", S_JOBS_MAX);
    char state[64 * 3 + 1] = "";
    if (options->state
        && cli_client_escape (options->state, state, sizeof state))
        return cli_usage_error ("--state '%.40s' is too long",
                                options->state);
    //  One request unless --limit asks for more than a page: then pages
    //  are fetched, following `next`, and put together.
    json_t *all = json_array ();
    json_t *next = json_null ();
    cli_response_t last = { 0 };
    size_t pages = 0;
    long left = options->limit;
    char cursor[64] = "";
    int rc = all ? CLI_EXIT_OK : CLI_EXIT_API;
    while (rc == CLI_EXIT_OK) {
        char path[512] = "/api/v1/jobs";
        char limit[32] = "";
        if (options->limit)
            snprintf (limit, sizeof limit, "%ld",
                      left < S_PAGE_MAX ? left : S_PAGE_MAX);
        s_query_add (path, sizeof path, "limit", limit);
        s_query_add (path, sizeof path, "state", state);
        s_query_add (path, sizeof path, "cursor", cursor);
        cli_response_clear (&last);
        json_t *page = cli_session_call (session, "GET", path, NULL, NULL, 0,
                                         &last);
        if (!page) {
            rc = CLI_EXIT_API;
            break;
        }
        pages++;
        json_t *jobs = json_object_get (page, "jobs");
        if (json_is_array (jobs))
            json_array_extend (all, jobs);
        left -= (long) json_array_size (jobs);
        json_decref (next);
        next = json_incref (json_object_get (page, "next"));
        if (!next)
            next = json_null ();
        json_decref (page);
        char number[64];
        const char *text = s_scalar (next, number, sizeof number);
        if (!options->limit || left <= 0 || !text || !*text
            || json_array_size (jobs) == 0)
            break;
        if (cli_client_escape (text, cursor, sizeof cursor)) {
            fprintf (stderr, CLI_PROGRAM ": the API's cursor is too long\n");
            rc = CLI_EXIT_API;
        }
    }
    if (rc == CLI_EXIT_OK && session->json) {
        if (pages == 1)
            cli_print_raw (&last);
        else {
            json_t *merged = json_pack ("{s:O, s:O}", "jobs", all, "next",
                                        next);
            if (!merged || json_dumpf (merged, stdout, JSON_COMPACT))
                rc = CLI_EXIT_API;
            putchar ('\n');
            json_decref (merged);
        }
    }
    else if (rc == CLI_EXIT_OK && json_array_size (all) == 0)
        printf ("no jobs%s%s\n", options->state ? " in state " : "",
                options->state ? options->state : "");
    else if (rc == CLI_EXIT_OK) {
        static const char *const headers[] = {
            "ID", "JOB", "STATE", "STAGES", "CREATED", "FINISHED", "ERROR",
        };
        cli_table_t *table = cli_table_new (7, headers);
        bool failed = !table;
        size_t index;
        json_t *job;
        json_array_foreach (all, index, job) {
            if (failed)
                break;
            failed |= s_add_job_row (table, job) != 0;
        }
        rc = s_print_table (session, &table, failed);
    }
    cli_response_clear (&last);
    json_decref (next);
    json_decref (all);
    return rc;
}

/*  How a task ended, for the EXIT column: "0", "signal 9" or NULL.        */
static const char *
s_exit (const json_t *task, char *out, size_t size)
{
    json_t *signal = json_object_get (task, "signal");
    json_t *code = json_object_get (task, "exit_code");
    if (json_is_integer (signal))
        snprintf (out, size, "signal %lld",
                  (long long) json_integer_value (signal));
    else if (json_is_integer (code))
        snprintf (out, size, "%lld", (long long) json_integer_value (code));
    else
        return NULL;
    return out;
}

/*  How `shoal tasks` prints a task list a page at a time, so that a job
    of a million tasks is listed in the memory of one page.               */
typedef struct {
    cli_session_t *session;
    size_t printed;              /* tasks printed so far                   */
    size_t widths[CLI_TABLE_COLUMNS_MAX];  /* of the table's columns      */
} s_task_printer_t;

/*  --json: a list of one page as the API sent it; a longer one as one
    document written a page at a time, {"job", "total", "tasks", "next"}
    (`next` is null unless --limit stopped the list early).                */
static int
s_tasks_json_page (json_t *page, cli_response_t *response, size_t number,
                   bool last, void *arg)
{
    s_task_printer_t *printer = arg;
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    if (number == 0 && last) {
        cli_print_raw (response);
        return 0;
    }
    int rc = 0;
    if (number == 0) {
        fputs ("{\"job\":", stdout);
        rc |= json_dumpf (json_object_get (page, "job"), stdout, flags);
        fputs (",\"total\":", stdout);
        rc |= json_dumpf (json_object_get (page, "total"), stdout, flags);
        fputs (",\"tasks\":[", stdout);
    }
    size_t i;
    json_t *task;
    json_array_foreach (json_object_get (page, "tasks"), i, task) {
        if (printer->printed++)
            putchar (',');
        rc |= json_dumpf (task, stdout, flags);
    }
    if (last) {
        json_t *next = json_object_get (page, "next");
        fputs ("],\"next\":", stdout);
        rc |= json_dumpf (next ? next : json_null (), stdout, flags);
        fputs ("}\n", stdout);
    }
    if (rc || ferror (stdout)) {
        fprintf (stderr, CLI_PROGRAM ": cannot write the task list\n");
        return -1;
    }
    return 0;
}

/*  The table: the header with the first page, each page lined up with
    the ones before it.                                                    */
static int
s_tasks_table_page (json_t *page, cli_response_t *response, size_t number,
                    bool last, void *arg)
{
    (void) response;
    (void) last;
    s_task_printer_t *printer = arg;
    static const char *const headers[] = {
        "ID", "STAGE", "KIND", "INDEX", "STATE", "EXIT", "ATTEMPTS",
        "WORKER", "DURATION", "ERROR",
    };
    cli_table_t *table = cli_table_new (10, number == 0 ? headers : NULL);
    bool failed = !table;
    size_t i;
    json_t *task;
    json_array_foreach (json_object_get (page, "tasks"), i, task) {
        if (failed)
            break;
        char index[32], exit_text[32], duration[32];
        const char *state = cli_json_str (task, "state", NULL);
        failed |= cli_table_addf (table, "%lld",
                                  cli_json_int (task, "id")) != 0;
        failed |= cli_table_add (table, cli_json_str (task, "stage", NULL),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, cli_json_str (task, "kind", NULL),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, s_scalar (json_object_get (
                                     task, "index"), index, sizeof index),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, state, cli_state_color (state)) != 0;
        failed |= cli_table_add (table, s_exit (task, exit_text,
                                                sizeof exit_text),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_addf (table, "%lld",
                                  cli_json_int (task, "attempts")) != 0;
        failed |= cli_table_add (table, cli_json_str (task, "worker", NULL),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, s_duration (json_object_get (
                                     task, "duration_ms"), duration,
                                     sizeof duration),
                                 CLI_COLOR_NONE) != 0;
        failed |= cli_table_add (table, cli_json_str (task, "error", NULL),
                                 CLI_COLOR_NONE) != 0;
    }
    if (failed) {
        fprintf (stderr, CLI_PROGRAM ": out of memory\n");
        cli_table_destroy (&table);
        return -1;
    }
    cli_table_print_aligned (table, stdout, printer->session->color,
                             printer->widths);
    cli_table_destroy (&table);
    return 0;
}

/*  `shoal tasks ID`: GET /api/v1/jobs/ID/tasks, every page (or the first
    --limit tasks), as a table, each page printed as it comes.            */
static int
s_tasks (cli_session_t *session, const cli_options_t *options)
{
    char wanted[64 * 3 + 1] = "";
    if (options->state
        && cli_client_escape (options->state, wanted, sizeof wanted))
        return cli_usage_error ("--state '%.40s' is too long",
                                options->state);
    char query[sizeof wanted + 8] = "";
    if (*wanted)
        snprintf (query, sizeof query, "state=%s", wanted);
    s_task_printer_t printer = { .session = session };
    int rc = cli_job_task_pages (session, options->args[0], query,
                                 options->limit, session->json
                                     ? s_tasks_json_page
                                     : s_tasks_table_page, &printer);
    fflush (stdout);
    return rc ? CLI_EXIT_API : CLI_EXIT_OK;
}

/* ---- workers, definitions -------------------------------------------- */

/*  `shoal workers`: GET /api/v1/workers as a table.                      */
static int
s_workers (cli_session_t *session, const cli_options_t *options)
{
    cli_response_t response;
    json_t *answer = cli_session_call (session, "GET", "/api/v1/workers",
                                       NULL, NULL, 0, &response);
    int rc = answer ? CLI_EXIT_OK : CLI_EXIT_API;
    json_t *workers = json_object_get (answer, "workers");
    if (answer && session->json)
        cli_print_raw (&response);
    else if (answer && json_array_size (workers) == 0)
        printf ("no workers\n");
    else if (answer) {
        static const char *const headers[] = {
            "ID", "HOST", "SLOTS", "BUSY", "DRAINING", "CONNECTED",
            "LAST HEARTBEAT",
        };
        cli_table_t *table = cli_table_new (7, headers);
        bool failed = !table;
        size_t i;
        json_t *worker;
        json_array_foreach (workers, i, worker) {
            if (failed)
                break;
            char connected[64], heartbeat[64];
            bool draining = json_is_true (json_object_get (worker,
                                                           "draining"));
            failed |= cli_table_add (table, cli_json_str (worker, "id", NULL),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, cli_json_str (worker, "host", NULL),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_addf (table, "%lld",
                                      cli_json_int (worker, "slots")) != 0;
            failed |= cli_table_addf (table, "%lld",
                                      cli_json_int (worker, "busy")) != 0;
            failed |= cli_table_add (table, draining ? "yes" : "no",
                                     draining ? CLI_COLOR_YELLOW
                                              : CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, s_time (worker, "connected_at",
                                                    connected,
                                                    sizeof connected),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, s_time (worker, "last_heartbeat",
                                                    heartbeat,
                                                    sizeof heartbeat),
                                     CLI_COLOR_NONE) != 0;
        }
        rc = s_print_table (session, &table, failed);
    }
    json_decref (answer);
    cli_response_clear (&response);
    return rc;
}

/*  The inputs of a class as "name, name=default, Header (header)", cut to
    fit. `only` keeps inputs of that source, NULL keeps all.               */
static const char *
s_inputs (const json_t *inputs, const char *only, char *out, size_t size)
{
    size_t used = 0;
    size_t index;
    json_t *input;
    out[0] = '\0';
    json_array_foreach (inputs, index, input) {
        const char *source = cli_json_str (input, "source", "");
        if (only && strcmp (source, only) != 0)
            continue;
        char scalar[64];
        const char *fallback = s_scalar (json_object_get (input, "default"),
                                         scalar, sizeof scalar);
        const char *name = strcmp (source, "http-header") == 0
                           ? cli_json_str (input, "key", "?")
                           : cli_json_str (input, "name", "?");
        int wrote = snprintf (out + used, size - used, "%s%s%s%s",
                              used ? ", " : "", name, fallback ? "=" : "",
                              fallback ? fallback : "");
        if (wrote < 0 || (size_t) wrote >= size - used)
            break;
        used += (size_t) wrote;
    }
    return used ? out : NULL;
}

/*  `shoal definitions [VERSION]`: the job classes, then the task classes,
    of the definitions loaded now or of an earlier VERSION.               */
static int
s_definitions (cli_session_t *session, const cli_options_t *options)
{
    char path[64] = "/api/v1/definitions";
    if (options->arg_count > 0) {
        const char *version = options->args[0];
        size_t digits = strspn (version, "0123456789");
        if (!digits || version[digits] || digits > 10) {
            fprintf (stderr, "shoal: definitions: VERSION must be a whole "
                             "number, not '%s'\n", version);
            return CLI_EXIT_USAGE;
        }
        snprintf (path, sizeof path, "/api/v1/definitions/%s", version);
    }
    cli_response_t response;
    json_t *answer = cli_session_call (session, "GET", path, NULL, NULL, 0,
                                       &response);
    if (!answer) {
        cli_response_clear (&response);   /* a refusal keeps its body */
        return CLI_EXIT_API;
    }
    int rc = CLI_EXIT_OK;
    if (session->json)
        cli_print_raw (&response);
    else {
        static const char *const job_headers[] = {
            "JOB CLASS", "STAGES", "PARAMS", "HEADERS", "NAME",
        };
        cli_table_t *table = cli_table_new (5, job_headers);
        bool failed = !table;
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get (answer, "jobs"), i, item) {
            if (failed)
                break;
            char params[512], headers[512];
            json_t *inputs = json_object_get (item, "inputs");
            failed |= cli_table_add (table, cli_json_str (item, "id", NULL),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_addf (table, "%zu", json_array_size (
                                          json_object_get (item, "stages")))
                      != 0;
            failed |= cli_table_add (table, s_inputs (inputs, "parameter",
                                                      params, sizeof params),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, s_inputs (inputs, "http-header",
                                                      headers,
                                                      sizeof headers),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, cli_json_str (item, "name", NULL),
                                     CLI_COLOR_NONE) != 0;
        }
        rc = s_print_table (session, &table, failed);

        static const char *const task_headers[] = {
            "TASK CLASS", "COMMAND", "INPUTS", "NAME",
        };
        table = rc ? NULL : cli_table_new (4, task_headers);
        failed = !table;
        json_array_foreach (json_object_get (answer, "tasks"), i, item) {
            if (failed)
                break;
            char inputs[512];
            failed |= cli_table_add (table, cli_json_str (item, "id", NULL),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, cli_json_str (item, "command",
                                                          NULL),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, s_inputs (json_object_get (
                                         item, "inputs"), NULL, inputs,
                                         sizeof inputs),
                                     CLI_COLOR_NONE) != 0;
            failed |= cli_table_add (table, cli_json_str (item, "name", NULL),
                                     CLI_COLOR_NONE) != 0;
        }
        if (!rc) {
            putchar ('\n');
            rc = s_print_table (session, &table, failed);
        }
    }
    json_decref (answer);
    cli_response_clear (&response);
    return rc;
}

/* ---- the table ------------------------------------------------------- */

#define S_WAIT_HELP \
    "With --wait, follows the job until it ends: progress bars on a\n" \
    "terminal, one line per change otherwise (with --json, only the final\n" \
    "job); the exit status is 0 if it succeeded, 1 if it failed, 3 if it\n" \
    "was canceled.\n"

static const cli_command_t s_commands[] = {
    { "submit", "JOB", "Submit a job of class JOB (and start it).",
      "Params are sent as strings; -H headers feed the job's http-header\n"
      "inputs (e.g. -H 'Authorization: Basic ...').\n" S_WAIT_HELP,
      CLI_OPT_PARAM | CLI_OPT_HEADER | CLI_OPT_NO_START | CLI_OPT_WAIT
          | CLI_OPT_IDEMPOTENCY_KEY,
      1, 1, s_submit },
    { "status", "ID", "Show a job and a table of its stages.",
      S_WAIT_HELP, CLI_OPT_WAIT, 1, 1, s_status },
    { "jobs", "", "List jobs, newest first.", NULL,
      CLI_OPT_STATE | CLI_OPT_LIMIT, 0, 0, s_jobs },
    { "tasks", "ID", "List the tasks of job ID, in id order.",
      "Prints the list a page (1000 tasks) at a time as it reads it;\n"
      "--limit N stops after N tasks, --state STATE shows only the tasks\n"
      "in that state (pending, running, succeeded, failed, canceled).\n",
      CLI_OPT_STATE | CLI_OPT_LIMIT, 1, 1, s_tasks },
    { "logs", "ID [TASK]", "Print the log of one task, or of every task.",
      "Without TASK, every task's log follows a header line\n"
      "'==> task N (stage 'S', state) <=='. With -f, new output is printed\n"
      "as it comes until the task (without TASK: the job) has ended.\n"
      "With --json, one JSON object per line: {\"job\", \"task\", \"log\"}\n"
      "(with -f, one per piece of output).\n",
      CLI_OPT_FOLLOW, 1, 2, cli_cmd_logs },
    { "start", "ID", "Start job ID, submitted with --no-start.", S_WAIT_HELP,
      CLI_OPT_WAIT, 1, 1, s_start },
    { "cancel", "ID", "Cancel job ID: running tasks are stopped.", NULL, 0,
      1, 1, s_cancel },
    { "retry", "ID", "Run failed job ID again from the stage that failed.",
      S_WAIT_HELP, CLI_OPT_WAIT, 1, 1, s_retry },
    { "workers", "", "List the connected workers.", NULL, 0, 0, 0,
      s_workers },
    { "definitions", "[VERSION]", "List the job classes and task classes.",
      "Without VERSION, those loaded now. A job keeps the definitions it was\n"
      "submitted under when the file changes ('definitions' in 'shoal\n"
      "status'); VERSION shows those.\n",
      0, 0, 1, s_definitions },
    { "help", "[COMMAND]", "Show the help of shoal or of COMMAND.", NULL, 0,
      0, 1, NULL },
};

const cli_command_t *
cli_command_find (const char *name)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp (s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

void
cli_commands_print (FILE *out)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        char synopsis[64];
        snprintf (synopsis, sizeof synopsis, "%s%s%s", s_commands[i].name,
                  *s_commands[i].operands ? " " : "",
                  s_commands[i].operands);
        fprintf (out, "  %-18s  %s\n", synopsis, s_commands[i].summary);
    }
}
