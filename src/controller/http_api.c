/*  http_api.c: REST routes, request checking and problem responses.

    Every path goes through one handler and one route table; a path no
    route matches is a 404 problem, a known path with another method a
    405. civetweb runs without a document root, so it never serves files
    or lists directories on its own. Errors are RFC 9457 problem objects
    (`type`, `title`, `status`, `detail`, and `field` naming the offending
    input where there is one).                                             */
#include "http_api.h"

#include "dashboard.h"
#include "events.h"
#include "loop.h"
#include "mailbox.h"
#include "metrics.h"

#include "shoal/log.h"
#include "shoal/params.h"
#include "shoal/random.h"
#include "shoal/scheduler.h"

#include <civetweb.h>
#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*  How long a handler waits for the loop before answering 503.           */
#define S_LOOP_TIMEOUT_MS 10000

/*  Tasks per page of a job's task list when the client does not say, and
    the most it may ask for: one page is rendered by the controller loop,
    which dispatches no task meanwhile, so a page must stay small.       */
#define S_TASKS_LIMIT 1000
#define S_TASKS_LIMIT_MAX 10000

/*  Longest path segment captured for a {parameter}.                      */
#define S_MAX_SEGMENT 128
#define S_MAX_SEGMENTS 8

/*  Routes in the table, plus one for paths no route matched.             */
#define S_ROUTE_SLOTS 24

struct shoal_http {
    const shoal_defs_t *defs;    /* borrowed, read-only                    */
    char *data_dir;              /* the shared volume: jobs/<id>/ is made
                                    here, off the loop                     */
    uint64_t requests[S_ROUTE_SLOTS][SHOAL_METRICS_STATUSES];
                                 /* answered requests by route and status,
                                    atomic adds from handler threads       */
    struct mg_context *ctx;      /* civetweb server                        */
    char *token;                 /* required in X-Shoal-Token on /api/, or
                                    NULL when the API is open              */
    shoal_mailbox_t *mailbox;    /* the loop's (borrowed)                  */
    shoal_events_t *events;      /* the loop's event hub (borrowed), NULL
                                    until shoal_http_set_events            */
    int stream_cap;              /* event streams open at once, at most    */
    int streams;                 /* event streams open now (atomic)        */
};

/*  One request being handled.                                            */
typedef struct {
    struct mg_connection *conn;
    const struct mg_request_info *info;
    shoal_http_t *http;
    char params[2][S_MAX_SEGMENT + 1]; /* captured {id} and {task} values */
    int loop_error;              /* why the loop gave no answer: an errno
                                    of shoal_mailbox_call                  */
} s_request_t;

/* ---- responses ----------------------------------------------------- */

/*  Sends the JSON `text` of `size` bytes (NULL: none) with `status`;
    `header` is one extra "Name: value" line (without CRLF) or NULL.      */
static void
s_send_text (s_request_t *req, int status, const char *text, size_t size,
             bool problem, const char *header)
{
    /* Headers and body leave in one write: split writes on a keep-alive
       connection wait for the client's delayed ACK (about 40 ms). */
    if (!text)
        size = 0;
    char head[1024];
    int head_size = snprintf (
        head, sizeof head,
        "HTTP/1.1 %d %s\r\n"
        "Content-Type: %s\r\n"
        "Content-Length: %zu\r\n"
        "Cache-Control: no-store\r\n"
        "%s%s"
        "\r\n",
        status, mg_get_response_code_text (req->conn, status),
        problem ? "application/problem+json" : "application/json", size + 1,
        header ? header : "", header ? "\r\n" : "");
    if (head_size < 0 || (size_t) head_size >= sizeof head)
        return;
    char *whole = malloc ((size_t) head_size + size + 1);
    if (whole) {
        memcpy (whole, head, (size_t) head_size);
        if (text)
            memcpy (whole + head_size, text, size);
        whole[(size_t) head_size + size] = '\n';
        mg_write (req->conn, whole, (size_t) head_size + size + 1);
        free (whole);
    }
}

/*  Sends `body` printed compactly (as s_send_text).                      */
static void
s_send_json (s_request_t *req, int status, json_t *body, bool problem,
             const char *header)
{
    char *text = json_dumps (body, JSON_COMPACT);
    s_send_text (req, status, text, text ? strlen (text) : 0, problem,
                 header);
    free (text);
}

static int
s_problem_with (s_request_t *req, int status, const char *title,
                const char *detail, const char *field, const char *header)
{
    json_t *body = json_pack ("{s:s, s:s, s:i, s:s}", "type", "about:blank",
                              "title", title, "status", status, "detail",
                              detail);
    if (field && *field)
        json_object_set_new (body, "field", json_string (field));
    s_send_json (req, status, body, true, header);
    json_decref (body);
    return status;
}

static int
s_problem (s_request_t *req, int status, const char *title,
           const char *detail, const char *field)
{
    return s_problem_with (req, status, title, detail, field, NULL);
}

/* ---- talking to the loop ---------------------------------------------- */

/*  Sends `request` (taken) to the loop and returns its reply, or NULL
    when there is none (req->loop_error says why). Both go by reference
    (mailbox.h): the loop's answer is printed once, for the client.       */
static json_t *
s_loop_call (s_request_t *req, json_t *request)
{
    json_t *reply = shoal_mailbox_call (req->http->mailbox, request,
                                        S_LOOP_TIMEOUT_MS);
    req->loop_error = reply ? 0 : errno;
    return reply;
}

/*  The 503 for a call the loop did not answer.                           */
static int
s_loop_unavailable (s_request_t *req)
{
    if (req->loop_error == ESHUTDOWN)
        return s_problem (req, 503, "Controller stopping",
                          "the controller is stopping", NULL);
    return s_problem (req, 503, "Controller busy",
                      "the controller did not answer in time", NULL);
}

/*  Sends the loop's `reply` (taken) as the HTTP response.                */
static int
s_send_reply (s_request_t *req, json_t *reply)
{
    if (!reply)
        return s_loop_unavailable (req);
    int status = (int) json_integer_value (json_object_get (reply, "status"));
    const char *location = json_string_value (json_object_get (reply,
                                                               "location"));
    json_t *event_id = json_object_get (reply, "event_id");
    char header[300];
    int used = 0;
    if (location)
        used = snprintf (header, sizeof header, "Location: %s%s", location,
                         json_is_true (json_object_get (reply, "replayed"))
                             ? "\r\nIdempotent-Replayed: true" : "");
    if (event_id && used >= 0 && (size_t) used < sizeof header)
        /* The last event whose change this view shows: a client resumes
           the event stream from it (?last_event_id=N). */
        snprintf (header + used, sizeof header - (size_t) used,
                  "%sX-Shoal-Event-Id: %" JSON_INTEGER_FORMAT,
                  used ? "\r\n" : "", json_integer_value (event_id));
    bool problem = json_is_true (json_object_get (reply, "problem"));
    /* A job view the loop wrote as text goes out as it is. */
    json_t *text = json_object_get (reply, "body_text");
    if (json_is_string (text))
        s_send_text (req, status, json_string_value (text),
                     json_string_length (text), problem,
                     location || event_id ? header : NULL);
    else
        s_send_json (req, status, json_object_get (reply, "body"), problem,
                     location || event_id ? header : NULL);
    json_decref (reply);
    return status;
}

/*  Asks the loop and relays its answer as the HTTP response.             */
static int
s_relay (s_request_t *req, json_t *request)
{
    return s_send_reply (req, s_loop_call (req, request));
}

/* ---- request helpers ------------------------------------------------ */

/*  Reads the whole body, at most SHOAL_HTTP_MAX_BODY bytes. Returns the
    parsed JSON, or NULL after answering with a problem.                  */
static json_t *
s_read_json_body (s_request_t *req)
{
    long long declared = req->info->content_length;
    if (declared > SHOAL_HTTP_MAX_BODY) {
        char detail[120];
        snprintf (detail, sizeof detail,
                  "the request body is over the limit of %d bytes",
                  SHOAL_HTTP_MAX_BODY);
        s_problem (req, 413, "Request body too large", detail, "body");
        return NULL;
    }
    char *buffer = malloc (SHOAL_HTTP_MAX_BODY + 1);
    if (!buffer) {
        s_problem (req, 503, "Out of memory", "cannot read the body", NULL);
        return NULL;
    }
    size_t used = 0;
    int got;
    while (used <= SHOAL_HTTP_MAX_BODY
           && (got = mg_read (req->conn, buffer + used,
                              SHOAL_HTTP_MAX_BODY + 1 - used)) > 0)
        used += (size_t) got;
    if (used > SHOAL_HTTP_MAX_BODY) {
        free (buffer);
        char detail[120];
        snprintf (detail, sizeof detail,
                  "the request body is over the limit of %d bytes",
                  SHOAL_HTTP_MAX_BODY);
        s_problem (req, 413, "Request body too large", detail, "body");
        return NULL;
    }
    json_error_t json_err;
    json_t *body = json_loadb (buffer, used, JSON_REJECT_DUPLICATES, &json_err);
    free (buffer);
    if (!body) {
        char detail[300];
        snprintf (detail, sizeof detail,
                  "the body is not valid JSON: %s (line %d, column %d)",
                  json_err.text, json_err.line, json_err.column);
        s_problem (req, 400, "Malformed JSON", detail, "body");
        return NULL;
    }
    if (!json_is_object (body)) {
        json_decref (body);
        s_problem (req, 400, "Malformed request", "the body must be a JSON "
                   "object", "body");
        return NULL;
    }
    return body;
}

/*  Copies query parameter `name` into `out`; false when absent.          */
static bool
s_query (s_request_t *req, const char *name, char *out, size_t size)
{
    const char *query = req->info->query_string;
    if (!query)
        return false;
    return mg_get_var (query, strlen (query), name, out, size) >= 0;
}

/*  Job ids are made by the loop from [0-9a-f]; anything else cannot name
    a job, and refusing it here keeps odd bytes out of paths and logs.   */
static bool
s_valid_id (const char *id)
{
    size_t len = strlen (id);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) id[i]) && id[i] != '-' && id[i] != '_')
            return false;
    return true;
}

static int
s_bad_id (s_request_t *req)
{
    return s_problem (req, 404, "Job not found", "there is no such job", "id");
}

/* ---- routes --------------------------------------------------------- */

static int
s_get_healthz (s_request_t *req)
{
    json_t *body = json_pack ("{s:s}", "status", "ok");
    s_send_json (req, 200, body, false, NULL);
    json_decref (body);
    return 200;
}

static int
s_get_readyz (s_request_t *req)
{
    return s_relay (req, json_pack ("{s:s}", "op", "ping"));
}

/*  The definitions loaded now, with their version: answered by the loop,
    which also holds the earlier versions jobs were submitted under.      */
static int
s_get_definitions (s_request_t *req)
{
    return s_relay (req, json_pack ("{s:s}", "op", "definitions"));
}

static int
s_get_definitions_version (s_request_t *req)
{
    const char *text = req->params[0];
    char *end = NULL;
    errno = 0;
    unsigned long long version = strtoull (text, &end, 10);
    if (!*text || *end || errno || !isdigit ((unsigned char) *text)
        || version < 1 || version > UINT32_MAX)
        return s_problem (req, 400, "Invalid version",
                          "a definitions version is a whole number from 1",
                          "version");
    return s_relay (req, json_pack ("{s:s, s:I}", "op", "definitions",
                                    "version", (json_int_t) version));
}

static const char *
s_header (const char *name, void *arg)
{
    return mg_get_header ((const struct mg_connection *) arg, name);
}

static int
s_post_jobs (s_request_t *req)
{
    json_t *body = s_read_json_body (req);
    if (!body)
        return 400;
    int status = 0;
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        if (!streq (key, "job") && !streq (key, "params")
            && !streq (key, "start")) {
            char detail[200];
            snprintf (detail, sizeof detail,
                      "unknown field '%.100s' (known: job, params, start)",
                      key);
            status = s_problem (req, 400, "Unknown field", detail, key);
            goto done;
        }
    }
    json_t *job = json_object_get (body, "job");
    if (!json_is_string (job)) {
        status = s_problem (req, 400, "Missing job",
                            "'job' must name a job class (a string)", "job");
        goto done;
    }
    json_t *start = json_object_get (body, "start");
    if (start && !json_is_boolean (start)) {
        status = s_problem (req, 400, "Invalid field",
                            "'start' must be true or false", "start");
        goto done;
    }
    const shoal_job_class_t *job_class
        = shoal_defs_job_class (req->http->defs, json_string_value (job));
    if (!job_class) {
        char detail[200];
        snprintf (detail, sizeof detail, "there is no job class '%.100s'",
                  json_string_value (job));
        status = s_problem (req, 404, "Unknown job", detail, "job");
        goto done;
    }
    json_t *given = json_object_get (body, "params");
    if (given && json_is_null (given))
        given = NULL;
    shoal_error_t err;
    json_t *params = shoal_params_build (job_class, given, s_header,
                                         req->conn, &err);
    if (!params) {
        status = s_problem (req, shoal_error_http_status (err.code),
                            "Invalid params", err.message, err.field);
        goto done;
    }
    json_t *request = json_pack ("{s:s, s:s, s:o, s:b}", "op", "submit",
                                 "job", job_class->id, "params", params,
                                 "start", start ? json_is_true (start) : true);
    const char *idem = mg_get_header (req->conn, "Idempotency-Key");
    if (idem) {
        size_t len = strlen (idem);
        bool printable = len >= 1 && len <= 255;
        for (size_t i = 0; printable && i < len; i++)
            printable = idem[i] > 0x20 && idem[i] < 0x7f;
        if (!printable) {
            json_decref (request);
            status = s_problem (req, 400, "Invalid header",
                                "Idempotency-Key must be 1 to 255 visible "
                                "ASCII characters", "header Idempotency-Key");
            goto done;
        }
        json_object_set_new (request, "idempotency_key", json_string (idem));
    }
    /* The job's directory is made here, before the loop hears of the job:
       the shared volume may be slow (a network file system, or a local
       one busy reusing freed inodes) and the loop must not wait on it.
       The id is made here for that; the loop keeps it. */
    char id[SHOAL_JOB_ID_BYTES * 2 + 1];
    shoal_random_hex (id, SHOAL_JOB_ID_BYTES);
    char dir[4096];
    snprintf (dir, sizeof dir, "%s/jobs/%s", req->http->data_dir, id);
    if (mkdir (dir, 0755) && errno != EEXIST) {
        char detail[300];
        snprintf (detail, sizeof detail,
                  "cannot create the job directory under %.200s/jobs: %s",
                  req->http->data_dir, strerror (errno));
        json_decref (request);
        status = s_problem (req, 503, "Shared volume unavailable", detail,
                            NULL);
        goto done;
    }
    json_object_set_new (request, "id", json_string (id));
    json_t *reply = s_loop_call (req, request);
    /* No job of this id (the key named an earlier job, or the job was
       refused): the directory goes. Without an answer the loop may still
       make the job, so it stays. */
    if (reply && !json_is_true (json_object_get (reply, "job_made")))
        rmdir (dir);
    status = s_send_reply (req, reply);
done:
    json_decref (body);
    return status;
}

static int
s_get_jobs (s_request_t *req)
{
    json_t *request = json_pack ("{s:s, s:i}", "op", "jobs", "limit", 50);
    char text[64];
    if (s_query (req, "state", text, sizeof text)) {
        int state = shoal_job_state_parse (text);
        if (state < 0) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "state must be one of created, running, "
                              "succeeded, failed, canceled", "state");
        }
        json_object_set_new (request, "state", json_integer (state));
    }
    if (s_query (req, "limit", text, sizeof text)) {
        char *end;
        long limit = strtol (text, &end, 10);
        if (*end || end == text || limit < 1 || limit > 1000) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "limit must be an integer from 1 to 1000",
                              "limit");
        }
        json_object_set_new (request, "limit", json_integer (limit));
    }
    if (s_query (req, "cursor", text, sizeof text)) {
        char *end;
        long long before = strtoll (text, &end, 10);
        if (*end || end == text || before < 1) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "cursor must be the 'next' value of a previous "
                              "page", "cursor");
        }
        json_object_set_new (request, "before", json_integer (before));
    }
    return s_relay (req, request);
}

/*  A route on one job and nothing else: the id checked, then the loop's
    `op` on it.                                                           */
static int
s_job_op (s_request_t *req, const char *op)
{
    if (!s_valid_id (req->params[0]))
        return s_bad_id (req);
    return s_relay (req, json_pack ("{s:s, s:s}", "op", op, "id",
                                    req->params[0]));
}

static int
s_get_job (s_request_t *req)
{
    return s_job_op (req, "job");
}

static int
s_post_job_start (s_request_t *req)
{
    return s_job_op (req, "start");
}

static int
s_post_job_cancel (s_request_t *req)
{
    return s_job_op (req, "cancel");
}

static int
s_post_job_retry (s_request_t *req)
{
    return s_job_op (req, "retry");
}

static int
s_get_job_tasks (s_request_t *req)
{
    if (!s_valid_id (req->params[0]))
        return s_bad_id (req);
    json_t *request = json_pack ("{s:s, s:s, s:i, s:i}", "op", "tasks", "id",
                                 req->params[0], "limit", S_TASKS_LIMIT,
                                 "from", 0);
    char text[256];
    if (s_query (req, "limit", text, sizeof text)) {
        char *end;
        long limit = strtol (text, &end, 10);
        if (*end || end == text || limit < 1 || limit > S_TASKS_LIMIT_MAX) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "limit must be an integer from 1 to 10000",
                              "limit");
        }
        json_object_set_new (request, "limit", json_integer (limit));
    }
    if (s_query (req, "cursor", text, sizeof text)) {
        char *end;
        errno = 0;
        long long from = strtoll (text, &end, 10);
        if (*end || end == text || !isdigit ((unsigned char) *text) || errno
            || from > UINT32_MAX) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "cursor must be the 'next' value of a previous "
                              "page", "cursor");
        }
        json_object_set_new (request, "from", json_integer (from));
    }
    if (s_query (req, "state", text, sizeof text)) {
        int state = shoal_task_state_parse (text);
        if (state < 0) {
            json_decref (request);
            return s_problem (req, 400, "Invalid query",
                              "state must be one of pending, running, "
                              "succeeded, failed, canceled", "state");
        }
        json_object_set_new (request, "state", json_integer (state));
    }
    /* A stage is named by the job's class, which only the loop holds. A
       name too long for the buffer is refused here, never dropped: a
       filter silently ignored would answer every task. */
    const char *query = req->info->query_string;
    int got = query ? mg_get_var (query, strlen (query), "stage", text,
                                  sizeof text)
                    : -1;
    if (got == -2) {
        json_decref (request);
        return s_problem (req, 400, "Invalid query",
                          "stage must be the name or the index of one of the "
                          "job's stages", "stage");
    }
    if (got >= 0)
        json_object_set_new (request, "stage", json_string (text));
    return s_relay (req, request);
}

/*  Opens <jobs_dir>/<job>/logs/<file> for reading without following a
    symbolic link at any of the last three steps (the ones a task can
    touch), and only if it is a regular file. Returns the fd or -1.       */
static int
s_open_log (const char *jobs_dir, const char *job, const char *file)
{
    if (!jobs_dir || !job || !file)
        return -1;
    int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
    int jobs = open (jobs_dir, flags | O_DIRECTORY);
    int dir = jobs >= 0 ? openat (jobs, job, flags | O_DIRECTORY) : -1;
    int logs = dir >= 0 ? openat (dir, "logs", flags | O_DIRECTORY) : -1;
    int fd = logs >= 0 ? openat (logs, file, flags | O_NONBLOCK) : -1;
    struct stat st;
    if (fd >= 0 && (fstat (fd, &st) || !S_ISREG (st.st_mode))) {
        close (fd);
        fd = -1;
    }
    if (logs >= 0)
        close (logs);
    if (dir >= 0)
        close (dir);
    if (jobs >= 0)
        close (jobs);
    return fd;
}

/*  The bytes `*first`..`*last` of a log of `size` bytes that a Range
    header asks for (RFC 9110, section 14): "bytes=A-B", "bytes=A-" or the
    last N bytes, "bytes=-N". Returns 1 for a range to send, 0 to send the
    whole log (no header, or one this server does not take: other units,
    several ranges, bad syntax; the RFC lets a server ignore those), -1
    when the range starts past the end (416). A follower asks for
    "bytes=SENT-", so each poll costs what is new, not the whole log.    */
static int
s_log_range (const char *header, long long size, long long *first,
             long long *last)
{
    if (!header || strncmp (header, "bytes=", 6) != 0)
        return 0;
    const char *at = header + 6;
    while (*at == ' ')
        at++;
    bool suffix = *at == '-';
    if (suffix)
        at++;
    if (!isdigit ((unsigned char) *at))
        return 0;
    errno = 0;
    char *end;
    long long a = strtoll (at, &end, 10);
    if (errno)
        return 0;
    long long b = -1;
    if (!suffix) {
        if (*end != '-')
            return 0;
        at = end + 1;
        if (isdigit ((unsigned char) *at)) {
            b = strtoll (at, &end, 10);
            if (errno || b < a)
                return 0;
        }
        else
            end = (char *) at;
    }
    while (*end == ' ')
        end++;
    if (*end)
        return 0;   /* several ranges, or trailing bytes */
    if (suffix) {
        if (a == 0 || size == 0)
            return -1;
        *first = a < size ? size - a : 0;
        *last = size - 1;
        return 1;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= 0 && b < size ? b : size - 1;
    return 1;
}

/*  Streams a task's log file. The path comes from the loop, built from a
    job id it knows and a task number, so it cannot leave the job dir.   */
static int
s_get_task_log (s_request_t *req)
{
    if (!s_valid_id (req->params[0]))
        return s_bad_id (req);
    char *end;
    long long task = strtoll (req->params[1], &end, 10);
    if (*end || end == req->params[1] || task < 0 || task > UINT32_MAX)
        return s_problem (req, 404, "Task not found",
                          "task ids are numbers from 0", "task_id");
    json_t *reply = s_loop_call (req, json_pack ("{s:s, s:s, s:I}", "op",
                                                 "task_log", "id",
                                                 req->params[0], "task",
                                                 (json_int_t) task));
    if (!reply)
        return s_loop_unavailable (req);
    int status = (int) json_integer_value (json_object_get (reply, "status"));
    json_t *body = json_object_get (reply, "body");
    if (status != 200) {
        s_send_json (req, status, body, true, NULL);
        json_decref (reply);
        return status;
    }
    int fd = s_open_log (json_string_value (json_object_get (body, "jobs_dir")),
                         json_string_value (json_object_get (body, "job")),
                         json_string_value (json_object_get (body, "file")));
    json_decref (reply);
    if (fd < 0)
        return s_problem (req, 404, "No log yet",
                          "the task has not started or left no log",
                          "task_id");
    long long size = (long long) lseek (fd, 0, SEEK_END);
    long long first = 0, last = size - 1;
    int range = s_log_range (mg_get_header (req->conn, "Range"), size, &first,
                             &last);
    if (range < 0) {
        close (fd);
        char header[64], detail[96];
        snprintf (header, sizeof header, "Content-Range: bytes */%lld", size);
        snprintf (detail, sizeof detail,
                  "the range starts past the log's end (%lld bytes)", size);
        return s_problem_with (req, 416, "Range not satisfiable", detail,
                               "Range", header);
    }
    lseek (fd, (off_t) first, SEEK_SET);
    long long length = size > 0 ? last - first + 1 : 0;
    if (range > 0)
        mg_printf (req->conn,
                   "HTTP/1.1 206 Partial Content\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %lld\r\n"
                   "Content-Range: bytes %lld-%lld/%lld\r\n"
                   "Accept-Ranges: bytes\r\n"
                   "Cache-Control: no-store\r\n\r\n",
                   length, first, last, size);
    else
        mg_printf (req->conn,
                   "HTTP/1.1 200 OK\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %lld\r\n"
                   "Accept-Ranges: bytes\r\n"
                   "Cache-Control: no-store\r\n\r\n",
                   length);
    /* Send exactly the length announced, even if the task still writes.
       The buffer is on the heap: civetweb threads have small stacks. */
    enum { CHUNK = 64 * 1024 };
    char *chunk = malloc (CHUNK);
    long long left = chunk ? length : 0;
    while (left > 0) {
        ssize_t got = read (fd, chunk, left < CHUNK ? (size_t) left : CHUNK);
        if (got <= 0)
            break;
        if (mg_write (req->conn, chunk, (size_t) got) <= 0)
            break;
        left -= got;
    }
    free (chunk);
    close (fd);
    return range > 0 ? 206 : 200;
}

static int
s_get_workers (s_request_t *req)
{
    return s_relay (req, json_pack ("{s:s}", "op", "workers"));
}

static int s_get_metrics (s_request_t *req);

/*  docs/openapi.yaml, compiled in (see openapi.c.in).                    */
extern const unsigned char shoal_openapi_yaml[];
extern const unsigned long shoal_openapi_yaml_size;

static int
s_get_openapi (s_request_t *req)
{
    mg_printf (req->conn,
               "HTTP/1.1 200 OK\r\n"
               "Content-Type: application/yaml\r\n"
               "Content-Length: %lu\r\n"
               "Cache-Control: no-store\r\n\r\n", shoal_openapi_yaml_size);
    mg_write (req->conn, shoal_openapi_yaml, shoal_openapi_yaml_size);
    return 200;
}

/*  The dashboard's page and files (dashboard.c), open like /healthz. The
    path as sent, before civetweb folds "//" and "..": only the exact
    paths name a file.                                                    */
static int
s_get_dashboard (s_request_t *req)
{
    const char *raw = req->info->local_uri_raw;
    int status = shoal_dashboard_serve (req->conn,
                                        raw ? raw : req->info->local_uri);
    if (status == 404)
        return s_problem (req, 404, "Not found",
                          "the dashboard has no such file", NULL);
    if (status >= 500)
        return s_problem (req, 500, "Internal error",
                          "cannot send the dashboard file", NULL);
    return status;
}

/* ---- the event stream (Server-Sent Events) ------------------------------ */

/*  Events copied out of the hub per read.                                 */
#define S_STREAM_BATCH 64

/*  A comment line goes out after this long without an event; it also
    shows whether the client is still there (the write fails if not).     */
#define S_KEEP_ALIVE_MS 15000

/*  Streams open at once, at most; never more than half of the threads,
    so streams cannot take every thread from the REST API.                */
#define S_STREAMS_MAX 64

/*  Room kept in front of a batch for its chunk-size line.                */
#define S_CHUNK_HEAD 16

/*  One open stream and the batch of text it is about to send.
    Invariant: text starts at buffer + S_CHUNK_HEAD, `used` bytes long.   */
typedef struct {
    s_request_t *req;
    bool chunked;                /* HTTP/1.1: chunked framing, so the
                                    connection can be reused after the end;
                                    HTTP/1.0: the end closes it            */
    char *buffer;                /* S_CHUNK_HEAD + text + "\r\n" room      */
    size_t used;                 /* text bytes in the batch                */
    size_t cap;                  /* bytes allocated                        */
    bool failed;                 /* a write failed: the client is gone     */
    int64_t last_write;          /* monotonic ms of the last write         */
} s_stream_t;

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Appends `size` bytes of `text` to the batch.                           */
static void
s_stream_add (s_stream_t *self, const char *text, size_t size)
{
    size_t need = S_CHUNK_HEAD + self->used + size + 2;
    if (need > self->cap) {
        size_t cap = self->cap ? self->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *grown = realloc (self->buffer, cap);
        if (!grown) {
            self->failed = true;
            return;
        }
        self->buffer = grown;
        self->cap = cap;
    }
    memcpy (self->buffer + S_CHUNK_HEAD + self->used, text, size);
    self->used += size;
}

/*  Appends one event: "id: N\nevent: TYPE\ndata: JSON\n\n".             */
static void
s_stream_event (s_stream_t *self, uint64_t id, const char *type,
                const char *data)
{
    char head[96];
    int size = snprintf (head, sizeof head, "id: %" PRIu64 "\nevent: %s\n"
                         "data: ", id, type);
    s_stream_add (self, head, (size_t) size);
    s_stream_add (self, data, strlen (data));
    s_stream_add (self, "\n\n", 2);
}

/*  Sends the batch in one write (one chunk). Returns false once the
    client is gone.                                                        */
static bool
s_stream_flush (s_stream_t *self)
{
    if (self->failed)
        return false;
    if (self->used == 0)
        return true;
    char *start = self->buffer + S_CHUNK_HEAD;
    size_t size = self->used;
    if (self->chunked) {
        char head[S_CHUNK_HEAD + 1];
        int head_size = snprintf (head, sizeof head, "%zx\r\n", self->used);
        start -= head_size;
        memcpy (start, head, (size_t) head_size);
        memcpy (start + head_size + self->used, "\r\n", 2);
        size += (size_t) head_size + 2;
    }
    self->used = 0;
    self->last_write = s_mono_ms ();
    if (mg_write (self->req->conn, start, size) != (int) size)
        self->failed = true;
    return !self->failed;
}

/*  Reads Last-Event-ID (header) or last_event_id (query); the header wins.
    Returns 1 with *id set, 0 when neither is given, or -1 after a 400
    problem naming the one that is not a decimal event id.                */
static int
s_last_event_id (s_request_t *req, uint64_t *id)
{
    const char *value = mg_get_header (req->conn, "Last-Event-ID");
    const char *field = "header Last-Event-ID";
    char text[64];
    if (!value) {
        const char *query = req->info->query_string;
        int got = query ? mg_get_var (query, strlen (query), "last_event_id",
                                      text, sizeof text)
                        : -1;
        if (got == -1)
            return 0;
        value = got >= 0 ? text : "too long";
        field = "last_event_id";
    }
    size_t len = strlen (value);
    bool ok = len >= 1 && len <= 20;
    for (size_t i = 0; ok && i < len; i++)
        ok = value[i] >= '0' && value[i] <= '9';
    if (ok) {
        errno = 0;
        *id = strtoull (value, NULL, 10);
        ok = errno == 0;
    }
    if (ok)
        return 1;
    char detail[160];
    snprintf (detail, sizeof detail, "%s must be the id of an event (a "
              "decimal number from 0 to 18446744073709551615)", field);
    s_problem (req, 400, "Invalid event id", detail, field);
    return -1;
}

/*  Serves one stream: the events of job `job` (NULL: every event) after
    the client's Last-Event-ID, or from now (a job's stream starts with a
    snapshot of the job). A job's stream ends after the job event that
    shows the job ended; the other stream ends only when the controller
    stops or the client goes.                                              */
static int
s_stream (s_request_t *req, const char *job)
{
    shoal_http_t *http = req->http;
    uint64_t cursor = 0;
    int given = s_last_event_id (req, &cursor);
    if (given < 0)
        return 400;
    if (!http->events)
        return s_problem (req, 503, "Event stream unavailable",
                          "the controller has no event stream", NULL);
    int open = __atomic_add_fetch (&http->streams, 1, __ATOMIC_RELAXED);
    if (open > http->stream_cap) {
        __atomic_sub_fetch (&http->streams, 1, __ATOMIC_RELAXED);
        char detail[160];
        snprintf (detail, sizeof detail, "%d event streams are open, the "
                  "most this controller serves at once", http->stream_cap);
        return s_problem_with (req, 503, "Too many event streams", detail,
                               NULL, "Retry-After: 5");
    }
    /* A job's stream: its current state, from the loop, with the id of the
       last event that state already shows. */
    json_t *reply = NULL;
    uint64_t snapshot_id = 0;
    bool job_ended = false;
    if (job) {
        reply = s_loop_call (req, json_pack ("{s:s, s:s}", "op", "job", "id",
                                             job));
        int status = reply ? (int) json_integer_value (
                                 json_object_get (reply, "status"))
                           : 503;
        if (status != 200) {
            __atomic_sub_fetch (&http->streams, 1, __ATOMIC_RELAXED);
            if (!reply)
                return s_loop_unavailable (req);
            s_send_json (req, status, json_object_get (reply, "body"), true,
                         NULL);
            json_decref (reply);
            return status;
        }
        snapshot_id = (uint64_t) json_integer_value (
            json_object_get (reply, "event_id"));
        /* The view comes as text (the loop writes it so); read back once
           per stream for its state. */
        json_t *text = json_object_get (reply, "body_text");
        json_t *view = json_is_string (text)
                           ? json_loadb (json_string_value (text),
                                         json_string_length (text), 0, NULL)
                           : json_incref (json_object_get (reply, "body"));
        const char *state = json_string_value (json_object_get (view,
                                                                "state"));
        job_ended = state && (streq (state, "succeeded")
                              || streq (state, "failed")
                              || streq (state, "canceled"));
        json_decref (view);
    }
    else if (!given)
        cursor = shoal_events_last (http->events);

    s_stream_t stream = {
        .req = req,
        .chunked = !streq (req->info->http_version, "1.0"),
        .last_write = s_mono_ms (),
    };
    mg_printf (req->conn,
               "HTTP/1.1 200 OK\r\n"
               "Content-Type: text/event-stream\r\n"
               "Cache-Control: no-store\r\n"
               "%s\r\n",
               stream.chunked ? "Transfer-Encoding: chunked\r\n"
                              : "Connection: close\r\n");
    bool done = false;
    if (job && !given) {
        const char *view = json_string_value (json_object_get (reply,
                                                               "body_text"));
        char *text = view ? NULL
                          : json_dumps (json_object_get (reply, "body"),
                                        JSON_COMPACT);
        s_stream_event (&stream, snapshot_id, "job",
                        view ? view : text ? text : "{}");
        free (text);
        cursor = snapshot_id;
        done = job_ended;
    }
    else if (job && job_ended && cursor >= snapshot_id)
        done = true;             /* the client has seen the end */
    json_decref (reply);
    s_stream_flush (&stream);

    shoal_event_t *batch = calloc (S_STREAM_BATCH, sizeof *batch);
    if (!batch)
        done = true;
    while (!done && !stream.failed) {
        bool reset = false;
        int count = shoal_events_read (http->events, &cursor, job, batch,
                                       S_STREAM_BATCH, S_KEEP_ALIVE_MS,
                                       &reset);
        if (count < 0)
            break;               /* the controller stops */
        if (reset) {
            char data[200];
            snprintf (data, sizeof data, "{\"reason\":\"the events after "
                      "your Last-Event-ID are no longer held: reload the "
                      "state over the REST API\"}");
            s_stream_event (&stream, cursor, "reset", data);
        }
        for (int i = 0; i < count; i++) {
            if (!done) {
                char *data = shoal_event_data (&batch[i]);
                if (data)
                    s_stream_event (&stream, batch[i].id,
                                    shoal_event_type_name (batch[i].type),
                                    data);
                free (data);
                done = job && batch[i].type == SHOAL_EVENT_JOB
                       && batch[i].final;
            }
            shoal_event_clear (&batch[i]);
        }
        /* A job that had ended at the snapshot and whose end the client
           has seen (or that fell out of the window): nothing more to say. */
        if (job && job_ended && cursor >= snapshot_id)
            done = true;
        if (stream.used == 0 && s_mono_ms () - stream.last_write
                                    >= S_KEEP_ALIVE_MS)
            s_stream_add (&stream, ": keep-alive\n\n", 14);
        s_stream_flush (&stream);
    }
    free (batch);
    if (stream.chunked && !stream.failed)
        mg_write (req->conn, "0\r\n\r\n", 5);
    free (stream.buffer);
    __atomic_sub_fetch (&http->streams, 1, __ATOMIC_RELAXED);
    return 200;
}

static int
s_get_events (s_request_t *req)
{
    return s_stream (req, NULL);
}

static int
s_get_job_events (s_request_t *req)
{
    if (!s_valid_id (req->params[0]))
        return s_bad_id (req);
    return s_stream (req, req->params[0]);
}

typedef int (s_route_fn) (s_request_t *req);

/*  The REST API. `{}` in a pattern captures one path segment.           */
static const struct {
    const char *method;
    const char *pattern;
    s_route_fn *fn;
    const char *label;           /* the route in metrics labels            */
} s_routes[] = {
    { "GET", "/healthz", s_get_healthz, "/healthz" },
    { "GET", "/readyz", s_get_readyz, "/readyz" },
    { "GET", "/api/v1/definitions", s_get_definitions, "/api/v1/definitions" },
    { "GET", "/api/v1/definitions/{}", s_get_definitions_version,
      "/api/v1/definitions/:version" },
    { "POST", "/api/v1/jobs", s_post_jobs, "/api/v1/jobs" },
    { "GET", "/api/v1/jobs", s_get_jobs, "/api/v1/jobs" },
    { "GET", "/api/v1/jobs/{}", s_get_job, "/api/v1/jobs/:id" },
    { "POST", "/api/v1/jobs/{}/start", s_post_job_start,
      "/api/v1/jobs/:id/start" },
    { "POST", "/api/v1/jobs/{}/cancel", s_post_job_cancel,
      "/api/v1/jobs/:id/cancel" },
    { "POST", "/api/v1/jobs/{}/retry", s_post_job_retry,
      "/api/v1/jobs/:id/retry" },
    { "GET", "/api/v1/jobs/{}/tasks", s_get_job_tasks,
      "/api/v1/jobs/:id/tasks" },
    { "GET", "/api/v1/jobs/{}/tasks/{}/log", s_get_task_log,
      "/api/v1/jobs/:id/tasks/:task/log" },
    { "GET", "/api/v1/workers", s_get_workers, "/api/v1/workers" },
    { "GET", "/api/v1/events", s_get_events, "/api/v1/events" },
    { "GET", "/api/v1/jobs/{}/events", s_get_job_events,
      "/api/v1/jobs/:id/events" },
    { "GET", "/api/v1/openapi.yaml", s_get_openapi, "/api/v1/openapi.yaml" },
    { "GET", "/metrics", s_get_metrics, "/metrics" },
    { "GET", "/", s_get_dashboard, "/" },
    { "GET", "/ui/{}", s_get_dashboard, "/ui/:file" },
};

#define S_ROUTES (sizeof s_routes / sizeof s_routes[0])

_Static_assert (S_ROUTES < S_ROUTE_SLOTS, "S_ROUTE_SLOTS too small");

/*  Prometheus text: the scheduler's figures from the loop, the request
    counters from here.                                                   */
static int
s_get_metrics (s_request_t *req)
{
    json_t *reply = s_loop_call (req, json_pack ("{s:s}", "op", "metrics"));
    if (!reply)
        return s_loop_unavailable (req);
    shoal_metrics_route_t routes[S_ROUTE_SLOTS];
    for (size_t i = 0; i <= S_ROUTES; i++)
        routes[i] = (shoal_metrics_route_t) {
            .method = i < S_ROUTES ? s_routes[i].method : "",
            .route = i < S_ROUTES ? s_routes[i].label : "unmatched",
            .counts = req->http->requests[i],
        };
    char *text = shoal_metrics_render (json_object_get (reply, "body"), routes,
                                       S_ROUTES + 1);
    json_decref (reply);
    if (!text)
        return s_problem (req, 503, "Out of memory",
                          "cannot render the metrics", NULL);
    size_t size = strlen (text);
    mg_printf (req->conn,
               "HTTP/1.1 200 OK\r\n"
               "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
               "Content-Length: %zu\r\n"
               "Cache-Control: no-store\r\n\r\n", size);
    mg_write (req->conn, text, size);
    free (text);
    return 200;
}

/*  Matches `path` against `pattern`, capturing {} segments into req.    */
static bool
s_match (const char *pattern, const char *path, s_request_t *req)
{
    int captured = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            const char *end = strchr (path, '/');
            size_t len = end ? (size_t) (end - path) : strlen (path);
            if (len == 0 || len > S_MAX_SEGMENT || captured == 2)
                return false;
            memcpy (req->params[captured], path, len);
            req->params[captured][len] = '\0';
            captured++;
            path += len;
            pattern += 2;
        }
        else if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

/*  Compares in time that depends only on the lengths, so a client cannot
    learn the token a byte at a time from response times.                */
static bool
s_token_equal (const char *given, const char *want)
{
    size_t given_len = strlen (given);
    size_t want_len = strlen (want);
    unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char) (want[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static int
s_handle (struct mg_connection *conn, void *cbdata)
{
    s_request_t req = {
        .conn = conn,
        .info = mg_get_request_info (conn),
        .http = cbdata,
    };
    const char *path = req.info->local_uri;
    if (!path || strlen (path) > 1024)
        return s_problem (&req, 414, "URI too long",
                          "the request path is over 1024 bytes", NULL);
    /* Paths match exactly: civetweb hands us the decoded path, so an
       encoded NUL cuts it short, and "/api/v1/jobs/%00" must not become
       "/api/v1/jobs". */
    const char *clean = path;
    shoal_http_t *http = cbdata;
    if (http->token && strncmp (clean, "/api/", 5) == 0) {
        const char *given = mg_get_header (conn, SHOAL_HTTP_TOKEN_HEADER);
        if (!given || !s_token_equal (given, http->token))
            return s_problem (&req, 401, "Unauthorized",
                              given ? "the API token is wrong"
                                    : "this API needs the "
                                      SHOAL_HTTP_TOKEN_HEADER " header",
                              "header " SHOAL_HTTP_TOKEN_HEADER);
    }
    char allow[64] = "Allow: ";
    bool path_known = false;
    for (size_t i = 0; i < S_ROUTES; i++) {
        if (!s_match (s_routes[i].pattern, clean, &req))
            continue;
        if (streq (s_routes[i].method, req.info->request_method)) {
            int status = s_routes[i].fn (&req);
            __atomic_fetch_add (&http->requests[i][
                                    shoal_metrics_status_index (status)],
                                1, __ATOMIC_RELAXED);
            return status;
        }
        if (path_known)
            strcat (allow, ", ");
        strcat (allow, s_routes[i].method);   /* two routes per path at most */
        path_known = true;
    }
    if (path_known) {
        char detail[200];
        snprintf (detail, sizeof detail, "%.20s is not allowed on %.150s",
                  req.info->request_method, clean);
        __atomic_fetch_add (&http->requests[S_ROUTES][
                                shoal_metrics_status_index (405)],
                            1, __ATOMIC_RELAXED);
        return s_problem_with (&req, 405, "Method not allowed", detail, NULL,
                               allow);
    }
    __atomic_fetch_add (&http->requests[S_ROUTES][
                            shoal_metrics_status_index (404)],
                        1, __ATOMIC_RELAXED);
    char detail[1100];
    snprintf (detail, sizeof detail, "no resource at %.1024s", clean);
    return s_problem (&req, 404, "Not found", detail, NULL);
}

/*  civetweb's own error pages (bad request lines and the like) become
    problem objects too.                                                  */
static int
s_http_error (struct mg_connection *conn, int status, const char *message)
{
    s_request_t req = { .conn = conn, .info = mg_get_request_info (conn) };
    s_problem (&req, status, mg_get_response_code_text (conn, status),
               message && *message ? message : "the request was refused",
               NULL);
    return 0;
}

static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    shoal_warn ("http: %s", message);
    return 1;
}

shoal_http_t *
shoal_http_new (const shoal_defs_t *defs, const char *data_dir,
                const char *listen, int threads, const char *token,
                shoal_mailbox_t *mailbox, shoal_error_t *err)
{
    shoal_http_t *self = calloc (1, sizeof *self);
    if (!self || (token && !(self->token = strdup (token)))
        || !(self->data_dir = strdup (data_dir))) {
        if (self)
            free (self->token);
        free (self);
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->defs = defs;
    self->mailbox = mailbox;
    self->stream_cap = threads / 2 < S_STREAMS_MAX ? threads / 2
                                                    : S_STREAMS_MAX;
    char thread_text[16];
    snprintf (thread_text, sizeof thread_text, "%d", threads);
    const char *options[] = {
        "listening_ports", listen,
        "num_threads", thread_text,
        "request_timeout_ms", "30000",
        "enable_directory_listing", "no",
        "enable_keep_alive", "yes",
        "tcp_nodelay", "1",
        "keep_alive_timeout_ms", "5000",
        NULL,
    };
    struct mg_callbacks callbacks = {
        .http_error = s_http_error,
        .log_message = s_log_message,
    };
    self->ctx = mg_start (&callbacks, self, options);
    if (!self->ctx) {
        shoal_error_set (err, SHOAL_EIO, "http",
                         "cannot listen for HTTP on %s (in use, or not a "
                         "HOST:PORT?)", listen);
        free (self->token);
        free (self->data_dir);
        free (self);
        return NULL;
    }
    mg_set_request_handler (self->ctx, "/", s_handle, self);
    return self;
}

void
shoal_http_destroy (shoal_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_http_t *self = *self_p;
    /* Open streams wait on the hub: wake them, or mg_stop waits for them. */
    if (self->events)
        shoal_events_close (self->events);
    mg_stop (self->ctx);
    if (self->token)
        explicit_bzero (self->token, strlen (self->token));
    free (self->token);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

void
shoal_http_set_events (shoal_http_t *self, shoal_events_t *events)
{
    self->events = events;
}
