/*  baseline.c: the least a controller can do (see baseline.h).

    Its state besides each job's counters is two queues: the free
    credits, one routing id per credit, in the order they freed; and the
    jobs that have ready tasks, taken in turn, one task each, as the
    controller's scheduler does (a job's ready tasks are one run of
    consecutive ids, since its stages run one after the other). Each
    round reads every waiting message, then pairs the heads of the two
    queues until one is empty, as the controller's loop does.

    A job's task ids are those the controller would give the `fan` job:
    1 the spawn task, 2..n+1 the n spawned tasks, n+2 the last stage's
    one task; its id is "base-<k>".                                       */
#include "baseline.h"
#include "stats.h"

#include "shoal/protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_PROGRAM "shoal-loadgen"
#define S_JOB_PREFIX "base-"
/*  Longest wait in one poll, ms.                                          */
#define S_STOP_CHECK_MS 100

/* ---- a growable ring of fixed-size items ------------------------------ */

typedef struct {
    char *items;
    size_t item_size;
    size_t head, len, cap;       /* cap a power of two, or 0               */
} s_ring_t;

static void *
s_ring_at (s_ring_t *ring, size_t i)
{
    return ring->items + ((ring->head + i) & (ring->cap - 1))
                             * ring->item_size;
}

static int
s_ring_grow (s_ring_t *ring)
{
    size_t cap = ring->cap ? ring->cap * 2 : 64;
    char *items = malloc (cap * ring->item_size);
    if (!items)
        return -1;
    for (size_t i = 0; i < ring->len; i++)
        memcpy (items + i * ring->item_size, s_ring_at (ring, i),
                ring->item_size);
    free (ring->items);
    ring->items = items;
    ring->head = 0;
    ring->cap = cap;
    return 0;
}

static int
s_ring_push (s_ring_t *ring, const void *item)
{
    if (ring->len == ring->cap && s_ring_grow (ring))
        return -1;
    memcpy (s_ring_at (ring, ring->len), item, ring->item_size);
    ring->len++;
    return 0;
}

static void
s_ring_pop (s_ring_t *ring)
{
    ring->head = (ring->head + 1) & (ring->cap - 1);
    ring->len--;
}

/* ---- state ------------------------------------------------------------ */

/*  A worker's routing id, as the ROUTER socket gives it.                  */
typedef struct {
    uint8_t size;
    uint8_t id[255];
} s_peer_t;

typedef struct {
    uint32_t next, last;         /* tasks next..last are ready             */
    uint32_t spawned;            /* entries of its spawn list              */
    uint32_t results;            /* of the spawned tasks                   */
    bool fanned;                 /* the spawn task's RESULT came           */
    bool ended;
} s_job_t;

typedef struct {
    const lg_baseline_config_t *config;
    void *router;
    s_ring_t credits;            /* of s_peer_t                            */
    s_ring_t ready;              /* of job indexes (uint32_t), in turn     */
    s_job_t *jobs;
    uint64_t started, ended;
    uint64_t hellos, tasks_sent, results, bad_messages, unreachable;
    char *wire;                  /* a TASK body is written here            */
    size_t wire_cap;
    char controller_id[32];
} s_baseline_t;

static volatile sig_atomic_t s_stopping;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stopping = 1;
}

/* ---- sending ---------------------------------------------------------- */

/*  Returns 0, or -1 when the peer is gone (ZMQ_ROUTER_MANDATORY).         */
static int
s_send (s_baseline_t *self, const s_peer_t *peer, shoal_msg_type_t type,
        const char *body, size_t size)
{
    const char *command = shoal_msg_name (type);
    if (zmq_send (self->router, peer->id, peer->size,
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    zmq_send (self->router, command, strlen (command),
              ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (self->router, body, size, ZMQ_DONTWAIT);
    return 0;
}

static size_t
s_task_text (s_baseline_t *self, uint32_t job, uint32_t task)
{
    const s_job_t *state = &self->jobs[job];
    bool spawn = task == 1;
    /* A spawned task's params are its entry, {"i": k}, as in the
       controller's TASK; the others have none. */
    char params[48] = "{}";
    if (!spawn && task <= state->spawned + 1)
        snprintf (params, sizeof params, "{\"i\":%" PRIu32 "}", task - 2);
    for (;;) {
        int len = snprintf (self->wire, self->wire_cap,
                            "{\"job\":\"" S_JOB_PREFIX "%" PRIu32 "\","
                            "\"task\":%" PRIu32 ",\"attempt\":1,"
                            "\"kind\":\"%s\",\"command\":\"%s\","
                            "\"args\":[],\"inputs\":[],\"params\":%s}",
                            job, task,
                            spawn ? SHOAL_KIND_SPAWN : SHOAL_KIND_TASK,
                            spawn ? "lg-spawn" : "lg-task", params);
        if (len > 0 && (size_t) len < self->wire_cap)
            return (size_t) len;
        size_t cap = self->wire_cap ? self->wire_cap * 2 : 256;
        char *wire = realloc (self->wire, cap);
        if (!wire)
            return 0;
        self->wire = wire;
        self->wire_cap = cap;
    }
}

/*  Pairs free credits with ready tasks until either runs out, one task
    of each job with ready tasks in turn. A credit whose worker is gone is
    dropped; its task waits for the next.                                 */
static void
s_dispatch (s_baseline_t *self)
{
    while (self->credits.len && self->ready.len) {
        s_peer_t *peer = s_ring_at (&self->credits, 0);
        uint32_t job = *(uint32_t *) s_ring_at (&self->ready, 0);
        s_job_t *state = &self->jobs[job];
        size_t size = s_task_text (self, job, state->next);
        if (!size) {
            fprintf (stderr, S_PROGRAM ": out of memory writing a TASK\n");
            s_stopping = 1;
            return;
        }
        int rc = s_send (self, peer, SHOAL_MSG_TASK, self->wire, size);
        s_ring_pop (&self->credits);
        if (rc) {
            self->unreachable++;
            continue;
        }
        self->tasks_sent++;
        s_ring_pop (&self->ready);
        if (state->next++ < state->last)
            s_ring_push (&self->ready, &job);   /* room: just popped */
    }
}

/*  Tasks `first`..`last` of `job` are ready; it had none until now.       */
static int
s_ready (s_baseline_t *self, uint32_t job, uint32_t first, uint32_t last)
{
    self->jobs[job].next = first;
    self->jobs[job].last = last;
    if (s_ring_push (&self->ready, &job)) {
        fprintf (stderr, S_PROGRAM ": out of memory queueing tasks\n");
        s_stopping = 1;
        return -1;
    }
    return 0;
}

/* ---- receiving -------------------------------------------------------- */

static void
s_on_hello (s_baseline_t *self, const s_peer_t *peer, const void *command,
            size_t command_size, const void *body, size_t size)
{
    shoal_msg_type_t type;
    json_t *hello;
    shoal_error_t err;
    if (shoal_msg_decode (command, command_size, body, size, &type, &hello,
                          &err)) {
        self->bad_messages++;
        return;
    }
    json_int_t credits = json_integer_value (json_object_get (hello, "slots"))
                         + json_integer_value (json_object_get (hello,
                                                                "queue"));
    json_decref (hello);
    char welcome[96];
    int len = snprintf (welcome, sizeof welcome,
                        "{\"controller\":\"%s\",\"heartbeat_ms\":%d}",
                        self->controller_id, SHOAL_HEARTBEAT_MS);
    if (s_send (self, peer, SHOAL_MSG_WELCOME, welcome, (size_t) len))
        return;
    self->hellos++;
    for (json_int_t i = 0; i < credits; i++)
        if (s_ring_push (&self->credits, peer)) {
            fprintf (stderr, S_PROGRAM ": out of memory adding credits\n");
            s_stopping = 1;
            return;
        }
}

/*  Entries of a spawn list (checked JSON text), or -1.                    */
static long
s_spawn_entries (const char *text, size_t size)
{
    shoal_jscan_t scan;
    shoal_jscan_init (&scan, text, size);
    if (!shoal_jscan_expect (&scan, '['))
        return -1;
    long count = 0;
    if (shoal_jscan_peek (&scan) == ']')
        return 0;
    for (;;) {
        if (shoal_jscan_value (&scan, NULL) == SHOAL_JSCAN_ERROR)
            return -1;
        count++;
        if (shoal_jscan_peek (&scan) != ',')
            break;
        scan.pos++;
    }
    return shoal_jscan_expect (&scan, ']') ? count : -1;
}

static void
s_on_result (s_baseline_t *self, const s_peer_t *peer, const void *body,
             size_t size)
{
    shoal_result_wire_t result;
    uint32_t job;
    if (shoal_msg_result_fast (body, size, &result)
        || sscanf (result.job, S_JOB_PREFIX "%" SCNu32, &job) != 1
        || job >= self->started || result.task < 1) {
        self->bad_messages++;
        return;
    }
    self->results++;
    if (s_ring_push (&self->credits, peer)) {
        fprintf (stderr, S_PROGRAM ": out of memory adding a credit\n");
        s_stopping = 1;
        return;
    }
    s_job_t *state = &self->jobs[job];
    uint32_t task = (uint32_t) result.task;
    if (task == 1 && !state->fanned) {
        long entries = result.spawn ? s_spawn_entries (result.spawn,
                                                       result.spawn_size)
                                    : 0;
        if (entries < 0 || entries > UINT32_MAX - 3) {
            self->bad_messages++;
            entries = 0;
        }
        state->fanned = true;
        state->spawned = (uint32_t) entries;
        if (entries)
            s_ready (self, job, 2, state->spawned + 1);
        else
            s_ready (self, job, 2, 2);
    }
    else if (state->fanned && task >= 2 && task <= state->spawned + 1) {
        if (++state->results == state->spawned)
            s_ready (self, job, state->spawned + 2, state->spawned + 2);
    }
    else if (state->fanned && task == state->spawned + 2 && !state->ended) {
        state->ended = true;
        self->ended++;
    }
}

/*  Reads every message waiting. Returns -1 on a socket error.            */
static int
s_read (s_baseline_t *self)
{
    for (;;) {
        /* Frames past the third are read and dropped (a bad message):
           a multipart message comes whole or not at all. */
        zmq_msg_t frames[3];
        int count = 0;
        bool more = true;
        while (more) {
            zmq_msg_t extra;
            zmq_msg_t *frame = count < 3 ? &frames[count] : &extra;
            zmq_msg_init (frame);
            if (zmq_msg_recv (frame, self->router, ZMQ_DONTWAIT) < 0) {
                int error = errno;
                zmq_msg_close (frame);
                for (int i = 0; i < count && i < 3; i++)
                    zmq_msg_close (&frames[i]);
                if (count == 0 && (error == EAGAIN || error == EINTR))
                    return 0;
                fprintf (stderr, S_PROGRAM ": receiving: %s\n",
                         zmq_strerror (error));
                return -1;
            }
            more = zmq_msg_more (frame);
            if (count >= 3)
                zmq_msg_close (frame);
            count++;
        }
        if (count == 3 && zmq_msg_size (&frames[0]) <= 255) {
            s_peer_t peer;
            peer.size = (uint8_t) zmq_msg_size (&frames[0]);
            memcpy (peer.id, zmq_msg_data (&frames[0]), peer.size);
            const void *command = zmq_msg_data (&frames[1]);
            size_t command_size = zmq_msg_size (&frames[1]);
            const void *body = zmq_msg_data (&frames[2]);
            size_t size = zmq_msg_size (&frames[2]);
            switch (shoal_msg_command (command, command_size)) {
                case SHOAL_MSG_HELLO:
                    s_on_hello (self, &peer, command, command_size, body,
                                size);
                    break;
                case SHOAL_MSG_RESULT:
                    s_on_result (self, &peer, body, size);
                    break;
                case SHOAL_MSG_HEARTBEAT:
                case SHOAL_MSG_BYE:
                    /* Busy workers need no heartbeat from it; one that
                       left is found out when a TASK cannot be routed. */
                    break;
                default:
                    self->bad_messages++;
            }
        }
        else
            self->bad_messages++;
        for (int i = 0; i < count && i < 3; i++)
            zmq_msg_close (&frames[i]);
    }
}

/* ---- the run ---------------------------------------------------------- */

static int
s_report (const s_baseline_t *self, double seconds)
{
    const lg_baseline_config_t *config = self->config;
    json_t *report = json_pack (
        "{s:s, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:f}",
        "role", "baseline-controller",
        "jobs", "asked", (json_int_t) config->jobs,
        "started", (json_int_t) self->started,
        "ended", (json_int_t) self->ended,
        "workers_welcomed", (json_int_t) self->hellos,
        "tasks_sent", (json_int_t) self->tasks_sent,
        "results", (json_int_t) self->results,
        "bad_messages", (json_int_t) self->bad_messages,
        "unreachable", (json_int_t) self->unreachable,
        "seconds", seconds);
    if (!report)
        return -1;
    int rc = lg_json_write (report, config->output);
    json_decref (report);
    return rc;
}

int
lg_baseline_run (const lg_baseline_config_t *config)
{
    s_baseline_t self = {
        .config = config,
        .credits = { .item_size = sizeof (s_peer_t) },
        .ready = { .item_size = sizeof (uint32_t) },
    };
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    snprintf (self.controller_id, sizeof self.controller_id, "baseline-%ld",
              (long) getpid ());
    if (config->jobs > UINT32_MAX) {
        fprintf (stderr, S_PROGRAM ": --jobs: at most %" PRIu32
                 " for the baseline\n", UINT32_MAX);
        return 1;
    }
    self.jobs = calloc (config->jobs, sizeof *self.jobs);
    void *context = zmq_ctx_new ();
    if (!self.jobs || !context) {
        fprintf (stderr, S_PROGRAM ": out of memory\n");
        free (self.jobs);
        if (context)
            zmq_ctx_term (context);
        return 1;
    }
    self.router = zmq_socket (context, ZMQ_ROUTER);
    /* The controller's options (src/controller/loop.c). */
    int one = 1, zero = 0;
    int64_t max_size = SHOAL_MSG_MAX_SIZE;
    zmq_setsockopt (self.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self.router, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    zmq_setsockopt (self.router, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (self.router, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt (self.router, ZMQ_LINGER, &zero, sizeof zero);
    int rc = 0;
    if (zmq_bind (self.router, config->endpoint)) {
        fprintf (stderr, S_PROGRAM ": --baseline-controller: cannot bind "
                 "'%s': %s\n", config->endpoint, zmq_strerror (errno));
        rc = 1;
    }

    if (!rc && !config->quiet) {
        char pace[48] = "all at once";
        if (config->rate > 0)
            snprintf (pace, sizeof pace, "at %g a second", config->rate);
        fprintf (stderr, S_PROGRAM ": baseline controller on %s: %" PRIu64
                 " jobs %s, after %" PRIu64 " HELLOs\n",
                 config->endpoint, config->jobs, pace,
                 config->await_workers);
    }

    int64_t first_job_ns = 0;
    int64_t period_ns = config->rate > 0 ? (int64_t) (1e9 / config->rate)
                                         : 0;
    /* It runs on after its jobs have ended, as a controller does, so
       that its figures can be read from /proc until it is stopped. */
    while (!rc && !s_stopping) {
        int64_t now = lg_now_ns ();
        if (!first_job_ns && self.hellos >= config->await_workers)
            first_job_ns = now;
        /* Jobs start on a fixed schedule from the first, as the load
           generator submits them: a late round starts the ones due. */
        while (first_job_ns && self.started < config->jobs
               && now >= first_job_ns + (int64_t) self.started * period_ns) {
            uint32_t job = (uint32_t) self.started++;
            s_ready (&self, job, 1, 1);
        }
        s_dispatch (&self);
        /* A signal that lands between the loop's test and the poll does
           not interrupt it: the poll never waits longer than this. */
        long timeout_ms = S_STOP_CHECK_MS;
        if (first_job_ns && self.started < config->jobs) {
            int64_t due = first_job_ns + (int64_t) self.started * period_ns;
            if (due - now < (int64_t) S_STOP_CHECK_MS * 1000000)
                timeout_ms = due > now ? (long) ((due - now + 999999)
                                                 / 1000000)
                                       : 0;
        }
        zmq_pollitem_t item = { self.router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, S_PROGRAM ": polling: %s\n",
                     zmq_strerror (errno));
            rc = 1;
            break;
        }
        if (item.revents & ZMQ_POLLIN)
            rc = s_read (&self) ? 1 : 0;
    }
    double seconds = first_job_ns ? (double) (lg_now_ns () - first_job_ns)
                                        / 1e9
                                  : 0;
    if (!rc && s_report (&self, seconds))
        rc = 1;
    zmq_close (self.router);
    zmq_ctx_term (context);
    free (self.credits.items);
    free (self.ready.items);
    free (self.jobs);
    free (self.wire);
    return rc;
}
