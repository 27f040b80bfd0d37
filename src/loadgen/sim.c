/*  sim.c: simulated workers, many DEALER sockets per thread.

    Each thread waits on one epoll set holding each of its sockets: the
    TCP connection of the builtin ZMTP client (zmtp.c), read when epoll
    says so, or with --zmtp libzmq the ZMQ_FD of a libzmq DEALER.

    ZMQ_FD only says "look at this socket": libzmq may consume
    the notification inside any call on the socket, a send included, and
    then not signal again while messages are queued. So after any send
    the thread drains the socket (receives until EAGAIN and ZMQ_EVENTS
    has no POLLIN), and a wake-up always drains completely.

    A simulated worker's state machine:

      state       event      next        action
      ----------  ---------  ----------  ---------------------------------
      (start)     -          HELLO_SENT  connect, HELLO
      HELLO_SENT  WELCOME    READY       all slots free now
      any         RECONNECT  HELLO_SENT  HELLO again
      READY       TASK       READY       RESULT now or after the delay;
                                         spawn: RESULT with N entries now
      READY       Nth TASK   GONE        (vanisher) close, no BYE
      any         stop       GONE        BYE, close

    Delayed results wait in a per-thread binary min-heap on their due
    time (with --delay-jitter each task has a delay of its own). Its
    capacity is the thread's total slots, which the controller's credit
    never exceeds.                                                        */
#include "sim.h"
#include "zmtp.h"

#include "shoal/protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

/*  Events taken from epoll per wait.                                      */
#define S_EPOLL_BATCH 256

/*  Longest wait between two looks at the stop flag.                       */
#define S_STOP_CHECK_NS (50 * 1000000LL)

/*  Heartbeat period, as the protocol wants.                               */
#define S_HEARTBEAT_NS ((int64_t) SHOAL_HEARTBEAT_MS * 1000000)

/*  Room before the spawn list for the RESULT fields that precede it.      */
#define S_SPAWN_PREFIX_ROOM 256

/*  How long a BYE may wait in libzmq when a socket closes.                */
#define S_BYE_LINGER_MS 500

/*  A lost connection of the builtin ZMTP client is made again this long
    after, as libzmq's default ZMQ_RECONNECT_IVL does.                     */
#define S_RECONNECT_NS (100 * 1000000LL)

/*  Builtin connections not welcomed config.handshake_ns after connect()
    are closed and made again, looked for this often. When many workers
    connect at once the controller's accept queue may overflow and the
    kernel drop the last ACK of a TCP handshake: such a connection looks
    open here, holds our greeting unanswered, and the kernel's
    retransmission back-off takes minutes to notice.                       */
#define S_HANDSHAKE_CHECK_NS (100 * 1000000LL)

/*  Builtin connections of one thread between connect() and WELCOME at
    most; the others wait their turn. All of them at once would overflow
    the controller's accept queue (libzmq listens with a backlog of 100),
    and a dropped handshake costs config.handshake_ns. A cluster's workers
    do not all start in the same millisecond either.                      */
#define S_HANDSHAKES_MAX 32

/*  What one read asks the kernel for (builtin ZMTP): a thread's scratch.  */
#define S_READ_SCRATCH 65536

/*  File descriptors per socket (its TCP connection and, with libzmq, its
    mailbox), and some for everything else.                                */
#define S_FDS_PER_SOCKET 2
#define S_FDS_SPARE 256

typedef enum {
    S_HELLO_SENT,             /* waiting for WELCOME                       */
    S_READY,                  /* welcomed                                  */
    S_GONE,                   /* socket closed                             */
} s_state_t;

typedef struct s_thread s_thread_t;

/*  One simulated worker. Invariant: free_count <= slots.                  */
typedef struct {
    void *sock;               /* libzmq DEALER, NULL once GONE             */
    lg_zmtp_conn_t conn;      /* or the builtin client's connection        */
    bool out_armed;           /* conn's fd is polled for EPOLLOUT          */
    int64_t retry_ns;         /* conn lost: connect again then             */
    int64_t welcome_by_ns;    /* conn open, not welcomed: give up then     */
    s_thread_t *thread;       /* owner                                     */
    uint32_t index;           /* global number, names it                   */
    s_state_t state;
    bool welcomed;            /* counted in `welcomed` once                */
    bool handshaking;         /* builtin: counted in thread->handshaking   */
    bool vanisher;            /* vanishes at its vanish_after-th task      */
    uint32_t received;        /* TASKs received                            */
    uint32_t slots;
    int64_t *free_ns;         /* ring: when each free slot came free       */
    uint32_t free_head;       /* oldest entry                              */
    uint32_t free_count;      /* entries                                   */
    int64_t next_heartbeat;   /* ns: its next look at the clock below      */
    int64_t heartbeat_sent;   /* ns: its last HEARTBEAT; 0: none yet       */
} s_worker_t;

/*  A RESULT waiting for its delay to pass.                                */
typedef struct {
    s_worker_t *worker;
    int64_t due_ns;
    uint32_t task;
    uint32_t attempt;
    int exit_code;
    char job[LG_JOB_ID_MAX + 1];
} s_delayed_t;

struct s_thread {
    lg_sim_t *sim;            /* owner                                     */
    pthread_t thread;
    bool started;             /* pthread_create succeeded                  */
    int epoll_fd;
    s_worker_t *workers;      /* this thread's slice                       */
    size_t count;
    size_t heartbeat_cursor;  /* next worker to heartbeat                  */
    int64_t heartbeat_ns;     /* period, from WELCOME as shoal-worker does */
    s_delayed_t *delayed;     /* min-heap of delayed results on due_ns     */
    size_t delayed_len;
    size_t delayed_cap;
    uint64_t random;          /* xorshift state for the delay jitter       */
    char *spawn_buf;          /* S_SPAWN_PREFIX_ROOM + the spawn list tail */
    uint8_t *scratch;         /* builtin ZMTP: each read lands here        */
    size_t down;              /* builtin ZMTP: workers waiting to connect  */
    size_t handshaking;       /* builtin ZMTP: connected, not welcomed     */
    int64_t handshake_check_ns; /* builtin ZMTP: next look for handshakes
                                   past their time                         */
    size_t spawn_tail_len;
    lg_sim_stats_t stats;     /* this thread's figures                     */
};

struct lg_sim {
    lg_sim_config_t config;   /* copy; strings borrowed                    */
    lg_tracker_t *tracker;    /* borrowed                                  */
    void *ctx;                /* libzmq context (--zmtp libzmq only)       */
    struct sockaddr_storage addr;   /* the controller (builtin ZMTP)       */
    socklen_t addr_len;
    s_thread_t *threads;
    int thread_count;
    atomic_bool stop;         /* set by lg_sim_stop                        */
    atomic_uint_fast64_t welcomed;
    atomic_uint_fast64_t tasks;
    atomic_bool failed;       /* a thread hit an error: see `error`        */
    pthread_mutex_t error_mutex;
    char error[256];          /* first thread error                        */
    bool stopped;             /* lg_sim_stop ran                           */
    lg_sim_stats_t merged;    /* figures after stopping                    */
};

/* ---- errors ---------------------------------------------------------- */

/*  Records the first error of any thread: `what`, then ": detail" when
    `detail` is not NULL.                                                  */
static void
s_fail (lg_sim_t *sim, const char *what, const char *detail)
{
    pthread_mutex_lock (&sim->error_mutex);
    if (!atomic_load (&sim->failed)) {
        snprintf (sim->error, sizeof sim->error, "%s%s%s", what,
                  detail ? ": " : "", detail ? detail : "");
        atomic_store (&sim->failed, true);
    }
    pthread_mutex_unlock (&sim->error_mutex);
}

/* ---- reading a TASK ------------------------------------------------- */

/*  The fields of a TASK the simulation needs.                             */
typedef struct {
    char job[LG_JOB_ID_MAX + 1];
    uint32_t task;
    uint32_t attempt;
    bool spawn;
} s_task_ref_t;

static const char *
s_skip_ws (const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/*  `p` is at an opening quote: returns the byte after the closing one, or
    NULL.                                                                  */
static const char *
s_skip_string (const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/*  Skips one JSON value of any kind. O(its length); no allocation.        */
static const char *
s_skip_value (const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return s_skip_string (p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = s_skip_string (p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' '
           && *p != '\n' && *p != '\t' && *p != '\r')
        p++;
    return p;
}

static const char *
s_read_uint (const char *p, const char *end, uint32_t *out)
{
    uint64_t value = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 11)
        value = value * 10 + (uint64_t) (*p++ - '0');
    if (p == start || value > UINT32_MAX)
        return NULL;
    *out = (uint32_t) value;
    return p;
}

/*  Copies a string value without escapes into `out`; NULL when it has
    escapes or does not fit (the slow path then reads it).                 */
static const char *
s_read_plain_string (const char *p, const char *end, char *out, size_t size)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *start = ++p;
    while (p < end && *p != '"' && *p != '\\')
        p++;
    if (p >= end || *p != '"' || (size_t) (p - start) >= size)
        return NULL;
    memcpy (out, start, (size_t) (p - start));
    out[p - start] = '\0';
    return p + 1;
}

/*  Reads job, task, attempt and kind from the top level of a TASK body
    by scanning it once: no tree is built. Returns 0, or -1 when the body
    is not what the fast path expects.                                     */
static int
s_scan_task (const char *p, size_t size, s_task_ref_t *ref)
{
    const char *end = p + size;
    unsigned found = 0;
    p = s_skip_ws (p, end);
    if (p >= end || *p != '{')
        return -1;
    p++;
    while (p) {
        p = s_skip_ws (p, end);
        if (p >= end || *p == '}')
            break;
        if (*p != '"')
            return -1;
        const char *key = p + 1;
        p = s_skip_string (p, end);
        if (!p)
            return -1;
        size_t key_len = (size_t) (p - 1 - key);
        p = s_skip_ws (p, end);
        if (p >= end || *p != ':')
            return -1;
        p = s_skip_ws (p + 1, end);
#define S_KEY(name) (key_len == sizeof name - 1 && !memcmp (key, name, key_len))
        if (S_KEY ("job")) {
            p = s_read_plain_string (p, end, ref->job, sizeof ref->job);
            found |= 1;
        }
        else if (S_KEY ("task")) {
            p = s_read_uint (p, end, &ref->task);
            found |= 2;
        }
        else if (S_KEY ("attempt")) {
            p = s_read_uint (p, end, &ref->attempt);
            found |= 4;
        }
        else if (S_KEY ("kind")) {
            char kind[16];
            p = s_read_plain_string (p, end, kind, sizeof kind);
            ref->spawn = p && strcmp (kind, SHOAL_KIND_SPAWN) == 0;
            found |= 8;
        }
        else
            p = s_skip_value (p, end);
#undef S_KEY
        if (!p)
            return -1;
        p = s_skip_ws (p, end);
        if (p < end && *p == ',')
            p++;
    }
    return found == 15 ? 0 : -1;
}

/*  The slow path: a full parse with jansson.                              */
static int
s_parse_task (const char *body, size_t size, s_task_ref_t *ref)
{
    json_t *root = json_loadb (body, size, 0, NULL);
    const char *job = json_string_value (json_object_get (root, "job"));
    json_t *task = json_object_get (root, "task");
    json_t *attempt = json_object_get (root, "attempt");
    const char *kind = json_string_value (json_object_get (root, "kind"));
    int rc = -1;
    if (job && strlen (job) <= LG_JOB_ID_MAX && json_is_integer (task)
        && json_is_integer (attempt) && kind
        && json_integer_value (task) >= 0
        && json_integer_value (task) <= UINT32_MAX
        && json_integer_value (attempt) >= 0
        && json_integer_value (attempt) <= UINT32_MAX) {
        strcpy (ref->job, job);
        ref->task = (uint32_t) json_integer_value (task);
        ref->attempt = (uint32_t) json_integer_value (attempt);
        ref->spawn = strcmp (kind, SHOAL_KIND_SPAWN) == 0;
        rc = 0;
    }
    json_decref (root);
    return rc;
}

/* ---- sending ------------------------------------------------------ */

static void s_drain (s_worker_t *worker);
static void s_lost (s_worker_t *worker);

static bool
s_builtin (const s_worker_t *worker)
{
    return worker->thread->sim->config.zmtp == LG_SIM_ZMTP_BUILTIN;
}

/*  Whether the worker has a connection (or one being made).              */
static bool
s_is_open (const s_worker_t *worker)
{
    return worker->sock || worker->conn.fd >= 0;
}

/*  Polls the builtin connection for EPOLLOUT exactly while bytes wait.   */
static void
s_arm (s_worker_t *worker)
{
    bool want = lg_zmtp_conn_wants_write (&worker->conn);
    if (want == worker->out_armed || worker->conn.fd < 0)
        return;
    struct epoll_event event = {
        .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = worker };
    if (epoll_ctl (worker->thread->epoll_fd, EPOLL_CTL_MOD, worker->conn.fd,
                   &event) == 0)
        worker->out_armed = want;
}

/*  Sends [command][body]. Counts a refusal; with libzmq the caller drains
    after.                                                                 */
static int
s_send (s_worker_t *worker, shoal_msg_type_t type, const char *body,
        size_t size)
{
    const char *command = shoal_msg_name (type);
    if (s_builtin (worker)) {
        lg_zmtp_frame_t frames[2] = {
            { (const uint8_t *) command, strlen (command) },
            { (const uint8_t *) body, size } };
        if (lg_zmtp_conn_send (&worker->conn, frames, 2)) {
            worker->thread->stats.send_errors++;
            s_lost (worker);
            return -1;
        }
        s_arm (worker);
        return 0;
    }
    if (zmq_send (worker->sock, command, strlen (command),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send (worker->sock, body, size, ZMQ_DONTWAIT) < 0) {
        worker->thread->stats.send_errors++;
        return -1;
    }
    return 0;
}

static void
s_send_hello (s_worker_t *worker)
{
    const lg_sim_config_t *config = &worker->thread->sim->config;
    char body[512];
    int len = snprintf (body, sizeof body,
                        "{\"protocol\":%d,\"worker\":\"%s-%" PRIu32 "\","
                        "\"host\":\"%s\",\"slots\":%" PRIu32 "}",
                        SHOAL_PROTOCOL_VERSION, config->name_prefix,
                        worker->index, config->host, worker->slots);
    s_send (worker, SHOAL_MSG_HELLO, body, (size_t) len);
}

static void
s_slot_freed (s_worker_t *worker, int64_t now)
{
    if (worker->free_count >= worker->slots)
        return;
    uint32_t tail = (worker->free_head + worker->free_count) % worker->slots;
    worker->free_ns[tail] = now;
    worker->free_count++;
}

static int64_t
s_slot_taken (s_worker_t *worker, int64_t now)
{
    if (!worker->free_count)
        return now;   /* the controller gave more than we had free */
    int64_t at = worker->free_ns[worker->free_head];
    worker->free_head = (worker->free_head + 1) % worker->slots;
    worker->free_count--;
    return at;
}

/*  Sends the RESULT of a plain task and records it.                       */
static void
s_send_result (s_worker_t *worker, const char *job, uint32_t task,
               uint32_t attempt, int exit_code)
{
    s_thread_t *thread = worker->thread;
    char body[256];
    int len = snprintf (body, sizeof body,
                        "{\"job\":\"%s\",\"task\":%" PRIu32 ",\"attempt\":%"
                        PRIu32 ",\"status\":\"exited\",\"exit_code\":%d,"
                        "\"duration_ms\":0}",
                        job, task, attempt, exit_code);
    /* Timed before the send: the reply may come back before a send
       that was preempted returns, never before it starts. */
    int64_t now = lg_now_ns ();
    if (s_send (worker, SHOAL_MSG_RESULT, body, (size_t) len))
        return;
    thread->stats.results++;
    if (exit_code)
        thread->stats.failed++;
    thread->stats.last_result_ns = now;
    s_slot_freed (worker, now);
    lg_tracker_result_sent (thread->sim->tracker, job, task, now);
}

/*  Builds the spawn list once per thread: ,"spawn":[{"i":0},...]} after
    S_SPAWN_PREFIX_ROOM bytes left for the fields before it.               */
static int
s_build_spawn (s_thread_t *thread)
{
    uint32_t entries = thread->sim->config.spawn_entries;
    size_t cap = S_SPAWN_PREFIX_ROOM + 16 + (size_t) entries * 20;
    char *buf = malloc (cap);
    if (!buf)
        return -1;
    char *p = buf + S_SPAWN_PREFIX_ROOM;
    p += sprintf (p, ",\"spawn\":[");
    for (uint32_t i = 0; i < entries; i++)
        p += sprintf (p, "%s{\"i\":%" PRIu32 "}", i ? "," : "", i);
    p += sprintf (p, "]}");
    thread->spawn_buf = buf;
    thread->spawn_tail_len = (size_t) (p - (buf + S_SPAWN_PREFIX_ROOM));
    return 0;
}

static void
s_send_spawn_result (s_worker_t *worker, const s_task_ref_t *ref)
{
    s_thread_t *thread = worker->thread;
    if (!thread->spawn_buf && s_build_spawn (thread)) {
        s_fail (thread->sim, "out of memory building a spawn list", NULL);
        return;
    }
    char prefix[S_SPAWN_PREFIX_ROOM];
    int len = snprintf (prefix, sizeof prefix,
                        "{\"job\":\"%s\",\"task\":%" PRIu32 ",\"attempt\":%"
                        PRIu32 ",\"status\":\"exited\",\"exit_code\":0,"
                        "\"duration_ms\":0",
                        ref->job, ref->task, ref->attempt);
    char *start = thread->spawn_buf + S_SPAWN_PREFIX_ROOM - len;
    memcpy (start, prefix, (size_t) len);
    int64_t now = lg_now_ns ();
    if (s_send (worker, SHOAL_MSG_RESULT, start,
                (size_t) len + thread->spawn_tail_len))
        return;
    thread->stats.results++;
    thread->stats.spawn_entries += thread->sim->config.spawn_entries;
    thread->stats.last_result_ns = now;
    s_slot_freed (worker, now);
    lg_tracker_spawn_sent (thread->sim->tracker, ref->job, ref->task,
                           thread->sim->config.spawn_entries, now);
}

/*  Whether this plain task is one of the failing share: a hash of job and
    task, so a re-run of the same task fails again.                        */
static bool
s_fails (double share, const char *job, uint32_t task)
{
    if (share <= 0)
        return false;
    uint64_t hash = 14695981039346656037ULL;
    for (const char *p = job; *p; p++)
        hash = (hash ^ (unsigned char) *p) * 1099511628211ULL;
    hash = (hash ^ task) * 1099511628211ULL;
    hash ^= hash >> 29;
    return (double) (hash % 1000000) < share * 1000000.0;
}

/* ---- the life of a worker ---------------------------------------- */

/*  The worker's connection is no longer between connect() and WELCOME:
    it was welcomed or it closed.                                          */
static void
s_handshake_over (s_worker_t *worker)
{
    if (worker->handshaking) {
        worker->handshaking = false;
        worker->thread->handshaking--;
    }
}

static void
s_close (s_worker_t *worker, bool bye)
{
    s_handshake_over (worker);
    if (worker->conn.fd >= 0) {
        if (bye) {
            s_send (worker, SHOAL_MSG_BYE, "{}", 2);
            lg_zmtp_conn_on_writable (&worker->conn);
            shutdown (worker->conn.fd, SHUT_WR);
        }
        /* Closing the fd takes it out of the epoll set. */
        lg_zmtp_conn_close (&worker->conn);
        worker->state = S_GONE;
        return;
    }
    if (!worker->sock)
        return;
    if (bye) {
        s_send (worker, SHOAL_MSG_BYE, "{}", 2);
        int linger = S_BYE_LINGER_MS;
        zmq_setsockopt (worker->sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    int fd;
    size_t fd_size = sizeof fd;
    if (zmq_getsockopt (worker->sock, ZMQ_FD, &fd, &fd_size) == 0)
        epoll_ctl (worker->thread->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    zmq_close (worker->sock);
    worker->sock = NULL;
    worker->state = S_GONE;
}

/*  The heartbeat period the controller tells (WELCOME, HEARTBEAT); like
    shoal-worker, kept within 100 ms .. 60 s. One controller: the same for
    every worker of a thread.                                              */
static void
s_adopt_period (s_thread_t *thread, int64_t ms)
{
    if (ms > 0)
        thread->heartbeat_ns = (ms < 100 ? 100 : ms > 60000 ? 60000 : ms)
                               * (int64_t) 1000000;
}

static void
s_on_welcome (s_worker_t *worker, const char *body, size_t size)
{
    int64_t now = lg_now_ns ();
    if (worker->state == S_HELLO_SENT) {
        worker->free_count = 0;
        for (uint32_t i = 0; i < worker->slots; i++)
            s_slot_freed (worker, now);
    }
    worker->state = S_READY;
    s_handshake_over (worker);
    /* The controller says the period. */
    json_t *welcome = json_loadb (body, size, 0, NULL);
    json_int_t ms = json_integer_value (json_object_get (welcome,
                                                         "heartbeat_ms"));
    json_decref (welcome);
    s_adopt_period (worker->thread, ms);
    if (!worker->welcomed) {
        worker->welcomed = true;
        worker->thread->stats.welcomed++;
        atomic_fetch_add (&worker->thread->sim->welcomed, 1);
    }
}

static void
s_send_heartbeat (s_worker_t *worker, int64_t now)
{
    if (!s_is_open (worker))
        return;
    worker->heartbeat_sent = now;
    if (s_send (worker, SHOAL_MSG_HEARTBEAT, "{}", 2) == 0)
        worker->thread->stats.heartbeats++;
    s_drain (worker);
}

static void
s_on_heartbeat (s_worker_t *worker, const char *body, size_t size)
{
    /* The controller tells the period as it adapts it to the cluster's
       size; absent, the period stays. */
    int64_t ms = 0;
    if (shoal_msg_heartbeat_period (body, size, &ms) == 0 && ms > 0)
        s_adopt_period (worker->thread, ms);
    /* Answered at once, as shoal-worker does. */
    int64_t now = lg_now_ns ();
    if (worker->heartbeat_sent == 0
        || shoal_heartbeat_answer_due (now - worker->heartbeat_sent,
                                       worker->thread->heartbeat_ns))
        s_send_heartbeat (worker, now);
}

static void
s_on_reconnect (s_worker_t *worker, const char *body, size_t size)
{
    worker->thread->stats.reconnects++;
    worker->state = S_HELLO_SENT;
    s_send_hello (worker);
}

static void
s_on_cancel (s_worker_t *worker, const char *body, size_t size)
{
    /* The attempt goes on and its RESULT comes when due: the controller
       keeps the slot until then and ignores the result, as it does for a
       real worker whose process ended just before the CANCEL. */
    worker->thread->stats.cancels++;
}

/*  This task's delay: the configured one, spread uniformly over
    [1 - jitter, 1 + jitter] times it by a per-thread xorshift64.         */
static int64_t
s_delay_ns (s_thread_t *thread)
{
    const lg_sim_config_t *config = &thread->sim->config;
    if (config->delay_jitter <= 0)
        return config->delay_ns;
    uint64_t x = thread->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    thread->random = x;
    double unit = (double) (x >> 11) / 9007199254740992.0;   /* [0, 1) */
    double factor = 1.0 + config->delay_jitter * (2.0 * unit - 1.0);
    return (int64_t) ((double) config->delay_ns * factor);
}

static void
s_heap_push (s_thread_t *thread, const s_delayed_t *entry)
{
    s_delayed_t *heap = thread->delayed;
    size_t at = thread->delayed_len++;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (heap[parent].due_ns <= entry->due_ns)
            break;
        heap[at] = heap[parent];
        at = parent;
    }
    heap[at] = *entry;
}

/*  Removes the earliest entry (the heap is not empty) into `out`.        */
static void
s_heap_pop (s_thread_t *thread, s_delayed_t *out)
{
    s_delayed_t *heap = thread->delayed;
    *out = heap[0];
    s_delayed_t last = heap[--thread->delayed_len];
    size_t len = thread->delayed_len;
    size_t at = 0;
    while (true) {
        size_t child = 2 * at + 1;
        if (child >= len)
            break;
        if (child + 1 < len && heap[child + 1].due_ns < heap[child].due_ns)
            child++;
        if (last.due_ns <= heap[child].due_ns)
            break;
        heap[at] = heap[child];
        at = child;
    }
    if (len)
        heap[at] = last;
}

static void
s_on_task (s_worker_t *worker, const char *body, size_t size)
{
    s_thread_t *thread = worker->thread;
    lg_sim_t *sim = thread->sim;
    int64_t now = lg_now_ns ();
    s_task_ref_t ref;
    if (s_scan_task (body, size, &ref) && s_parse_task (body, size, &ref)) {
        thread->stats.bad_messages++;
        return;
    }
    thread->stats.tasks++;
    atomic_fetch_add_explicit (&sim->tasks, 1, memory_order_relaxed);
    if (!thread->stats.first_task_ns)
        thread->stats.first_task_ns = now;
    worker->received++;
    int64_t slot_free = s_slot_taken (worker, now);
    lg_task_timing_t timing;
    lg_tracker_task (sim->tracker, ref.job, ref.task, ref.attempt, ref.spawn,
                     now, slot_free, &timing);
    if (timing.dispatch_ns >= 0) {
        lg_hist_record (&thread->stats.dispatch,
                        (uint64_t) timing.dispatch_ns / 1000);
        lg_hist_record (timing.after_spawn ? &thread->stats.dispatch_spawn
                                           : &thread->stats.dispatch_result,
                        (uint64_t) timing.dispatch_ns / 1000);
    }
    if (timing.fanout_ns >= 0)
        lg_hist_record (&thread->stats.fanout,
                        (uint64_t) timing.fanout_ns / 1000);
    if (timing.transition_ns >= 0)
        lg_hist_record (&thread->stats.transition,
                        (uint64_t) timing.transition_ns / 1000);
    if (worker->vanisher
        && worker->received >= (uint32_t) sim->config.vanish_after) {
        thread->stats.vanished++;
        s_close (worker, false);
        return;
    }
    if (ref.spawn) {
        thread->stats.spawn_tasks++;
        s_send_spawn_result (worker, &ref);
        return;
    }
    int exit_code = s_fails (sim->config.fail_share, ref.job, ref.task);
    if (sim->config.delay_ns <= 0 || thread->delayed_len == thread->delayed_cap) {
        s_send_result (worker, ref.job, ref.task, ref.attempt, exit_code);
        return;
    }
    s_delayed_t entry = { .worker = worker,
                          .due_ns = now + s_delay_ns (thread),
                          .task = ref.task,
                          .attempt = ref.attempt,
                          .exit_code = exit_code };
    strcpy (entry.job, ref.job);
    s_heap_push (thread, &entry);
}

/*  Controller commands a worker acts on; anything else is counted as a
    bad message.                                                           */
typedef void (s_handler_fn) (s_worker_t *worker, const char *body,
                             size_t size);
static const struct {
    shoal_msg_type_t type;
    s_handler_fn *fn;
} s_handlers[] = {
    { SHOAL_MSG_TASK, s_on_task },
    { SHOAL_MSG_HEARTBEAT, s_on_heartbeat },
    { SHOAL_MSG_WELCOME, s_on_welcome },
    { SHOAL_MSG_CANCEL, s_on_cancel },
    { SHOAL_MSG_RECONNECT, s_on_reconnect },
};

static void
s_dispatch (s_worker_t *worker, const void *name, size_t len,
            const void *body, size_t size)
{
    for (size_t i = 0; i < sizeof s_handlers / sizeof s_handlers[0]; i++) {
        const char *want = shoal_msg_name (s_handlers[i].type);
        if (strlen (want) == len && memcmp (want, name, len) == 0) {
            s_handlers[i].fn (worker, body, size);
            return;
        }
    }
    worker->thread->stats.bad_messages++;
}

/*  A whole message from the builtin client: [command][body] or a bad one.
    Stops the decoding once the handler closed the connection (a worker
    vanishing).                                                            */
static int
s_on_zmtp_message (void *arg, const lg_zmtp_frame_t *frames, size_t count)
{
    s_worker_t *worker = arg;
    if (count == 2)
        s_dispatch (worker, frames[0].data, frames[0].size, frames[1].data,
                    frames[1].size);
    else
        worker->thread->stats.bad_messages++;
    return worker->conn.fd < 0;
}

static const lg_zmtp_handler_t s_zmtp_handler = { s_on_zmtp_message, NULL };

/*  The builtin connection is ready (epoll's `events`): writes what waits,
    reads and handles what came.                                           */
static void
s_on_ready (s_worker_t *worker, uint32_t events)
{
    lg_zmtp_conn_t *conn = &worker->conn;
    if (conn->fd < 0)
        return;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        && lg_zmtp_conn_on_writable (conn)) {
        s_lost (worker);
        return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        && lg_zmtp_conn_on_readable (conn, worker->thread->scratch,
                                     S_READ_SCRATCH, &s_zmtp_handler,
                                     worker)) {
        s_lost (worker);
        return;
    }
    s_arm (worker);
}

/*  Receives and handles everything waiting on the worker's socket, until
    libzmq says nothing is left (which also re-arms its ZMQ_FD).           */
static void
s_drain (s_worker_t *worker)
{
    if (s_builtin (worker))
        return;   /* the builtin client reads when epoll says so */
    zmq_msg_t command, body;
    while (worker->sock) {
        zmq_msg_init (&command);
        if (zmq_msg_recv (&command, worker->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&command);
            int events = 0;
            size_t events_size = sizeof events;
            if (zmq_getsockopt (worker->sock, ZMQ_EVENTS, &events,
                                &events_size)
                || !(events & ZMQ_POLLIN))
                break;
            continue;
        }
        zmq_msg_init (&body);
        bool two = zmq_msg_more (&command)
                   && zmq_msg_recv (&body, worker->sock, 0) >= 0;
        if (two && !zmq_msg_more (&body))
            s_dispatch (worker, zmq_msg_data (&command),
                        zmq_msg_size (&command), zmq_msg_data (&body),
                        zmq_msg_size (&body));
        else
            worker->thread->stats.bad_messages++;
        /* Drop any further frames of a malformed message. */
        while (worker->sock && zmq_msg_more (&body)) {
            zmq_msg_close (&body);
            zmq_msg_init (&body);
            if (zmq_msg_recv (&body, worker->sock, 0) < 0)
                break;
        }
        zmq_msg_close (&body);
        zmq_msg_close (&command);
    }
}

/* ---- the thread ------------------------------------------------------- */

/*  The builtin client: connects (again), HELLO queued behind the
    handshake. A connection that cannot be made is tried again later; -1
    only when the machine is out of sockets or memory.                     */
static int
s_connect_builtin (s_worker_t *worker)
{
    s_thread_t *thread = worker->thread;
    lg_sim_t *sim = thread->sim;
    if (lg_zmtp_conn_open (&worker->conn, (struct sockaddr *) &sim->addr,
                           sim->addr_len)) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM
            || errno == ENOBUFS) {
            s_fail (sim, "cannot connect a simulated worker",
                    worker->conn.error);
            return -1;
        }
        worker->retry_ns = lg_now_ns () + S_RECONNECT_NS;
        thread->down++;
        return 0;
    }
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = worker };
    worker->out_armed = lg_zmtp_conn_wants_write (&worker->conn);
    if (worker->out_armed)
        event.events |= EPOLLOUT;
    if (epoll_ctl (thread->epoll_fd, EPOLL_CTL_ADD, worker->conn.fd,
                   &event)) {
        s_fail (sim, "cannot poll a simulated worker", strerror (errno));
        return -1;
    }
    worker->state = S_HELLO_SENT;
    worker->welcome_by_ns = lg_now_ns () + sim->config.handshake_ns;
    worker->handshaking = true;
    thread->handshaking++;
    s_send_hello (worker);
    return 0;
}

/*  The builtin connection broke: closed now, made again after
    S_RECONNECT_NS, and HELLO again, as a restarted worker would.          */
static void
s_lost (s_worker_t *worker)
{
    if (worker->conn.fd < 0)
        return;
    s_handshake_over (worker);
    lg_zmtp_conn_close (&worker->conn);
    worker->state = S_HELLO_SENT;
    worker->retry_ns = lg_now_ns () + S_RECONNECT_NS;
    worker->thread->down++;
    worker->thread->stats.disconnects++;
}

/*  Connects (again) the workers whose time has come, while fewer than
    S_HANDSHAKES_MAX handshakes are under way. O(workers of the thread),
    only while some are down.                                              */
static int
s_reconnect_due (s_thread_t *thread, int64_t now)
{
    if (thread->handshaking >= S_HANDSHAKES_MAX)
        return 0;
    size_t down = thread->down;
    thread->down = 0;
    for (size_t i = 0; i < thread->count && down; i++) {
        s_worker_t *worker = &thread->workers[i];
        if (worker->state == S_GONE || worker->conn.fd >= 0)
            continue;
        down--;
        if (thread->handshaking >= S_HANDSHAKES_MAX) {
            thread->down += down + 1;   /* this one and the rest */
            break;
        }
        if (worker->retry_ns > now)
            thread->down++;
        else if (s_connect_builtin (worker))
            return -1;
    }
    return 0;
}

/*  Closes the builtin connections still waiting for WELCOME past their
    time; s_reconnect_due makes them again. O(workers of the thread), once
    per S_HANDSHAKE_CHECK_NS.                                              */
static void
s_expire_handshakes (s_thread_t *thread, int64_t now)
{
    if (now < thread->handshake_check_ns)
        return;
    thread->handshake_check_ns = now + S_HANDSHAKE_CHECK_NS;
    for (size_t i = 0; i < thread->count; i++) {
        s_worker_t *worker = &thread->workers[i];
        if (worker->conn.fd >= 0 && worker->state == S_HELLO_SENT
            && worker->welcome_by_ns <= now) {
            s_lost (worker);
            thread->stats.handshake_timeouts++;
        }
    }
}

/*  A libzmq worker's socket, connected, HELLO sent.                      */
static int
s_connect (s_worker_t *worker, void *ctx, const char *endpoint, int epoll_fd)
{
    worker->sock = zmq_socket (ctx, ZMQ_DEALER);
    if (!worker->sock)
        return -1;
    int zero = 0;
    zmq_setsockopt (worker->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (worker->sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (worker->sock, ZMQ_RCVHWM, &zero, sizeof zero);
    int64_t max_size = SHOAL_MSG_MAX_SIZE;
    zmq_setsockopt (worker->sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (zmq_connect (worker->sock, endpoint))
        return -1;
    int fd;
    size_t fd_size = sizeof fd;
    if (zmq_getsockopt (worker->sock, ZMQ_FD, &fd, &fd_size))
        return -1;
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = worker };
    if (epoll_ctl (epoll_fd, EPOLL_CTL_ADD, fd, &event))
        return -1;
    worker->state = S_HELLO_SENT;
    s_send_hello (worker);
    s_drain (worker);
    return 0;
}

static void
s_send_due_results (s_thread_t *thread, int64_t now)
{
    while (thread->delayed_len && thread->delayed[0].due_ns <= now) {
        s_delayed_t entry;
        s_heap_pop (thread, &entry);
        s_worker_t *worker = entry.worker;
        if (!s_is_open (worker))
            continue;
        s_send_result (worker, entry.job, entry.task, entry.attempt,
                       entry.exit_code);
        s_drain (worker);
    }
}

/*  A worker's own clock: shoal-worker sends a HEARTBEAT after 1.25
    periods without one (shoal_heartbeat_own_due). Looking at every
    worker each quarter period, in a ring ordered by the time of the look,
    keeps that O(1) per worker; a HEARTBEAT goes out at most a quarter
    period late, far inside the controller's SHOAL_HEARTBEAT_LIVENESS.    */
static void
s_send_heartbeats (s_thread_t *thread, int64_t now)
{
    int64_t quarter = thread->heartbeat_ns / 4;
    for (size_t n = 0; n < thread->count; n++) {
        s_worker_t *worker = &thread->workers[thread->heartbeat_cursor];
        if (worker->next_heartbeat > now)
            break;
        worker->next_heartbeat += quarter;
        if (worker->next_heartbeat <= now)
            worker->next_heartbeat = now + quarter;
        thread->heartbeat_cursor = (thread->heartbeat_cursor + 1)
                                   % thread->count;
        if (worker->heartbeat_sent == 0
            || shoal_heartbeat_own_due (now - worker->heartbeat_sent,
                                        thread->heartbeat_ns))
            s_send_heartbeat (worker, now);
    }
}

static int64_t
s_next_wake (s_thread_t *thread, int64_t now)
{
    int64_t wake = now + S_STOP_CHECK_NS;
    if (thread->count
        && thread->workers[thread->heartbeat_cursor].next_heartbeat < wake)
        wake = thread->workers[thread->heartbeat_cursor].next_heartbeat;
    if (thread->delayed_len && thread->delayed[0].due_ns < wake)
        wake = thread->delayed[0].due_ns;
    if (thread->down && now + S_RECONNECT_NS / 2 < wake)
        wake = now + S_RECONNECT_NS / 2;
    return wake;
}

static void *
s_thread_main (void *arg)
{
    s_thread_t *thread = arg;
    lg_sim_t *sim = thread->sim;
    int64_t start = lg_now_ns ();
    thread->heartbeat_ns = S_HEARTBEAT_NS;
    for (size_t i = 0; i < thread->count; i++) {
        s_worker_t *worker = &thread->workers[i];
        /* Heartbeats spread evenly over the period. */
        worker->next_heartbeat = start + S_HEARTBEAT_NS
                                 + (int64_t) i * S_HEARTBEAT_NS
                                       / (int64_t) thread->count;
        if (s_builtin (worker)) {
            /* Connected by s_reconnect_due, a few at a time. */
            worker->retry_ns = start;
            thread->down++;
        }
        else if (s_connect (worker, sim->ctx, sim->config.endpoint,
                            thread->epoll_fd)) {
            s_fail (sim, "cannot connect a simulated worker",
                    zmq_strerror (zmq_errno ()));
            return NULL;
        }
    }
    if (thread->down && s_reconnect_due (thread, start))
        return NULL;
    struct epoll_event events[S_EPOLL_BATCH];
    while (!atomic_load_explicit (&sim->stop, memory_order_relaxed)) {
        int64_t now = lg_now_ns ();
        int64_t wait_ns = s_next_wake (thread, now) - now;
        /* A timeout in nanoseconds: a millisecond one would send every
           result due within the same millisecond in one burst, a load
           no real set of workers makes. */
        if (wait_ns < 0)
            wait_ns = 0;
        struct timespec timeout = { .tv_sec = wait_ns / 1000000000LL,
                                    .tv_nsec = wait_ns % 1000000000LL };
        int n = epoll_pwait2 (thread->epoll_fd, events, S_EPOLL_BATCH,
                              &timeout, NULL);
        if (n < 0 && errno != EINTR) {
            s_fail (sim, "epoll_wait failed", strerror (errno));
            return NULL;
        }
        bool builtin = sim->config.zmtp == LG_SIM_ZMTP_BUILTIN;
        for (int i = 0; i < n; i++) {
            if (builtin)
                s_on_ready (events[i].data.ptr, events[i].events);
            else
                s_drain (events[i].data.ptr);
        }
        now = lg_now_ns ();
        if (builtin)
            s_expire_handshakes (thread, now);
        if (thread->down && s_reconnect_due (thread, now))
            return NULL;
        s_send_due_results (thread, now);
        s_send_heartbeats (thread, now);
    }
    for (size_t i = 0; i < thread->count; i++)
        s_close (&thread->workers[i], true);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------- */

/*  Raises the soft RLIMIT_NOFILE to `need`, and the hard one too when we
    may (root). Returns 0 or -1 with `err` saying what to do.              */
static int
s_raise_nofile (rlim_t need, char *err, size_t size)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return 0;
    if (limit.rlim_cur >= need)
        return 0;
    if (limit.rlim_max < need) {
        struct rlimit raised = { need, need };
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
            return 0;
        snprintf (err, size,
                  "the simulated workers need %llu file descriptors and the "
                  "hard limit is %llu: raise it (ulimit -Hn) or use fewer "
                  "--workers", (unsigned long long) need,
                  (unsigned long long) limit.rlim_max);
        return -1;
    }
    limit.rlim_cur = need;
    if (setrlimit (RLIMIT_NOFILE, &limit)) {
        snprintf (err, size, "cannot raise the file descriptor limit to "
                  "%llu: %s", (unsigned long long) need, strerror (errno));
        return -1;
    }
    return 0;
}

/*  The controller's address for the builtin client, from a tcp://HOST:PORT
    (HOST a name, an IPv4 address or [an IPv6 one]) or ipc://PATH
    endpoint. 0, or -1 with `err` set.                                     */
static int
s_resolve (const char *endpoint, struct sockaddr_storage *addr,
           socklen_t *addr_len, char *err, size_t size)
{
    memset (addr, 0, sizeof *addr);
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *) addr;
        const char *path = endpoint + 6;
        if (!*path || strlen (path) >= sizeof un->sun_path) {
            snprintf (err, size, "--connect %s: the ipc path must have 1 to "
                      "%zu bytes", endpoint, sizeof un->sun_path - 1);
            return -1;
        }
        un->sun_family = AF_UNIX;
        strcpy (un->sun_path, path);
        *addr_len = sizeof *un;
        return 0;
    }
    if (strncmp (endpoint, "tcp://", 6)) {
        snprintf (err, size, "--connect %s: the builtin ZMTP client connects "
                  "to tcp:// and ipc:// endpoints (--zmtp libzmq for others)",
                  endpoint);
        return -1;
    }
    char host[256];
    const char *hostport = endpoint + 6;
    const char *colon = strrchr (hostport, ':');
    if (!colon || colon == hostport || !colon[1]
        || (size_t) (colon - hostport) >= sizeof host) {
        snprintf (err, size, "--connect %s: want tcp://HOST:PORT", endpoint);
        return -1;
    }
    size_t host_len = (size_t) (colon - hostport);
    memcpy (host, hostport, host_len);
    host[host_len] = '\0';
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
        memmove (host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host, colon + 1, &hints, &found);
    if (rc || !found) {
        snprintf (err, size, "--connect %s: %s", endpoint,
                  rc ? gai_strerror (rc) : "no address");
        return -1;
    }
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *addr_len = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

lg_sim_t *
lg_sim_new (const lg_sim_config_t *config, lg_tracker_t *tracker, char *err,
            size_t size)
{
    if (config->workers < 1 || config->workers > LG_SIM_WORKERS_MAX) {
        snprintf (err, size, "--workers must be 1..%d", LG_SIM_WORKERS_MAX);
        return NULL;
    }
    if (config->slots < 1 || config->slots > LG_SIM_SLOTS_MAX) {
        snprintf (err, size, "--slots must be 1..%d", LG_SIM_SLOTS_MAX);
        return NULL;
    }
    if (config->threads < 1 || config->threads > LG_SIM_THREADS_MAX) {
        snprintf (err, size, "--threads must be 1..%d", LG_SIM_THREADS_MAX);
        return NULL;
    }
    if (config->spawn_entries > LG_SIM_SPAWN_MAX) {
        snprintf (err, size, "--spawn must be 0..%d", LG_SIM_SPAWN_MAX);
        return NULL;
    }
    /* The longest entry is {"i":9999999}, 14 bytes, plus a comma. */
    if ((uint64_t) config->spawn_entries * 15 + S_SPAWN_PREFIX_ROOM
        > SHOAL_MSG_MAX_SIZE) {
        snprintf (err, size, "a spawn list of %u entries would not fit in "
                  "the %d byte frame limit", config->spawn_entries,
                  SHOAL_MSG_MAX_SIZE);
        return NULL;
    }
    rlim_t per_worker = config->zmtp == LG_SIM_ZMTP_LIBZMQ ? S_FDS_PER_SOCKET
                                                            : 1;
    rlim_t need = (rlim_t) config->workers * per_worker + S_FDS_SPARE;
    if (s_raise_nofile (need, err, size))
        return NULL;
    lg_sim_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, size, "out of memory");
        return NULL;
    }
    self->config = *config;
    if (self->config.handshake_ns <= 0)
        self->config.handshake_ns = LG_SIM_HANDSHAKE_NS;
    self->tracker = tracker;
    pthread_mutex_init (&self->error_mutex, NULL);
    self->thread_count = config->threads < config->workers ? config->threads
                                                           : config->workers;
    self->threads = calloc ((size_t) self->thread_count, sizeof *self->threads);
    for (int t = 0; self->threads && t < self->thread_count; t++)
        self->threads[t].epoll_fd = -1;
    if (!self->threads) {
        snprintf (err, size, "out of memory");
        lg_sim_destroy (&self);
        return NULL;
    }
    if (config->zmtp == LG_SIM_ZMTP_BUILTIN) {
        if (s_resolve (config->endpoint, &self->addr, &self->addr_len, err,
                       size)) {
            lg_sim_destroy (&self);
            return NULL;
        }
    }
    else {
        self->ctx = zmq_ctx_new ();
        if (!self->ctx) {
            snprintf (err, size, "cannot make a libzmq context: %s",
                      zmq_strerror (zmq_errno ()));
            lg_sim_destroy (&self);
            return NULL;
        }
        zmq_ctx_set (self->ctx, ZMQ_IO_THREADS,
                     config->io_threads > 0 ? config->io_threads : 1);
        zmq_ctx_set (self->ctx, ZMQ_MAX_SOCKETS, config->workers + 64);
    }
    for (int t = 0; t < self->thread_count; t++) {
        s_thread_t *thread = &self->threads[t];
        size_t first = (size_t) config->workers * (size_t) t
                       / (size_t) self->thread_count;
        size_t last = (size_t) config->workers * (size_t) (t + 1)
                      / (size_t) self->thread_count;
        thread->sim = self;
        thread->count = last - first;
        thread->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
        thread->workers = calloc (thread->count, sizeof *thread->workers);
        for (size_t i = 0; thread->workers && i < thread->count; i++)
            lg_zmtp_conn_init (&thread->workers[i].conn, SHOAL_MSG_MAX_SIZE);
        if (config->zmtp == LG_SIM_ZMTP_BUILTIN)
            thread->scratch = malloc (S_READ_SCRATCH);
        thread->delayed_cap = thread->count * (size_t) config->slots;
        thread->delayed = calloc (thread->delayed_cap,
                                  sizeof *thread->delayed);
        /* A fixed seed per thread: the same run draws the same delays. */
        thread->random = 0x9E3779B97F4A7C15ULL * (uint64_t) (t + 1);
        if (thread->epoll_fd < 0 || !thread->workers || !thread->delayed
            || (config->zmtp == LG_SIM_ZMTP_BUILTIN && !thread->scratch)) {
            snprintf (err, size, "cannot set up a thread: %s",
                      thread->epoll_fd < 0 ? strerror (errno)
                                           : "out of memory");
            lg_sim_destroy (&self);
            return NULL;
        }
        for (size_t i = 0; i < thread->count; i++) {
            s_worker_t *worker = &thread->workers[i];
            worker->thread = thread;
            worker->index = (uint32_t) (first + i);
            worker->slots = (uint32_t) config->slots;
            worker->vanisher = (int) (first + i) < config->vanish;
            worker->free_ns = calloc (worker->slots, sizeof *worker->free_ns);
            if (!worker->free_ns) {
                snprintf (err, size, "out of memory");
                lg_sim_destroy (&self);
                return NULL;
            }
        }
    }
    return self;
}

int
lg_sim_start (lg_sim_t *self, char *err, size_t size)
{
    for (int t = 0; t < self->thread_count; t++) {
        s_thread_t *thread = &self->threads[t];
        int rc = pthread_create (&thread->thread, NULL, s_thread_main, thread);
        if (rc) {
            snprintf (err, size, "cannot start a thread: %s", strerror (rc));
            return -1;
        }
        thread->started = true;
    }
    return 0;
}

uint64_t
lg_sim_welcomed (lg_sim_t *self)
{
    return atomic_load (&self->welcomed);
}

uint64_t
lg_sim_tasks (lg_sim_t *self)
{
    return atomic_load_explicit (&self->tasks, memory_order_relaxed);
}

bool
lg_sim_failed (lg_sim_t *self, char *err, size_t size)
{
    if (!atomic_load (&self->failed))
        return false;
    pthread_mutex_lock (&self->error_mutex);
    snprintf (err, size, "%s", self->error);
    pthread_mutex_unlock (&self->error_mutex);
    return true;
}

static void
s_merge (lg_sim_stats_t *into, const lg_sim_stats_t *from)
{
    into->welcomed += from->welcomed;
    into->reconnects += from->reconnects;
    into->tasks += from->tasks;
    into->spawn_tasks += from->spawn_tasks;
    into->results += from->results;
    into->failed += from->failed;
    into->spawn_entries += from->spawn_entries;
    into->cancels += from->cancels;
    into->heartbeats += from->heartbeats;
    into->vanished += from->vanished;
    into->send_errors += from->send_errors;
    into->disconnects += from->disconnects;
    into->handshake_timeouts += from->handshake_timeouts;
    into->bad_messages += from->bad_messages;
    if (from->first_task_ns
        && (!into->first_task_ns || from->first_task_ns < into->first_task_ns))
        into->first_task_ns = from->first_task_ns;
    if (from->last_result_ns > into->last_result_ns)
        into->last_result_ns = from->last_result_ns;
    lg_hist_merge (&into->dispatch, &from->dispatch);
    lg_hist_merge (&into->dispatch_result, &from->dispatch_result);
    lg_hist_merge (&into->dispatch_spawn, &from->dispatch_spawn);
    lg_hist_merge (&into->transition, &from->transition);
    lg_hist_merge (&into->fanout, &from->fanout);
}

void
lg_sim_stop (lg_sim_t *self, lg_sim_stats_t *stats)
{
    if (!self->stopped) {
        atomic_store (&self->stop, true);
        memset (&self->merged, 0, sizeof self->merged);
        for (int t = 0; t < self->thread_count; t++) {
            s_thread_t *thread = &self->threads[t];
            if (thread->started)
                pthread_join (thread->thread, NULL);
            thread->started = false;
            s_merge (&self->merged, &thread->stats);
        }
        self->stopped = true;
    }
    if (stats)
        *stats = self->merged;
}

void
lg_sim_destroy (lg_sim_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lg_sim_t *self = *self_p;
    lg_sim_stop (self, NULL);
    for (int t = 0; self->threads && t < self->thread_count; t++) {
        s_thread_t *thread = &self->threads[t];
        for (size_t i = 0; thread->workers && i < thread->count; i++) {
            s_close (&thread->workers[i], false);
            lg_zmtp_conn_release (&thread->workers[i].conn);
            free (thread->workers[i].free_ns);
        }
        if (thread->epoll_fd >= 0)
            close (thread->epoll_fd);
        free (thread->workers);
        free (thread->delayed);
        free (thread->spawn_buf);
        free (thread->scratch);
    }
    free (self->threads);
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    pthread_mutex_destroy (&self->error_mutex);
    free (self);
    *self_p = NULL;
}
