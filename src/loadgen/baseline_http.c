/*  baseline_http.c: the least a REST server can do (see baseline.h).

    A request is its head up to the blank line, then Content-Length bytes
    of body; each one read whole is answered at once, in order, so a
    client that pipelines gets its answers in order too. A connection
    that sends a head over S_REQUEST_MAX, a length that is not a number,
    or stops reading its answers is closed: this server only has to
    serve the load generator, quickly.                                    */
#include "baseline.h"
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_PROGRAM "shoal-loadgen"
/*  Largest request kept (head and body): a job submission is far less.  */
#define S_REQUEST_MAX (64 * 1024)
/*  Longest wait in one epoll_wait, ms: a signal that lands just before
    it is noticed this late at most.                                      */
#define S_STOP_CHECK_MS 100
#define S_EVENTS 64

typedef struct {
    char *buf;                   /* S_REQUEST_MAX bytes, NULL: not open    */
    size_t len;
} s_conn_t;

typedef struct {
    int listen_fd, epoll_fd;
    s_conn_t *conns;             /* indexed by descriptor                  */
    size_t conn_cap;
    uint64_t requests, connections, closed_bad;
} s_server_t;

static volatile sig_atomic_t s_stopping;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stopping = 1;
}

static void
s_close (s_server_t *self, int fd)
{
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    close (fd);
    free (self->conns[fd].buf);
    self->conns[fd] = (s_conn_t) { 0 };
}

static void
s_accept (s_server_t *self)
{
    for (;;) {
        int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;   /* EAGAIN, or a connection that went away first */
        if ((size_t) fd >= self->conn_cap) {
            size_t cap = self->conn_cap ? self->conn_cap : 64;
            while (cap <= (size_t) fd)
                cap *= 2;
            s_conn_t *conns = realloc (self->conns, cap * sizeof *conns);
            if (!conns) {
                close (fd);
                continue;
            }
            memset (conns + self->conn_cap, 0,
                    (cap - self->conn_cap) * sizeof *conns);
            self->conns = conns;
            self->conn_cap = cap;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event event = { .events = EPOLLIN, .data.fd = fd };
        self->conns[fd].buf = malloc (S_REQUEST_MAX);
        if (!self->conns[fd].buf
            || epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event)) {
            free (self->conns[fd].buf);
            self->conns[fd].buf = NULL;
            close (fd);
            continue;
        }
        self->connections++;
    }
}

/*  The length of the first whole request in `buf`, 0 when it is not all
    there yet, -1 when it is not one this server takes.                  */
static long
s_request_length (const char *buf, size_t len)
{
    const char *end = memmem (buf, len, "\r\n\r\n", 4);
    if (!end)
        return len >= S_REQUEST_MAX ? -1 : 0;
    size_t head = (size_t) (end - buf) + 4;
    long body = 0;
    for (const char *line = memchr (buf, '\n', head); line && line < end;
         line = memchr (line + 1, '\n', (size_t) (end - line))) {
        static const char name[] = "Content-Length:";
        if ((size_t) (end - line - 1) > sizeof name - 1
            && strncasecmp (line + 1, name, sizeof name - 1) == 0) {
            const char *value = line + 1 + sizeof name - 1;
            while (*value == ' ')
                value++;
            char *after;
            errno = 0;
            body = strtol (value, &after, 10);
            if (errno || after == value || *value < '0' || *value > '9'
                || (*after != '\r' && *after != ' '))
                return -1;
        }
    }
    if (head + (size_t) body > S_REQUEST_MAX)
        return -1;
    return head + (size_t) body <= len ? (long) (head + (size_t) body) : 0;
}

/*  Reads what `fd` sent and answers every whole request in it.           */
static void
s_serve (s_server_t *self, int fd)
{
    s_conn_t *conn = &self->conns[fd];
    ssize_t got = read (fd, conn->buf + conn->len, S_REQUEST_MAX - conn->len);
    if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        s_close (self, fd);
        return;
    }
    conn->len += (size_t) got;
    /* Answers go out a few dozen to a write, in order. */
    char answers[8192];
    long length = 0;
    do {
        size_t answers_len = 0;
        while (answers_len + 256 <= sizeof answers
               && (length = s_request_length (conn->buf, conn->len)) > 0) {
            char body[64];
            int body_len = snprintf (body, sizeof body,
                                     "{\"id\":\"base-%" PRIu64 "\"}",
                                     ++self->requests);
            answers_len += (size_t) snprintf (
                answers + answers_len, sizeof answers - answers_len,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n%s", body_len, body);
            memmove (conn->buf, conn->buf + length,
                     conn->len - (size_t) length);
            conn->len -= (size_t) length;
        }
        if (length < 0) {
            self->closed_bad++;
            s_close (self, fd);
            return;
        }
        /* Answers are small and the socket's buffer empty unless the
           client stopped reading: a short write closes it. */
        if (answers_len
            && write (fd, answers, answers_len) != (ssize_t) answers_len) {
            self->closed_bad++;
            s_close (self, fd);
            return;
        }
    } while (length > 0);
}

static int
s_listen (s_server_t *self, const char *address)
{
    const char *colon = strrchr (address, ':');
    char host[256];
    if (!colon || colon == address || (size_t) (colon - address) >= sizeof host
        || !colon[1]) {
        fprintf (stderr, S_PROGRAM ": --baseline-http '%s': want HOST:PORT\n",
                 address);
        return -1;
    }
    memcpy (host, address, (size_t) (colon - address));
    host[colon - address] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *info;
    int rc = getaddrinfo (host, colon + 1, &hints, &info);
    if (rc) {
        fprintf (stderr, S_PROGRAM ": --baseline-http '%s': %s\n", address,
                 gai_strerror (rc));
        return -1;
    }
    self->listen_fd = socket (info->ai_family,
                              info->ai_socktype | SOCK_NONBLOCK, 0);
    int one = 1;
    if (self->listen_fd >= 0)
        setsockopt (self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
                    sizeof one);
    if (self->listen_fd < 0
        || bind (self->listen_fd, info->ai_addr, info->ai_addrlen)
        || listen (self->listen_fd, 1024)) {
        fprintf (stderr, S_PROGRAM ": --baseline-http: cannot listen on "
                 "'%s': %s\n", address, strerror (errno));
        freeaddrinfo (info);
        return -1;
    }
    freeaddrinfo (info);
    return 0;
}

int
lg_baseline_http_run (const lg_baseline_http_config_t *config)
{
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
    s_server_t self = { .listen_fd = -1, .epoll_fd = -1 };
    int rc = s_listen (&self, config->address) ? 1 : 0;
    if (!rc) {
        self.epoll_fd = epoll_create1 (0);
        struct epoll_event event = { .events = EPOLLIN,
                                     .data.fd = self.listen_fd };
        if (self.epoll_fd < 0
            || epoll_ctl (self.epoll_fd, EPOLL_CTL_ADD, self.listen_fd,
                          &event)) {
            fprintf (stderr, S_PROGRAM ": epoll: %s\n", strerror (errno));
            rc = 1;
        }
    }
    if (!rc && !config->quiet)
        fprintf (stderr, S_PROGRAM ": baseline HTTP server on %s\n",
                 config->address);
    while (!rc && !s_stopping) {
        struct epoll_event events[S_EVENTS];
        int count = epoll_wait (self.epoll_fd, events, S_EVENTS,
                                S_STOP_CHECK_MS);
        if (count < 0 && errno != EINTR) {
            fprintf (stderr, S_PROGRAM ": epoll_wait: %s\n", strerror (errno));
            rc = 1;
        }
        for (int i = 0; i < count; i++) {
            if (events[i].data.fd == self.listen_fd)
                s_accept (&self);
            else
                s_serve (&self, events[i].data.fd);
        }
    }
    if (!rc) {
        json_t *report = json_pack (
            "{s:s, s:I, s:I, s:I}", "role", "baseline-http",
            "requests", (json_int_t) self.requests,
            "connections", (json_int_t) self.connections,
            "closed_bad", (json_int_t) self.closed_bad);
        if (!report || lg_json_write (report, config->output))
            rc = 1;
        json_decref (report);
    }
    for (size_t fd = 0; fd < self.conn_cap; fd++)
        if (self.conns[fd].buf)
            s_close (&self, (int) fd);
    free (self.conns);
    if (self.epoll_fd >= 0)
        close (self.epoll_fd);
    if (self.listen_fd >= 0)
        close (self.listen_fd);
    return rc;
}
