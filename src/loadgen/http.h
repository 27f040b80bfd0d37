/*  http.h: a small HTTP/1.1 keep-alive client, the job submitter that
    drives the REST API at a steady rate, and the job waiter.

    Plain sockets, no library: one connection per thread, requests one at
    a time on it (no pipelining), responses read by Content-Length. Every
    buffer is bounded and says its bound when a response does not fit.

    Rate and latency. With a rate R the i-th job of the run is due at
    start + i / R; each connection thread sends the jobs i = k, k + C, ...
    (C connections). A job's latency runs from when it was due, not from
    when it went out, so a slow answer that delays the next request counts
    against the server (no "coordinated omission"). Without a rate every
    thread sends back to back, and latency runs from the send.             */
#ifndef SHOAL_LOADGEN_HTTP_H
#define SHOAL_LOADGEN_HTTP_H

#include "stats.h"
#include "tracker.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*  Largest response kept, headers and body together.                      */
#define LG_HTTP_RESPONSE_MAX (1024 * 1024)

/*  Bounds on the submitter's options.                                     */
#define LG_SUBMIT_JOBS_MAX 10000000
#define LG_SUBMIT_CONNECTIONS_MAX 256

/*  A job id as the controller returns it.                                 */
typedef char lg_job_id_t[LG_JOB_ID_MAX + 1];

/*  One keep-alive connection. Invariant: fd is -1 when closed.            */
typedef struct {
    char host[256];           /* numeric address or name                   */
    char port[16];            /* port, as text                             */
    const char *token;        /* X-Shoal-Token value or NULL (borrowed)    */
    bool quickack;            /* TCP_QUICKACK after each read (diagnosis)  */
    int fd;                   /* the socket, -1 when closed                */
    char *buf;                /* LG_HTTP_RESPONSE_MAX + 1 bytes            */
} lg_http_t;

/*  Splits "HOST:PORT" into `conn` and allocates its buffer. `token` is
    borrowed. Returns 0 or -1 with `err` set.                              */
int lg_http_init (lg_http_t *conn, const char *address, const char *token,
                  char *err, size_t size);

/*  Closes the connection and frees the buffer.                            */
void lg_http_close (lg_http_t *conn);

/*  Sends one request (body NULL for none) and reads the response; opens
    or reopens the connection as needed (an idle connection the server
    closed is retried once). Returns the HTTP status and points *body (may
    be NULL) at the NUL-terminated response body inside conn->buf, valid
    until the next request; or -1 with `err` set.                          */
int lg_http_request (lg_http_t *conn, const char *method, const char *path,
                     const char *request_body, const char **body, char *err,
                     size_t size);

/*  What the submitter does; strings are borrowed.                         */
typedef struct {
    const char *address;      /* HOST:PORT of the REST API                 */
    const char *token;        /* X-Shoal-Token or NULL                     */
    const char *job;          /* job class                                 */
    const char *params;       /* params object, JSON text                  */
    uint64_t jobs;            /* how many to submit                        */
    double rate;              /* jobs per second, 0: back to back          */
    int connections;          /* threads, one connection each              */
    bool keep_ids;            /* remember job ids for lg_wait_jobs         */
    bool quickack;            /* acknowledge every segment at once: hides
                                 a server's Nagle + delayed-ACK stall, to
                                 show what the API does without it         */
} lg_submit_config_t;

/*  What the submitter did, once it has stopped.                           */
typedef struct {
    uint64_t created;         /* 201 answers                               */
    uint64_t errors;          /* anything else, failures to connect too    */
    int64_t start_ns;         /* first job due                             */
    int64_t end_ns;           /* last answer read                          */
    lg_hist_t latency;        /* microseconds, see above                   */
    char first_error[512];    /* what went wrong first, "" if nothing      */
} lg_submit_stats_t;

typedef struct lg_submit lg_submit_t;

/*  Checks the config and prepares the threads' connections. Returns NULL
    with `err` set.                                                        */
lg_submit_t *lg_submit_new (const lg_submit_config_t *config, char *err,
                            size_t size);

/*  Starts submitting. Returns 0 or -1 with `err` set.                     */
int lg_submit_start (lg_submit_t *self, char *err, size_t size);

/*  Whether every thread has finished its share.                           */
bool lg_submit_done (lg_submit_t *self);

/*  Tells the threads to stop after their current request, waits for them
    and fills `stats`. Idempotent.                                         */
void lg_submit_stop (lg_submit_t *self, lg_submit_stats_t *stats);

/*  The ids of the jobs created, in no particular order (keep_ids only);
    borrowed from the submitter. *count is set.                            */
const lg_job_id_t *lg_submit_ids (lg_submit_t *self, uint64_t *count);

/*  Frees the submitter (stopping it first). Accepts NULL, nulls.          */
void lg_submit_destroy (lg_submit_t **self_p);

/*  Final states of the jobs waited for.                                   */
typedef struct {
    uint64_t succeeded;
    uint64_t failed;
    uint64_t canceled;
    int64_t last_end_ns;      /* when the last job was seen final          */
} lg_wait_stats_t;

/*  Polls GET /api/v1/jobs/{id} for each of `count` ids, every `poll_ms`
    while a job runs, until all have ended, `deadline_ns` passes or *stop
    becomes true. Returns 0, or -1 with `err` set.                         */
int lg_wait_jobs (const char *address, const char *token,
                  const lg_job_id_t *ids, uint64_t count,
                  int poll_ms, int64_t deadline_ns, atomic_bool *stop,
                  lg_wait_stats_t *stats, char *err, size_t size);

#endif
