/*  logs.c: `shoal logs ID [TASK] [-f]`, task logs printed and followed.

    The API serves a task's log (text/plain, from its latest attempt),
    whole or from a byte on (an HTTP Range request). Following a log asks
    for the bytes after those printed, so each poll costs what the task
    wrote since the last one, not the log's size. Printed once, as text, a
    log is read in the same pieces; only --json without -f reads a log
    whole (one object per task), bounded by CLI_BODY_MAX. A worker
    truncates the log when a task runs again (a lost worker, a retry), so
    a log that got shorter, or a task whose `attempts` went up, starts
    over from its beginning.

    Which tasks exist and whether they ended comes from the task list
    (there is no single-task endpoint: one task is the one-task page that
    starts at its id), and whether the job ended from the job view;
    following every task of a job asks for both each poll, reading every
    page of the list (a page at a time), then fetches the logs of tasks
    still running plus, once, of those that just ended. Each page is a
    round of the controller's loop, so on a big job the next poll waits
    S_FOLLOW_IDLE times as long as the last one took: one client following
    a job of a million tasks keeps the loop busy a fifth of the time at
    most, instead of all of it.

    Text output is the log's bytes as they are. --json writes JSON Lines,
    one object per task, or per new piece of output with -f:
    {"job": ID, "task": N, "attempt": K, "log": TEXT} ("attempt" left out
    when a single log is printed: that takes no task list), invalid UTF-8
    replaced by U+FFFD. While following, a UTF-8 sequence cut at the end
    of what was written so far waits for the next poll, so a character is
    never split across two objects.                                        */
#include "cli.h"
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*  Following a job waits this many times as long as its last poll took
    before the next one (and at least CLI_POLL_MS).                       */
#define S_FOLLOW_IDLE 4

/*  Most bytes of a log one request of a follower asks for: a log longer
    than a response may be (CLI_BODY_MAX) comes in pieces.                */
#define S_FOLLOW_CHUNK ((size_t) 16 * 1024 * 1024)

/*  What has been printed of one task's log.                               */
typedef struct {
    long long id;               /* task id within the job                  */
    size_t printed;             /* bytes of the log printed so far         */
    long long attempts;         /* `attempts` when those bytes were read   */
    bool finished;              /* ended, and its last output printed      */
} s_progress_t;

/*  One logs command. Invariant: `progress` has `count` of `capacity`
    entries filled, in the order tasks were first seen. At most one entry
    per task of the job: the job's task count bounds it.     */
typedef struct {
    cli_session_t *session;     /* borrowed                                */
    const char *job;            /* job id as given (borrowed)              */
    s_progress_t *progress;     /* one per task seen; owned                */
    size_t count;               /* entries in progress                     */
    size_t capacity;            /* entries allocated                       */
    long long current;          /* task whose output was printed last, -1  */
    bool printed_any;           /* any header or log written yet           */
} s_logs_t;

/*  True for a task (or job) state that does not change any more.         */
static bool
s_task_ended (const char *state)
{
    return state && (strcmp (state, "succeeded") == 0
                     || strcmp (state, "failed") == 0
                     || strcmp (state, "canceled") == 0);
}

/*  The length of `data` without a UTF-8 sequence cut short at its end.    */
static size_t
s_utf8_complete (const char *data, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char) data[len - back];
        if ((c & 0xC0) == 0x80)
            continue;                   /* a continuation byte: go back    */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? len - back : len;
    }
    return len;
}

/*  A JSON string of `data`, invalid UTF-8 replaced by U+FFFD. NULL when
    out of memory.                                                         */
static json_t *
s_json_text (const char *data, size_t len)
{
    char *clean = malloc (len * 3 + 1);
    if (!clean)
        return NULL;
    size_t used = 0;
    const unsigned char *c = (const unsigned char *) data;
    const unsigned char *end = c + len;
    while (c < end) {
        size_t need = *c < 0x80 ? 1 : *c < 0xC2 ? 0 : *c < 0xE0 ? 2
                      : *c < 0xF0 ? 3 : *c < 0xF5 ? 4 : 0;
        for (size_t i = 1; i < need; i++)
            if (c + i >= end || (c[i] & 0xC0) != 0x80)
                need = 0;
        if (need == 0) {
            memcpy (clean + used, "\xEF\xBF\xBD", 3);
            used += 3;
            c++;
        }
        else {
            memcpy (clean + used, c, need);
            used += need;
            c += need;
        }
    }
    //  Overlong forms and surrogates jansson still refuses: fall back to
    //  an all-ASCII copy rather than losing the output.
    json_t *text = json_stringn (clean, used);
    if (!text) {
        used = 0;
        for (size_t i = 0; i < len; i++)
            clean[used++] = (unsigned char) data[i] < 0x80 ? data[i] : '?';
        text = json_stringn (clean, used);
    }
    free (clean);
    return text;
}

/*  Writes `len` bytes of task `task`'s log: raw, or as one JSON line
    (`data` NULL: "log": null; `attempt` 0: unknown, left out).           */
static void
s_emit (s_logs_t *self, long long task, long long attempt, const char *data,
        size_t len)
{
    if (!self->session->json) {
        if (data)
            fwrite (data, 1, len, stdout);
        return;
    }
    json_t *line = json_pack ("{s:s, s:I}", "job", self->job, "task",
                              (json_int_t) task);
    if (line && attempt > 0)
        json_object_set_new (line, "attempt", json_integer (attempt));
    json_t *text = data ? s_json_text (data, len) : json_null ();
    if (!line)
        json_decref (text);     /* set_new below takes it, even failing */
    if (line && text && json_object_set_new (line, "log", text) == 0) {
        json_dumpf (line, stdout, JSON_COMPACT);
        fputc ('\n', stdout);
    }
    else
        fprintf (stderr, CLI_PROGRAM ": out of memory: task %lld's log "
                 "left out\n", task);
    json_decref (line);
}

/*  "==> task 3 (stage 'Download Data', succeeded) <==", once per switch
    to another task (text output only).                                    */
static void
s_header (s_logs_t *self, const json_t *task)
{
    long long id = cli_json_int (task, "id");
    if (self->session->json || self->current == id)
        return;
    char stage[256];
    cli_text_clean (cli_json_str (task, "stage", "?"), stage, sizeof stage,
                    60);
    printf ("%s==> task %lld (stage '%s', %s) <==\n",
            self->printed_any ? "\n" : "", id, stage,
            cli_json_str (task, "state", "?"));
    self->current = id;
    self->printed_any = true;
}

/*  GETs task `task`'s log: all of it when `limit` is 0, else at most
    `limit` bytes from byte `offset` on (a Range request). Returns 1 with
    bytes from `*from` on in `response`: the whole log (`*from` 0) when
    the controller sends it whole, those asked for (`*from` `offset`;
    `response->range_total` says how long the log is), or none (`*from`
    the log's length) when it has no byte at `offset` (416: nothing new,
    or a log that got shorter). Returns 0 when the task has no log (yet),
    with the controller's 404 in `response`; -1 after reporting an error.
    The caller clears `response` after 0 and 1.                           */
static int
s_fetch (s_logs_t *self, long long task, size_t offset, size_t limit,
         cli_response_t *response, size_t *from)
{
    char path[CLI_PATH_MAX];
    char suffix[64];
    snprintf (suffix, sizeof suffix, "/tasks/%lld/log", task);
    if (cli_job_path (self->job, suffix, path, sizeof path))
        return -1;
    char range[80];
    snprintf (range, sizeof range, "Range: bytes=%zu-%zu", offset,
              offset + limit - 1);
    const char *headers[] = { range };
    if (cli_client_request (self->session->client, "GET", path, NULL,
                            headers, limit ? 1 : 0, response)) {
        cli_session_report_unreachable (self->session);
        return -1;
    }
    *from = 0;
    if (response->status == 200) {
        response->range_total = (long long) response->size;
        return 1;
    }
    if (response->status == 206 && limit && response->size <= limit
        && response->range_total >= (long long) (offset + response->size)) {
        *from = offset;
        return 1;
    }
    if (response->status == 416 && response->range_total >= 0) {
        long long total = response->range_total;
        cli_response_clear (response);
        response->range_total = total;
        *from = (size_t) total;
        return 1;
    }
    if (response->status == 404 && cli_response_is_problem (response)) {
        json_t *problem = json_loadb (response->body, response->size, 0,
                                      NULL);
        bool no_log = strcmp (cli_json_str (problem, "field", ""),
                              "task_id") == 0;
        json_decref (problem);
        if (no_log)
            return 0;
    }
    cli_session_report (self->session, response);
    cli_response_clear (response);
    return -1;
}

/*  The job's state ("" when unknown), or NULL after reporting.            */
static char *
s_job_state (s_logs_t *self, char *out, size_t size)
{
    char path[CLI_PATH_MAX];
    if (cli_job_path (self->job, "", path, sizeof path))
        return NULL;
    json_t *job = cli_session_call (self->session, "GET", path, NULL, NULL, 0,
                                    NULL);
    if (!job)
        return NULL;
    snprintf (out, size, "%s", cli_json_str (job, "state", ""));
    json_decref (job);
    return out;
}

/*  The progress entry of task `task` at (about) position `at`; made when
    new. NULL when out of memory.                                          */
static s_progress_t *
s_progress (s_logs_t *self, const json_t *task, size_t at)
{
    long long id = cli_json_int (task, "id");
    if (at < self->count && self->progress[at].id == id)
        return &self->progress[at];
    for (size_t i = 0; i < self->count; i++)
        if (self->progress[i].id == id)
            return &self->progress[i];
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        s_progress_t *grown = realloc (self->progress,
                                       capacity * sizeof *grown);
        if (!grown)
            return NULL;
        self->progress = grown;
        self->capacity = capacity;
    }
    self->progress[self->count] = (s_progress_t) { .id = id };
    return &self->progress[self->count++];
}

/*  Starts `progress` over: the worker began the task's log afresh.       */
static void
s_start_over (s_logs_t *self, s_progress_t *progress, long long attempts)
{
    if (!self->session->json && progress->printed > 0) {
        printf ("\n==> task %lld: attempt %lld, from the start <==\n",
                progress->id, attempts);
        self->current = progress->id;
    }
    progress->printed = 0;
}

/*  Prints what is new in `task`'s log: asks for the bytes after those
    printed, S_FOLLOW_CHUNK at a time, so a poll costs what the task wrote
    since the last one, and a log of any size can be followed. `ended`:
    the task has ended, so this is its last output. Returns 0 or -1 after
    reporting an error.                                                   */
static int
s_catch_up (s_logs_t *self, const json_t *task, s_progress_t *progress,
            bool ended)
{
    long long attempts = cli_json_int (task, "attempts");
    if (attempts != progress->attempts && progress->attempts != 0)
        s_start_over (self, progress, attempts);   /* a new attempt */
    progress->attempts = attempts;
    int restarts = 0;
    while (true) {
        cli_response_t response;
        size_t from;
        int got = s_fetch (self, progress->id, progress->printed,
                           S_FOLLOW_CHUNK, &response, &from);
        if (got < 0)
            return -1;
        if (got == 0) {
            cli_response_clear (&response);
            progress->finished = ended;
            return 0;
        }
        if ((size_t) response.range_total < progress->printed) {
            //  The log got shorter: the worker started it afresh.
            cli_response_clear (&response);
            s_start_over (self, progress, attempts);
            if (++restarts > 2)
                return 0;   /* restarting as we read: the next poll */
            continue;
        }
        bool more = response.range_total > (long long) (from + response.size);
        /* The body starts at a character boundary: at 0, or where the
           last complete character printed ended. A character cut at its
           end waits for the next piece. */
        size_t end = from + response.size;
        if (self->session->json && (!ended || more))
            end = from + s_utf8_complete (response.body, response.size);
        bool advanced = end > progress->printed;
        if (advanced) {
            s_header (self, task);
            s_emit (self, progress->id, attempts,
                    response.body + (progress->printed - from),
                    end - progress->printed);
            progress->printed = end;
            fflush (stdout);
        }
        cli_response_clear (&response);
        if (!more || !advanced)
            break;
    }
    progress->finished = ended;
    return 0;
}

/*  Writes task `id`'s log to standard output as it is, S_FOLLOW_CHUNK
    at a time, so a log longer than one response may be is printed too.
    Returns 1 after printing it, 0 when the task has no log (the
    controller's 404 in `missing`, which the caller clears), -1 after
    reporting an error.                                                   */
static int
s_print_text (s_logs_t *self, long long id, cli_response_t *missing)
{
    size_t offset = 0;
    while (true) {
        cli_response_t response;
        size_t from;
        int got = s_fetch (self, id, offset, S_FOLLOW_CHUNK, &response,
                           &from);
        if (got < 0)
            return -1;
        if (got == 0) {
            if (offset == 0) {
                *missing = response;
                return 0;
            }
            cli_response_clear (&response);
            return 1;   /* gone while read: the job was forgotten */
        }
        /* The body starts at `from`, at or before `offset` (at 0 from a
           server that sends whole logs). A log that got shorter meanwhile
           (the task runs again) ends the printing where it is. */
        size_t end = from + response.size;
        if (from <= offset && end > offset)
            fwrite (response.body + (offset - from), 1, end - offset, stdout);
        bool more = end > offset
                    && response.range_total > (long long) end;
        if (end > offset)
            offset = end;
        cli_response_clear (&response);
        if (!more)
            return 1;
    }
}

/*  The logs of one page of the task list, a header before each.         */
static int
s_print_page (json_t *page, cli_response_t *page_response, size_t number,
              bool last, void *arg)
{
    (void) page_response;
    (void) number;
    (void) last;
    s_logs_t *self = arg;
    size_t index;
    json_t *task;
    json_array_foreach (json_object_get (page, "tasks"), index, task) {
        long long id = cli_json_int (task, "id");
        cli_response_t response;
        if (!self->session->json) {
            s_header (self, task);
            int got = s_print_text (self, id, &response);
            if (got < 0)
                return -1;
            if (got == 0)
                cli_response_clear (&response);
            continue;
        }
        size_t from;
        int got = s_fetch (self, id, 0, 0, &response, &from);
        if (got < 0)
            return -1;
        s_emit (self, id, cli_json_int (task, "attempts"),
                got ? response.body : NULL, got ? response.size : 0);
        cli_response_clear (&response);
    }
    return 0;
}

/*  Every task's log once, a page of the task list at a time.             */
static int
s_print_all (s_logs_t *self)
{
    return cli_job_task_pages (self->session, self->job, "", 0, s_print_page,
                               self)
               ? CLI_EXIT_API
               : CLI_EXIT_OK;
}

/*  One task's log, once: as it is, in pieces, or as one JSON object.     */
static int
s_print_one (s_logs_t *self, long long id)
{
    char path[CLI_PATH_MAX];
    char suffix[64];
    snprintf (suffix, sizeof suffix, "/tasks/%lld/log", id);
    int rc = cli_job_path (self->job, suffix, path, sizeof path);
    if (rc)
        return rc;
    if (!self->session->json) {
        cli_response_t missing;
        int got = s_print_text (self, id, &missing);
        if (got == 0) {
            cli_session_report (self->session, &missing);
            cli_response_clear (&missing);
        }
        return got > 0 ? CLI_EXIT_OK : CLI_EXIT_API;
    }
    cli_response_t response;
    if (cli_client_request (self->session->client, "GET", path, NULL, NULL, 0,
                            &response)) {
        cli_session_report_unreachable (self->session);
        return CLI_EXIT_API;
    }
    rc = CLI_EXIT_OK;
    if (response.status != 200) {
        cli_session_report (self->session, &response);
        rc = CLI_EXIT_API;
    }
    else
        s_emit (self, id, 0, response.body, response.size);
    cli_response_clear (&response);
    return rc;
}

/*  One poll's walk over the task list (s_follow_task).                   */
typedef struct {
    s_logs_t *logs;
    long long only;             /* the task followed, -1 for every task    */
    size_t at;                  /* tasks walked so far                     */
    bool found;                 /* task `only` was in the list             */
    bool finished;              /* task `only` has ended and printed       */
} s_walk_t;

/*  Catches up with one task of the list. Returns 0 or -1 after reporting. */
static int
s_follow_task (s_walk_t *walk, const json_t *task)
{
    s_logs_t *self = walk->logs;
    size_t at = walk->at++;
    long long id = cli_json_int (task, "id");
    if (walk->only >= 0 && id != walk->only)
        return 0;
    walk->found = true;
    const char *task_state = cli_json_str (task, "state", "");
    s_progress_t *progress = s_progress (self, task, at);
    if (!progress) {
        fprintf (stderr, CLI_PROGRAM ": out of memory\n");
        return -1;
    }
    if (!progress->finished && strcmp (task_state, "pending") != 0
        && s_catch_up (self, task, progress, s_task_ended (task_state)))
        return -1;
    walk->finished = progress->finished;
    return 0;
}

static int
s_follow_page (json_t *page, cli_response_t *response, size_t number,
               bool last, void *arg)
{
    (void) response;
    (void) number;
    (void) last;
    size_t index;
    json_t *task;
    json_array_foreach (json_object_get (page, "tasks"), index, task)
        if (s_follow_task (arg, task))
            return -1;
    return 0;
}

static long
s_since_ms (const struct timespec *since)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (long) ((now.tv_sec - since->tv_sec) * 1000
                   + (now.tv_nsec - since->tv_nsec) / 1000000);
}

/*  Follows tasks until they end: task `only`, or with `only` < 0 every
    task until the job has ended.                                          */
static int
s_follow (s_logs_t *self, long long only)
{
    for (;;) {
        struct timespec start;
        clock_gettime (CLOCK_MONOTONIC, &start);
        char state[32];
        bool job_ended = false;
        //  Read the job's state before the task list: when it says
        //  "ended", the list read after it holds every task's last state.
        if (only < 0) {
            if (!s_job_state (self, state, sizeof state))
                return CLI_EXIT_API;
            job_ended = s_task_ended (state);
        }
        //  Every page, or with `only` the one page that starts at it.
        s_walk_t walk = { .logs = self, .only = only };
        char query[64] = "";
        if (only >= 0)
            snprintf (query, sizeof query, "cursor=%lld", only);
        if (cli_job_task_pages (self->session, self->job, query,
                                only >= 0 ? 1 : 0, s_follow_page, &walk))
            return CLI_EXIT_API;
        bool found = walk.found;
        bool finished = walk.finished;
        if (only >= 0 && !found) {
            fprintf (stderr, CLI_PROGRAM ": Task not found: job %s has no "
                     "task %lld\n", self->job, only);
            return CLI_EXIT_API;
        }
        if (only >= 0 && !finished) {
            //  A task still pending in a job that ended never runs.
            if (!s_job_state (self, state, sizeof state))
                return CLI_EXIT_API;
            finished = s_task_ended (state);
        }
        if ((only >= 0 && finished) || (only < 0 && job_ended))
            return CLI_EXIT_OK;
        long took = s_since_ms (&start);
        cli_sleep_ms (took * S_FOLLOW_IDLE > CLI_POLL_MS
                          ? took * S_FOLLOW_IDLE
                          : CLI_POLL_MS);
    }
}

int
cli_cmd_logs (cli_session_t *session, const cli_options_t *options)
{
    s_logs_t self = {
        .session = session,
        .job = options->args[0],
        .current = -1,
    };
    long long task = -1;
    if (options->arg_count > 1) {
        char *end;
        task = strtoll (options->args[1], &end, 10);
        if (*end || end == options->args[1] || task < 0)
            return cli_usage_error ("TASK is a task number, not '%s'",
                                    options->args[1]);
    }
    if (task >= 0)
        self.current = task;    /* one task: no header line */
    int rc;
    if (options->follow)
        rc = s_follow (&self, task);
    else if (task >= 0)
        rc = s_print_one (&self, task);
    else
        rc = s_print_all (&self);
    free (self.progress);
    fflush (stdout);
    return rc;
}
