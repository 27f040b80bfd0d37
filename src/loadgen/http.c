/*  http.c: keep-alive HTTP client, steady-rate job submitter, job waiter.

    The client reads a response in two steps: headers up to the blank
    line, then exactly Content-Length body bytes; a response without
    Content-Length is refused (the controller always sends one). A server
    that closed an idle connection shows up as a failed write or an EOF
    before the first byte: the request is then sent once more on a new
    connection, which is safe because nothing was received, so the server
    cannot have answered it.                                               */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*  Send and receive timeout of one request.                               */
#define S_IO_TIMEOUT_S 30

/*  Longest request line and headers we write.                             */
#define S_HEADER_MAX 1024

/*  Longest request body (the job and its params).                         */
#define S_BODY_MAX (64 * 1024)

/* ---- the client --------------------------------------------------- */

int
lg_http_init (lg_http_t *conn, const char *address, const char *token,
              char *err, size_t size)
{
    memset (conn, 0, sizeof *conn);
    conn->fd = -1;
    conn->token = token;
    const char *colon = address ? strrchr (address, ':') : NULL;
    if (!colon || colon == address || !colon[1]
        || (size_t) (colon - address) >= sizeof conn->host
        || strlen (colon + 1) >= sizeof conn->port) {
        snprintf (err, size, "'%s' is not HOST:PORT", address ? address : "");
        return -1;
    }
    memcpy (conn->host, address, (size_t) (colon - address));
    conn->host[colon - address] = '\0';
    strcpy (conn->port, colon + 1);
    conn->buf = malloc (LG_HTTP_RESPONSE_MAX + 1);
    if (!conn->buf) {
        snprintf (err, size, "out of memory");
        return -1;
    }
    return 0;
}

static void
s_disconnect (lg_http_t *conn)
{
    if (conn->fd >= 0)
        close (conn->fd);
    conn->fd = -1;
}

void
lg_http_close (lg_http_t *conn)
{
    s_disconnect (conn);
    free (conn->buf);
    conn->buf = NULL;
}

static int
s_connect (lg_http_t *conn, char *err, size_t size)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *list;
    int rc = getaddrinfo (conn->host, conn->port, &hints, &list);
    if (rc) {
        snprintf (err, size, "cannot resolve %s: %s", conn->host,
                  gai_strerror (rc));
        return -1;
    }
    int saved = 0;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                         ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            struct timeval tv = { .tv_sec = S_IO_TIMEOUT_S };
            setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            conn->fd = fd;
            break;
        }
        saved = errno;
        close (fd);
    }
    freeaddrinfo (list);
    if (conn->fd < 0) {
        snprintf (err, size, "cannot connect to %s:%s: %s", conn->host,
                  conn->port, strerror (saved));
        return -1;
    }
    return 0;
}

static int
s_write_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

/*  The value of header `name` in the header block [start, end), or NULL. */
static const char *
s_header (const char *start, const char *end, const char *name)
{
    size_t len = strlen (name);
    for (const char *p = start; p && p < end; ) {
        const char *line = p;
        p = memchr (p, '\n', (size_t) (end - p));
        if (p)
            p++;
        if ((size_t) (end - line) > len + 1 && line[len] == ':'
            && strncasecmp (line, name, len) == 0) {
            line += len + 1;
            while (*line == ' ' || *line == '\t')
                line++;
            return line;
        }
    }
    return NULL;
}

/*  One attempt. Returns the status, -1 on a failure, or -2 when the
    connection was found closed before any byte came back (retry).         */
static int
s_exchange (lg_http_t *conn, const char *head, size_t head_len,
            const char *request_body, size_t body_len, const char **body,
            char *err, size_t size)
{
    if (s_write_all (conn->fd, head, head_len)
        || (body_len && s_write_all (conn->fd, request_body, body_len))) {
        snprintf (err, size, "cannot send to %s:%s: %s", conn->host,
                  conn->port, strerror (errno));
        return errno == EPIPE || errno == ECONNRESET ? -2 : -1;
    }
    size_t len = 0;
    char *end_of_headers = NULL;
    size_t want = 0;
    while (true) {
        if (len == LG_HTTP_RESPONSE_MAX) {
            snprintf (err, size, "response over %d bytes",
                      LG_HTTP_RESPONSE_MAX);
            return -1;
        }
        ssize_t n = recv (conn->fd, conn->buf + len,
                          LG_HTTP_RESPONSE_MAX - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (len == 0 && (n == 0 || errno == ECONNRESET))
                return -2;
            snprintf (err, size, "no complete response from %s:%s: %s",
                      conn->host, conn->port,
                      n == 0 ? "connection closed" : strerror (errno));
            return -1;
        }
        if (conn->quickack) {
            int one = 1;
            setsockopt (conn->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        }
        len += (size_t) n;
        conn->buf[len] = '\0';
        if (!end_of_headers) {
            end_of_headers = strstr (conn->buf, "\r\n\r\n");
            if (!end_of_headers)
                continue;
            const char *length = s_header (conn->buf, end_of_headers,
                                           "Content-Length");
            if (!length) {
                snprintf (err, size, "response without Content-Length");
                return -1;
            }
            want = (size_t) (end_of_headers + 4 - conn->buf)
                   + (size_t) strtoul (length, NULL, 10);
            if (want > LG_HTTP_RESPONSE_MAX) {
                snprintf (err, size, "response over %d bytes",
                          LG_HTTP_RESPONSE_MAX);
                return -1;
            }
        }
        if (len >= want)
            break;
    }
    int status = 0;
    if (sscanf (conn->buf, "HTTP/1.%*d %d", &status) != 1) {
        snprintf (err, size, "malformed status line");
        return -1;
    }
    const char *connection = s_header (conn->buf, end_of_headers,
                                       "Connection");
    bool closing = connection && strncasecmp (connection, "close", 5) == 0;
    *body = end_of_headers + 4;
    if (closing)
        s_disconnect (conn);
    return status;
}

int
lg_http_request (lg_http_t *conn, const char *method, const char *path,
                 const char *request_body, const char **body, char *err,
                 size_t size)
{
    size_t body_len = request_body ? strlen (request_body) : 0;
    char head[S_HEADER_MAX];
    int head_len = snprintf (
        head, sizeof head,
        "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s%s%s%s%zu\r\n\r\n", method, path,
        conn->host, conn->port, conn->token ? "X-Shoal-Token: " : "",
        conn->token ? conn->token : "", conn->token ? "\r\n" : "",
        request_body ? "Content-Type: application/json\r\nContent-Length: "
                     : "Content-Length: ",
        body_len);
    if (head_len < 0 || (size_t) head_len >= sizeof head) {
        snprintf (err, size, "request headers over %d bytes", S_HEADER_MAX);
        return -1;
    }
    *body = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = conn->fd < 0;
        if (fresh && s_connect (conn, err, size))
            return -1;
        int status = s_exchange (conn, head, (size_t) head_len, request_body,
                                 body_len, body, err, size);
        if (status >= 0)
            return status;
        s_disconnect (conn);
        if (status == -1 || fresh)
            break;
    }
    if (!*err)
        snprintf (err, size, "connection closed by %s:%s", conn->host,
                  conn->port);
    return -1;
}

/*  Copies the string value of the first "key":"..." in `json` (no
    escapes expected: ids and states are plain) into `out`.                */
static bool
s_find_string (const char *json, const char *key, char *out, size_t size)
{
    char pattern[64];
    snprintf (pattern, sizeof pattern, "\"%s\":\"", key);
    const char *at = json ? strstr (json, pattern) : NULL;
    if (!at)
        return false;
    at += strlen (pattern);
    const char *end = strchr (at, '"');
    if (!end || (size_t) (end - at) >= size)
        return false;
    memcpy (out, at, (size_t) (end - at));
    out[end - at] = '\0';
    return true;
}

/* ---- the submitter -------------------------------------------------- */

typedef struct lg_submit_thread s_thread_t;

struct lg_submit_thread {
    lg_submit_t *submit;      /* owner                                     */
    pthread_t thread;
    bool started;
    int index;                /* sends jobs index, index + C, ...          */
    lg_http_t conn;
    lg_submit_stats_t stats;  /* this thread's figures                     */
};

struct lg_submit {
    lg_submit_config_t config;   /* copy; strings borrowed                 */
    char *body;                  /* the request body, the same every time  */
    s_thread_t *threads;
    int64_t start_ns;            /* job i is due at start + i / rate       */
    atomic_bool stop;
    atomic_int finished;         /* threads done with their share          */
    pthread_mutex_t ids_mutex;   /* guards ids and id_count                */
    lg_job_id_t *ids;            /* created jobs, keep_ids only            */
    uint64_t id_count;
    bool stopped;
    lg_submit_stats_t merged;
};

static void
s_sleep_until (int64_t due_ns)
{
    struct timespec ts = { .tv_sec = due_ns / 1000000000,
                           .tv_nsec = due_ns % 1000000000 };
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
           == EINTR)
        ;
}

static void
s_note_error (s_thread_t *thread, const char *what)
{
    thread->stats.errors++;
    if (!thread->stats.first_error[0])
        snprintf (thread->stats.first_error,
                  sizeof thread->stats.first_error, "%s", what);
}

static void *
s_submit_main (void *arg)
{
    s_thread_t *thread = arg;
    lg_submit_t *submit = thread->submit;
    const lg_submit_config_t *config = &submit->config;
    uint64_t step = (uint64_t) config->connections;
    for (uint64_t i = (uint64_t) thread->index; i < config->jobs; i += step) {
        if (atomic_load_explicit (&submit->stop, memory_order_relaxed))
            break;
        int64_t due = submit->start_ns;
        if (config->rate > 0) {
            due += (int64_t) ((double) i * 1e9 / config->rate);
            s_sleep_until (due);
        }
        int64_t sent = lg_now_ns ();
        const char *body;
        char err[256] = "";
        int status = lg_http_request (&thread->conn, "POST", "/api/v1/jobs",
                                      submit->body, &body, err, sizeof err);
        int64_t done = lg_now_ns ();
        thread->stats.end_ns = done;
        if (status < 0) {
            s_note_error (thread, err);
            continue;
        }
        lg_hist_record (&thread->stats.latency,
                        (uint64_t) (done - (config->rate > 0 ? due : sent))
                            / 1000);
        if (status != 201) {
            char what[512];
            snprintf (what, sizeof what, "POST /api/v1/jobs answered %d: "
                      "%.400s", status, body ? body : "");
            s_note_error (thread, what);
            continue;
        }
        thread->stats.created++;
        lg_job_id_t id;
        if (config->keep_ids) {
            if (!s_find_string (body, "id", id, sizeof id)) {
                s_note_error (thread, "a 201 answer without a job id");
                continue;
            }
            pthread_mutex_lock (&submit->ids_mutex);
            if (submit->id_count < config->jobs)
                strcpy (submit->ids[submit->id_count++], id);
            pthread_mutex_unlock (&submit->ids_mutex);
        }
    }
    atomic_fetch_add (&submit->finished, 1);
    return NULL;
}

lg_submit_t *
lg_submit_new (const lg_submit_config_t *config, char *err, size_t size)
{
    if (!config->job || !*config->job) {
        snprintf (err, size, "--job is needed to submit jobs");
        return NULL;
    }
    if (config->jobs > LG_SUBMIT_JOBS_MAX) {
        snprintf (err, size, "--jobs must be at most %d", LG_SUBMIT_JOBS_MAX);
        return NULL;
    }
    if (config->connections < 1
        || config->connections > LG_SUBMIT_CONNECTIONS_MAX) {
        snprintf (err, size, "--connections must be 1..%d",
                  LG_SUBMIT_CONNECTIONS_MAX);
        return NULL;
    }
    if (config->rate < 0) {
        snprintf (err, size, "--rate must not be negative");
        return NULL;
    }
    json_error_t json_err;
    json_t *params = json_loads (config->params ? config->params : "{}", 0,
                                 &json_err);
    if (!json_is_object (params)) {
        snprintf (err, size, "--params is not a JSON object: %s",
                  params ? "another JSON value" : json_err.text);
        json_decref (params);
        return NULL;
    }
    json_t *request = json_pack ("{s:s, s:o}", "job", config->job, "params",
                                 params);
    char *body = request ? json_dumps (request, JSON_COMPACT) : NULL;
    json_decref (request);
    if (!body) {
        snprintf (err, size, "out of memory");
        return NULL;
    }
    if (strlen (body) > S_BODY_MAX) {
        snprintf (err, size, "the request body is over %d bytes", S_BODY_MAX);
        free (body);
        return NULL;
    }
    lg_submit_t *self = calloc (1, sizeof *self);
    if (!self) {
        free (body);
        snprintf (err, size, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->body = body;
    pthread_mutex_init (&self->ids_mutex, NULL);
    self->threads = calloc ((size_t) config->connections,
                            sizeof *self->threads);
    if (config->keep_ids && config->jobs)
        self->ids = calloc (config->jobs, sizeof *self->ids);
    if (!self->threads || (config->keep_ids && config->jobs && !self->ids)) {
        snprintf (err, size, "out of memory");
        lg_submit_destroy (&self);
        return NULL;
    }
    for (int t = 0; t < config->connections; t++)
        self->threads[t].conn.fd = -1;
    for (int t = 0; t < config->connections; t++) {
        s_thread_t *thread = &self->threads[t];
        thread->submit = self;
        thread->index = t;
        if (lg_http_init (&thread->conn, config->address, config->token, err,
                          size)) {
            lg_submit_destroy (&self);
            return NULL;
        }
        thread->conn.quickack = config->quickack;
    }
    return self;
}

int
lg_submit_start (lg_submit_t *self, char *err, size_t size)
{
    self->start_ns = lg_now_ns ();
    for (int t = 0; t < self->config.connections; t++) {
        s_thread_t *thread = &self->threads[t];
        int rc = pthread_create (&thread->thread, NULL, s_submit_main, thread);
        if (rc) {
            snprintf (err, size, "cannot start a thread: %s", strerror (rc));
            return -1;
        }
        thread->started = true;
    }
    return 0;
}

bool
lg_submit_done (lg_submit_t *self)
{
    return atomic_load (&self->finished) == self->config.connections;
}

void
lg_submit_stop (lg_submit_t *self, lg_submit_stats_t *stats)
{
    if (!self->stopped) {
        atomic_store (&self->stop, true);
        memset (&self->merged, 0, sizeof self->merged);
        self->merged.start_ns = self->start_ns;
        for (int t = 0; t < self->config.connections; t++) {
            s_thread_t *thread = &self->threads[t];
            if (thread->started)
                pthread_join (thread->thread, NULL);
            thread->started = false;
            lg_submit_stats_t *from = &thread->stats;
            self->merged.created += from->created;
            self->merged.errors += from->errors;
            if (from->end_ns > self->merged.end_ns)
                self->merged.end_ns = from->end_ns;
            lg_hist_merge (&self->merged.latency, &from->latency);
            if (!self->merged.first_error[0] && from->first_error[0])
                strcpy (self->merged.first_error, from->first_error);
        }
        self->stopped = true;
    }
    if (stats)
        *stats = self->merged;
}

const lg_job_id_t *
lg_submit_ids (lg_submit_t *self, uint64_t *count)
{
    *count = self->id_count;
    return (const lg_job_id_t *) self->ids;
}

void
lg_submit_destroy (lg_submit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lg_submit_t *self = *self_p;
    if (self->threads) {
        lg_submit_stop (self, NULL);
        for (int t = 0; t < self->config.connections; t++)
            lg_http_close (&self->threads[t].conn);
    }
    free (self->threads);
    free (self->ids);
    free (self->body);
    pthread_mutex_destroy (&self->ids_mutex);
    free (self);
    *self_p = NULL;
}

/* ---- waiting for jobs ------------------------------------------------ */

int
lg_wait_jobs (const char *address, const char *token, const lg_job_id_t *ids,
              uint64_t count, int poll_ms, int64_t deadline_ns,
              atomic_bool *stop, lg_wait_stats_t *stats, char *err,
              size_t size)
{
    memset (stats, 0, sizeof *stats);
    lg_http_t conn;
    if (lg_http_init (&conn, address, token, err, size))
        return -1;
    int rc = 0;
    for (uint64_t i = 0; i < count && rc == 0; ) {
        char path[128];
        snprintf (path, sizeof path, "/api/v1/jobs/%s", ids[i]);
        const char *body;
        int status = lg_http_request (&conn, "GET", path, NULL, &body, err,
                                      size);
        char state[32];
        if (status != 200 || !s_find_string (body, "state", state,
                                             sizeof state)) {
            if (status >= 0)
                snprintf (err, size, "GET %s answered %d: %.300s", path,
                          status, body ? body : "");
            rc = -1;
            break;
        }
        if (strcmp (state, "succeeded") == 0)
            stats->succeeded++;
        else if (strcmp (state, "failed") == 0)
            stats->failed++;
        else if (strcmp (state, "canceled") == 0)
            stats->canceled++;
        else {
            if (lg_now_ns () > deadline_ns || (stop && atomic_load (stop))) {
                snprintf (err, size, "job %s still %s when time ran out",
                          ids[i], state);
                rc = -1;
                break;
            }
            s_sleep_until (lg_now_ns () + (int64_t) poll_ms * 1000000);
            continue;
        }
        stats->last_end_ns = lg_now_ns ();
        i++;
    }
    lg_http_close (&conn);
    return rc;
}
