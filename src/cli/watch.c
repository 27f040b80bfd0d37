/*  watch.c: follows a job until it ends (`--wait`).

    Reads the job's event stream, GET /api/v1/jobs/{id}/events (Server-Sent
    Events): the controller sends the job as it is, then the job again each
    time it changes, and ends the stream after the job has ended. The job
    events are shown at most every CLI_POLL_MS (a big job changes
    thousands of times a second), the final one at once:

    - on a terminal, one progress bar per stage, redrawn in place: the
      cursor goes back up over the lines drawn last time ("ESC[nA"), each
      line is cleared ("ESC[2K") and written again. Lines are cut to the
      terminal's width, because a line that wraps would throw the count of
      lines to go back up off;
    - otherwise (a pipe, a file, TERM=dumb), one plain line per change of
      a stage: "stage 'Download Data' running: 3/5 done, 1 failed", and a
      line when the job's state changes. "done" counts tasks that ended,
      whatever their state;
    - with --json, nothing until the end, then the final job as the API
      sent it.

    The controller may go away for a while (a restart: it keeps its state
    on disk and carries on), so a refused connection, a broken stream or a
    503 is retried for up to S_AWAY_MAX_MS before the watch gives up, once
    the job has been seen; the stream is resumed with Last-Event-ID. When
    the controller no longer holds the events missed (a `reset` event), the
    job is read once over REST. Any other error ends the watch at once.    */
#include "cli.h"
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/*  How long the controller may be unreachable before the watch gives up. */
#define S_AWAY_MAX_MS 30000

/*  Stages drawn as bars; more are summed up in one line.                  */
#define S_BARS_MAX 40

/*  Longest line of the event stream kept (a job event is one line).       */
#define S_LINE_MAX ((size_t) 16 * 1024 * 1024)

/*  On a terminal the bars are redrawn this often while nothing changes,
    so the elapsed time moves.                                             */
#define S_REDRAW_MS 1000

/*  Widest bar and widest stage name drawn.                                */
#define S_BAR_WIDTH 30
#define S_NAME_WIDTH 24

/*  One stage's numbers, as shown.                                         */
typedef struct {
    const char *name;           /* borrowed from the job view              */
    const char *state;          /* borrowed from the job view              */
    long long total;            /* tasks, spawn task included              */
    long long done;             /* tasks that ended                        */
    long long failed;           /* tasks that failed                       */
    long long canceled;         /* tasks canceled                          */
} s_stage_t;

/*  A watch in progress. Invariant: `last` is the previous job view (NULL
    before the first answer); `lines` is how many lines the last redraw
    left on the terminal.                                                  */
typedef struct {
    cli_session_t *session;     /* borrowed                                */
    const char *id;             /* the job's id (borrowed)                 */
    char path[CLI_PATH_MAX];    /* GET path of the job                     */
    json_t *last;               /* previous job view; owned                */
    int lines;                  /* lines drawn by the last redraw          */
    struct timespec start;      /* when the watch started (monotonic)      */
    json_t *pending;            /* a newer view not shown yet; owned       */
    struct timespec shown;      /* when a view was last shown (monotonic)  */
    unsigned long long last_id; /* id of the last event read               */
    bool have_id;               /* last_id is set                          */
    bool reload;                /* a reset: read the job over REST         */
    bool done;                  /* the job ended; rc says how             */
    int rc;                     /* exit code once done                     */
    char *line;                 /* the stream line being read (owned)      */
    size_t used;                /* its bytes                               */
    size_t cap;                 /* bytes allocated                         */
    char type[16];              /* `event:` of the event being read        */
    char *data;                 /* its `data:` (owned), NULL when none     */
    unsigned long long event_id;/* its `id:`                               */
    bool has_id;                /* it had one                              */
} s_watch_t;

/*  Milliseconds since `since` on the monotonic clock.                     */
static long long
s_elapsed_ms (const struct timespec *since)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (long long) (now.tv_sec - since->tv_sec) * 1000
           + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/*  True for a job state that does not change any more.                    */
static bool
s_ended (const char *state)
{
    return state && (strcmp (state, "succeeded") == 0
                     || strcmp (state, "failed") == 0
                     || strcmp (state, "canceled") == 0);
}

int
cli_exit_for_state (const char *state)
{
    if (state && strcmp (state, "succeeded") == 0)
        return CLI_EXIT_OK;
    if (state && strcmp (state, "failed") == 0)
        return CLI_EXIT_JOB_FAILED;
    if (state && strcmp (state, "canceled") == 0)
        return CLI_EXIT_JOB_CANCELED;
    return CLI_EXIT_API;
}

/*  The numbers of one stage of a job view.                                */
static s_stage_t
s_stage (const json_t *stage)
{
    json_t *tasks = json_object_get (stage, "tasks");
    long long failed = cli_json_int (tasks, "failed");
    long long canceled = cli_json_int (tasks, "canceled");
    return (s_stage_t) {
        .name = cli_json_str (stage, "name", "?"),
        .state = cli_json_str (stage, "state", "?"),
        .total = cli_json_int (tasks, "total"),
        .done = cli_json_int (tasks, "succeeded") + failed + canceled,
        .failed = failed,
        .canceled = canceled,
    };
}

/*  "3/5 done, 1 failed, 1 canceled".                                     */
static void
s_counts (const s_stage_t *stage, char *out, size_t size)
{
    int used = snprintf (out, size, "%lld/%lld done", stage->done,
                         stage->total);
    if (stage->failed && used > 0 && (size_t) used < size)
        used += snprintf (out + used, size - (size_t) used, ", %lld failed",
                          stage->failed);
    if (stage->canceled && used > 0 && (size_t) used < size)
        snprintf (out + used, size - (size_t) used, ", %lld canceled",
                  stage->canceled);
}

/* ---- plain lines ----------------------------------------------------- */

/*  Prints a line for each stage that changed since the last view, and for
    the job when its state changed (not its final state: that is the
    closing line).                                                         */
static void
s_plain (s_watch_t *self, const json_t *job)
{
    const char *state = cli_json_str (job, "state", "?");
    const char *before = cli_json_str (self->last, "state", "");
    if (strcmp (state, before) != 0 && !s_ended (state))
        printf ("job %s %s\n", self->id, state);
    json_t *old_stages = json_object_get (self->last, "stages");
    size_t index;
    json_t *stage;
    json_array_foreach (json_object_get (job, "stages"), index, stage) {
        s_stage_t now = s_stage (stage);
        json_t *old = json_array_get (old_stages, index);
        s_stage_t then = old ? s_stage (old)
                             : (s_stage_t) { .state = "pending" };
        if (strcmp (now.state, then.state) == 0 && now.total == then.total
            && now.done == then.done && now.failed == then.failed
            && now.canceled == then.canceled)
            continue;
        char name[S_NAME_WIDTH * 8], counts[128];
        cli_text_clean (now.name, name, sizeof name, 100);
        s_counts (&now, counts, sizeof counts);
        printf ("stage '%s' %s: %s\n", name, now.state, counts);
    }
    fflush (stdout);
}

/* ---- bars on a terminal ---------------------------------------------- */

/*  The terminal's width, 80 when it does not say.                         */
static int
s_columns (void)
{
    struct winsize size;
    if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 80;
}

/*  Writes one line of the redraw: clears it, prints `text` (already cut
    to the width) and a coloured `state` word.                             */
static void
s_bar_line (s_watch_t *self, const char *text, const char *state,
            const char *tail)
{
    bool color = self->session->color;
    cli_color_t hue = cli_state_color (state);
    printf ("\033[2K%s%s%-9s%s%s\n", text,
            color ? cli_color_start (hue) : "", state,
            color && hue ? CLI_COLOR_END : "", tail);
    self->lines++;
}

/*  Redraws the job line and one bar per stage over the previous drawing. */
static void
s_bars (s_watch_t *self, const json_t *job)
{
    int columns = s_columns ();
    json_t *stages = json_object_get (job, "stages");
    if (self->lines > 0)
        printf ("\033[%dA", self->lines);
    self->lines = 0;

    char head[256];
    long long seconds = s_elapsed_ms (&self->start) / 1000;
    char id[80], class_name[80];
    cli_text_clean (self->id, id, sizeof id, 20);
    cli_text_clean (cli_json_str (job, "job", "?"), class_name,
                    sizeof class_name, 20);
    snprintf (head, sizeof head, "job %s (%s) ", id, class_name);
    char elapsed[32];
    snprintf (elapsed, sizeof elapsed, " %lld:%02lld", seconds / 60,
              seconds % 60);
    s_bar_line (self, head, cli_json_str (job, "state", "?"), elapsed);

    //  Name column as wide as the widest name, within bounds; the bar
    //  takes what is left of the line, or disappears on a narrow terminal.
    size_t name_width = 4;
    size_t index;
    json_t *stage;
    json_array_foreach (stages, index, stage) {
        size_t width = cli_text_width (cli_json_str (stage, "name", "?"));
        if (width > name_width)
            name_width = width;
    }
    if (name_width > S_NAME_WIDTH)
        name_width = S_NAME_WIDTH;
    //  "  NAME  [BAR]  STATE     COUNTS": the bar gets what the widest
    //  counts leave of the line.
    int counts_width = 0;
    json_array_foreach (stages, index, stage) {
        s_stage_t now = s_stage (stage);
        char counts[128];
        s_counts (&now, counts, sizeof counts);
        if ((int) strlen (counts) > counts_width)
            counts_width = (int) strlen (counts);
    }
    int bar = columns - 1 - (2 + (int) name_width + 2) - 4 - 9 - 1
              - counts_width;
    if (bar > S_BAR_WIDTH)
        bar = S_BAR_WIDTH;
    json_array_foreach (stages, index, stage) {
        if (index == S_BARS_MAX) {
            printf ("\033[2K  ... %zu more stages\n",
                    json_array_size (stages) - S_BARS_MAX);
            self->lines++;
            break;
        }
        s_stage_t now = s_stage (stage);
        char name[S_NAME_WIDTH * 4 + 4];
        size_t width = cli_text_clean (now.name, name, sizeof name,
                                       name_width);
        char line[512];
        int used = snprintf (line, sizeof line, "  %s%*s  ", name,
                             (int) (name_width - width), "");
        if (bar >= 10 && used > 0 && (size_t) used < sizeof line) {
            int filled = now.total > 0 ? (int) (now.done * bar / now.total)
                         : strcmp (now.state, "succeeded") == 0 ? bar : 0;
            line[used++] = '[';
            for (int i = 0; i < bar; i++)
                line[used++] = i < filled ? '#' : '-';
            used += snprintf (line + used, sizeof line - (size_t) used,
                              "]  ");
        }
        char counts[128];
        s_counts (&now, counts, sizeof counts);
        char tail[160];
        snprintf (tail, sizeof tail, " %s", counts);
        //  Cut the counts if the terminal is narrower than the line.
        int room = columns - 1 - used - 9;
        if (room < (int) strlen (tail))
            tail[room > 0 ? room : 0] = '\0';
        s_bar_line (self, line, now.state, tail);
    }
    printf ("\033[J");
    fflush (stdout);
}

/* ---- the loop -------------------------------------------------------- */

/*  The closing line: "job ID succeeded", or failed with its error.        */
static void
s_final (s_watch_t *self, const json_t *job)
{
    const char *state = cli_json_str (job, "state", "?");
    const char *error = cli_json_str (job, "error", NULL);
    char clean[1024];
    if (error)
        cli_text_clean (error, clean, sizeof clean, 400);
    cli_color_t hue = self->session->color ? cli_state_color (state)
                                           : CLI_COLOR_NONE;
    printf ("job %s %s%s%s%s%s\n", self->id, cli_color_start (hue), state,
            hue ? CLI_COLOR_END : "", error ? ": " : "", error ? clean : "");
    fflush (stdout);
}

/*  Shows `job` now: bars or lines (nothing with --json until the end).  */
static void
s_show_now (s_watch_t *self, json_t *job)
{
    if (!self->session->json && self->session->tty)
        s_bars (self, job);
    else if (!self->session->json)
        s_plain (self, job);
    clock_gettime (CLOCK_MONOTONIC, &self->shown);
    if (job != self->last) {
        json_decref (self->last);
        self->last = json_incref (job);
    }
    if (job == self->pending) {
        json_decref (self->pending);
        self->pending = NULL;
    }
}

/*  A job view from the stream (or REST): the final one ends the watch;
    others are shown at most every CLI_POLL_MS. `text` is its JSON as
    sent, printed at the end with --json. Takes `job`.                    */
static void
s_on_job (s_watch_t *self, json_t *job, const char *text)
{
    const char *state = cli_json_str (job, "state", NULL);
    if (!state) {
        json_decref (job);
        return;
    }
    json_decref (self->pending);
    self->pending = job;
    if (s_ended (state)) {
        s_show_now (self, job);
        if (self->session->json)
            printf ("%s\n", text);
        else
            s_final (self, job);
        fflush (stdout);
        self->rc = cli_exit_for_state (state);
        self->done = true;
        return;
    }
    if (!self->last || s_elapsed_ms (&self->shown) >= CLI_POLL_MS)
        s_show_now (self, job);
}

/*  One whole event: a job view, or a reset.                              */
static void
s_on_event (s_watch_t *self)
{
    if (self->has_id) {
        self->last_id = self->event_id;
        self->have_id = true;
    }
    if (strcmp (self->type, "job") == 0 && self->data)
        s_on_job (self, json_loads (self->data, 0, NULL), self->data);
    else if (strcmp (self->type, "reset") == 0)
        self->reload = true;
    free (self->data);
    self->data = NULL;
    self->type[0] = '\0';
    self->has_id = false;
}

/*  One line of the stream (without its line break).                      */
static void
s_on_line (s_watch_t *self, char *line)
{
    if (*line == '\0') {
        if (self->data || self->type[0] || self->has_id)
            s_on_event (self);
        return;
    }
    if (*line == ':')
        return;                  /* a comment: the keep-alive */
    char *value = strchr (line, ':');
    if (value) {
        *value++ = '\0';
        if (*value == ' ')
            value++;
    }
    else
        value = line + strlen (line);
    if (strcmp (line, "event") == 0)
        snprintf (self->type, sizeof self->type, "%s", value);
    else if (strcmp (line, "id") == 0) {
        char *end;
        self->event_id = strtoull (value, &end, 10);
        self->has_id = *value && !*end;
    }
    else if (strcmp (line, "data") == 0) {
        //  Several data lines make one text, joined by line breaks.
        size_t old = self->data ? strlen (self->data) : 0;
        char *data = realloc (self->data, old + strlen (value) + 2);
        if (!data)
            return;
        if (old)
            data[old++] = '\n';
        strcpy (data + old, value);
        self->data = data;
    }
}

/*  The stream's bytes, cut into lines; NULL data is curl's tick.          */
static bool
s_on_data (void *arg, const char *data, size_t size)
{
    s_watch_t *self = arg;
    if (!data) {
        if (self->pending && s_elapsed_ms (&self->shown) >= CLI_POLL_MS)
            s_show_now (self, self->pending);
        else if (self->last && self->session->tty && !self->session->json
                 && s_elapsed_ms (&self->shown) >= S_REDRAW_MS)
            s_show_now (self, self->last);
        return true;
    }
    for (size_t i = 0; i < size && !self->done; i++) {
        char c = data[i];
        if (c == '\n') {
            if (self->used && self->line[self->used - 1] == '\r')
                self->used--;
            self->line[self->used] = '\0';
            s_on_line (self, self->line);
            self->used = 0;
            continue;
        }
        if (self->used + 2 > self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 4096;
            char *line = cap <= S_LINE_MAX ? realloc (self->line, cap) : NULL;
            if (!line) {
                fprintf (stderr, CLI_PROGRAM ": an event of the job's stream "
                         "is over %zu MiB\n", S_LINE_MAX / (1024 * 1024));
                self->rc = CLI_EXIT_API;
                self->done = true;
                return false;
            }
            self->line = line;
            self->cap = cap;
        }
        self->line[self->used++] = c;
    }
    return !self->done;
}

/*  Reads the job once over REST (after a reset). Returns 0, or -1 when
    the controller could not be asked (the caller treats it as away).     */
static int
s_reload (s_watch_t *self)
{
    char path[CLI_PATH_MAX];
    if (cli_job_path (self->id, "", path, sizeof path))
        return -1;
    cli_response_t response;
    int sent = cli_client_request (self->session->client, "GET", path, NULL,
                                   NULL, 0, &response);
    if (sent || response.status == 503) {
        cli_response_clear (&response);
        return -1;
    }
    if (response.status != 200) {
        cli_session_report (self->session, &response);
        self->rc = CLI_EXIT_API;
        self->done = true;
    }
    else {
        self->reload = false;
        s_on_job (self, json_loadb (response.body, response.size, 0, NULL),
                  response.body);
    }
    cli_response_clear (&response);
    return 0;
}

int
cli_watch_job (cli_session_t *session, const char *id)
{
    s_watch_t self = { .session = session, .id = id };
    int rc = cli_job_path (id, "/events", self.path, sizeof self.path);
    if (rc)
        return rc;
    clock_gettime (CLOCK_MONOTONIC, &self.start);
    struct timespec away_since = { 0 };
    bool away = false;
    while (!self.done) {
        char resume[64];
        const char *headers[1] = { resume };
        snprintf (resume, sizeof resume, "Last-Event-ID: %llu", self.last_id);
        cli_response_t response;
        self.used = 0;
        int sent = cli_client_stream (session->client, self.path, headers,
                                      self.have_id ? 1 : 0, s_on_data, &self,
                                      &response);
        if (!self.done && self.reload && (sent || response.status == 200))
            sent = s_reload (&self) ? -1 : 0;
        if (self.done) {
            cli_response_clear (&response);
            break;
        }
        if (sent || response.status == 503) {
            //  Away: wait for it to come back, within bounds.
            if (!away) {
                away = true;
                clock_gettime (CLOCK_MONOTONIC, &away_since);
            }
            if (!self.last || s_elapsed_ms (&away_since) > S_AWAY_MAX_MS) {
                if (sent)
                    cli_session_report_unreachable (session);
                else
                    cli_session_report (session, &response);
                cli_response_clear (&response);
                self.rc = CLI_EXIT_API;
                break;
            }
            cli_response_clear (&response);
            cli_sleep_ms (CLI_POLL_MS);
            continue;
        }
        if (response.status != 200) {
            cli_session_report (session, &response);
            cli_response_clear (&response);
            self.rc = CLI_EXIT_API;
            break;
        }
        //  The stream ended before the job did: the controller is
        //  stopping. Resume where it left off.
        away = false;
        cli_response_clear (&response);
        cli_sleep_ms (CLI_POLL_MS);
    }
    json_decref (self.last);
    json_decref (self.pending);
    free (self.line);
    free (self.data);
    return self.rc;
}
