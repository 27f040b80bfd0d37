/*  session.c: one run of a `shoal` command against the API.

    The session owns the HTTP client and decides how output looks: tables
    or the API's JSON, colour or not, progress bars or plain lines. It is
    also the one place that turns a failed request into a message, so
    every command reports problems the same way:

        shoal: Job not found: there is no such job (field id)
        shoal: cannot reach http://127.0.0.1:8080: Failed to connect ...  */
#include "cli.h"
#include "table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*  Longest token file line we read.                                       */
#define S_TOKEN_MAX 4096

/*  Reads the first line of `path` into `out`. Returns 0 or -1 with a
    message on stderr.                                                     */
static int
s_read_token (const char *path, char *out, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, CLI_PROGRAM ": cannot read token file '%s': %s\n",
                 path, strerror (errno));
        return -1;
    }
    bool got = fgets (out, (int) size, file) != NULL;
    bool whole = got && (strchr (out, '\n') || feof (file));
    fclose (file);
    if (!got || !whole) {
        fprintf (stderr, CLI_PROGRAM ": token file '%s' %s\n", path,
                 got ? "has a first line over 4096 bytes" : "is empty");
        return -1;
    }
    out[strcspn (out, "\r\n")] = '\0';
    return 0;
}

/*  True when escape sequences may be written to stdout.                   */
static bool
s_stdout_takes_ansi (void)
{
    const char *term = getenv ("TERM");
    return isatty (STDOUT_FILENO) && !(term && strcmp (term, "dumb") == 0);
}

int
cli_session_open (cli_session_t *self, const cli_options_t *options)
{
    memset (self, 0, sizeof *self);
    char token[S_TOKEN_MAX + 2] = "";
    if (options->token_file
        && s_read_token (options->token_file, token, sizeof token))
        return CLI_EXIT_USAGE;
    const char *use = options->token_file ? token : options->token;
    char err[CLI_URL_MAX + 128];
    self->client = cli_client_new (options->url, use, err, sizeof err);
    explicit_bzero (token, sizeof token);
    if (!self->client) {
        fprintf (stderr, CLI_PROGRAM ": %s\n", err);
        return CLI_EXIT_USAGE;
    }
    self->json = options->json;
    self->tty = s_stdout_takes_ansi ();
    const char *no_color = getenv ("NO_COLOR");
    self->color = self->tty && !(no_color && *no_color);
    return 0;
}

void
cli_session_close (cli_session_t *self)
{
    cli_client_destroy (&self->client);
}

void
cli_print_raw (const cli_response_t *response)
{
    fwrite (response->body, 1, response->size, stdout);
    if (response->size == 0 || response->body[response->size - 1] != '\n')
        fputc ('\n', stdout);
}

void
cli_session_report_unreachable (cli_session_t *self)
{
    fprintf (stderr, CLI_PROGRAM ": %s\n", cli_client_error (self->client));
}

void
cli_session_report (cli_session_t *self, const cli_response_t *response)
{
    json_t *problem = cli_response_is_problem (response)
                      ? json_loadb (response->body, response->size, 0, NULL)
                      : NULL;
    if (json_is_object (problem)) {
        if (self->json)
            cli_print_raw (response);
        //  The API's text may hold anything; keep escapes off the terminal.
        char title[256], detail[1024], field[256];
        cli_text_clean (cli_json_str (problem, "title", "Error"), title,
                        sizeof title, 100);
        cli_text_clean (cli_json_str (problem, "detail", ""), detail,
                        sizeof detail, 400);
        cli_text_clean (cli_json_str (problem, "field", ""), field,
                        sizeof field, 100);
        fprintf (stderr, CLI_PROGRAM ": %s%s%s", title, *detail ? ": " : "",
                 detail);
        if (*field)
            fprintf (stderr, " (field %s)", field);
        fputc ('\n', stderr);
    }
    else {
        char snippet[256];
        cli_text_clean (response->body, snippet, sizeof snippet, 120);
        fprintf (stderr, CLI_PROGRAM ": %s answered HTTP %ld%s%s\n",
                 cli_client_url (self->client), response->status,
                 *snippet ? ": " : "", snippet);
    }
    json_decref (problem);
}

json_t *
cli_session_call (cli_session_t *self, const char *method, const char *path,
                  const char *body, const char *const *headers, size_t count,
                  cli_response_t *response)
{
    cli_response_t local;
    cli_response_t *answer = response ? response : &local;
    if (cli_client_request (self->client, method, path, body, headers, count,
                            answer)) {
        cli_session_report_unreachable (self);
        return NULL;
    }
    json_t *json = NULL;
    if (answer->status >= 200 && answer->status < 300) {
        json_error_t error;
        json = json_loadb (answer->body, answer->size, 0, &error);
        if (!json)
            fprintf (stderr, CLI_PROGRAM ": %s %s: the answer is not JSON: "
                     "%s\n", method, path, error.text);
    }
    else
        cli_session_report (self, answer);
    if (!response)
        cli_response_clear (&local);
    return json;
}

int
cli_job_path (const char *id, const char *suffix, char *out, size_t size)
{
    char escaped[CLI_ID_MAX * 3 + 1];
    if (strlen (id) > CLI_ID_MAX
        || cli_client_escape (id, escaped, sizeof escaped)
        || (size_t) snprintf (out, size, "/api/v1/jobs/%s%s", escaped,
                              suffix) >= size)
        return cli_usage_error ("the job id is over %d bytes", CLI_ID_MAX);
    return 0;
}

int
cli_job_task_pages (cli_session_t *self, const char *id, const char *query,
                    long max, cli_page_fn *page_fn, void *arg)
{
    char base[CLI_PATH_MAX];
    if (cli_job_path (id, "/tasks", base, sizeof base))
        return -1;
    char cursor[32] = "";
    long left = max;
    for (size_t number = 0;; number++) {
        char path[CLI_PATH_MAX + 256];
        long limit = max > 0 && left < CLI_TASK_PAGE ? left : CLI_TASK_PAGE;
        int used = snprintf (path, sizeof path, "%s?limit=%ld%s%s%s%s", base,
                             limit, *query ? "&" : "", query,
                             *cursor ? "&cursor=" : "", cursor);
        if (used < 0 || (size_t) used >= sizeof path) {
            fprintf (stderr, CLI_PROGRAM ": the task list query is too "
                     "long\n");
            return -1;
        }
        cli_response_t response = { 0 };
        json_t *page = cli_session_call (self, "GET", path, NULL, NULL, 0,
                                         &response);
        if (!page) {
            cli_response_clear (&response);
            return -1;
        }
        json_t *tasks = json_object_get (page, "tasks");
        json_t *next = json_object_get (page, "next");
        //  `next` is where the controller stopped looking: a filtered
        //  page may be empty and still have one.
        const char *text = json_string_value (next);
        left -= (long) json_array_size (tasks);
        bool more = text && *text && (max <= 0 || left > 0);
        int rc = 0;
        if (!json_is_array (tasks) || !json_object_get (page, "job")
            || !json_object_get (page, "total")) {
            fprintf (stderr, CLI_PROGRAM ": GET %s: the answer is not a "
                     "task list\n", path);
            rc = -1;
        }
        else if (more && (strlen (text) >= sizeof cursor
                          || strspn (text, "0123456789") != strlen (text))) {
            fprintf (stderr, CLI_PROGRAM ": GET %s: the answer's 'next' is "
                     "not a task number\n", path);
            rc = -1;
        }
        else {
            if (more)
                snprintf (cursor, sizeof cursor, "%s", text);
            rc = page_fn (page, &response, number, !more, arg);
        }
        json_decref (page);
        cli_response_clear (&response);
        if (rc || !more)
            return rc;
    }
}

const char *
cli_json_str (const json_t *object, const char *key, const char *fallback)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value ? value : fallback;
}

long long
cli_json_int (const json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

void
cli_sleep_ms (long ms)
{
    struct timespec left = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep (&left, &left) == -1 && errno == EINTR)
        ;
}
