/*  loop.c: the controller loop: ROUTER socket, scheduler, API requests.

    One thread, one poll: worker messages and HTTP-thread requests are
    events for the scheduler; after each event the loop carries out the
    actions the scheduler queued (send a task, a cancel, a heartbeat).

    Worker messages are [identity][command][body]. The scheduler keys
    workers by the identity in hex, which the loop turns back into bytes
    to route a reply. ZMQ_ROUTER_MANDATORY makes a send to a vanished peer
    fail instead of vanishing silently; such a worker is treated as lost.

    API requests are calls from the HTTP threads (mailbox.h): a JSON value
    {"op": ..., ...}, answered with {"status": N, "body": ..., "location":
    ..., "event_id": N}. The ops are a table, like the routes of the HTTP
    layer.

    Changes leave the loop once per round: the scheduler's change lists
    are walked once (s_flush) and each changed job and task goes both to
    the state store and to the event hub, so a task that changed five
    times in a round is written once and makes one event. Task events are
    fixed-size records (no JSON in this thread), and so are the job and
    stage events a changed job gives once per round: the HTTP threads that
    send them render them.                                                */
#include "loop.h"

#include "mailbox.h"
#include "writer.h"

#include "shoal/log.h"
#include "shoal/protocol.h"
#include "shoal/random.h"
#include "shoal/scheduler.h"
#include "shoal/store.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

/*  Messages taken from one socket before looking at the others, so a busy
    worker side cannot starve the API (and the other way round).          */
#define S_BATCH 256

/*  Longest ZeroMQ routing identity (libzmq allows 255 bytes).            */
#define S_MAX_IDENTITY 255

/*  Idempotency keys remembered; the oldest is forgotten past this.       */
#define S_MAX_IDEMPOTENCY_KEYS 100000

/*  Events gathered before they are handed to the hub in one lock; a big
    round (a fan-out of 100,000 tasks) goes out in several hand-overs, so
    the staging buffer stays this small.                                  */
#define S_STAGE_EVENTS 1024

/*  Jobs whose rendered params are kept (a direct-mapped cache).          */
#define S_PARAMS_CACHE 64

/*  Most jobs past their retention forgotten per tick: each costs its
    tasks' memory to free and three deletes in the store, so this bounds
    the pause (a backlog, after a long stop, goes over several ticks).    */
#define S_EVICT_PER_TICK 1000

/*  What an Idempotency-Key was first used for.                           */
typedef struct {
    uint64_t fingerprint;        /* hash of the request it came with      */
    char job_id[33];             /* the job that request made             */
    void *order;                 /* its handle in idempotency_order        */
} s_idempotent_t;

/*  One job's masked params, rendered once for its events.               */
typedef struct {
    char id[SHOAL_EVENT_JOB_MAX + 1]; /* the job                           */
    char *text;                  /* its params as JSON (owned), or NULL    */
} s_params_entry_t;

/*  A reply held until the writer has stored what it promises.           */
typedef struct {
    shoal_call_t *call;          /* the HTTP thread's call, to answer     */
    json_t *reply;               /* owned                                  */
    uint64_t ticket;             /* send once the writer is this far       */
    uint64_t watched;            /* a submission's own batch, 0: none      */
    char job_id[33];             /* the job it made                        */
    char *key;                   /* its idempotency key (owned), or NULL   */
} s_held_t;

/*  A worker event waiting for the end of the round.                      */
typedef struct {
    char *name;                  /* the worker's name (owned)              */
    char *text;                  /* its JSON (owned)                       */
} s_worker_event_t;

/*  A job forgotten past its retention, kept until the batch that deletes
    its rows is written: a resync puts only the jobs still in memory, so
    should that batch fail, the resync must delete it again.              */
typedef struct {
    char *job_id;
    uint64_t ticket;             /* the batch with its delete; 0: not yet
                                    handed to the writer                   */
} s_deleted_t;

struct shoal_loop {
    const shoal_defs_t *defs;    /* borrowed, read-only                    */
    char *data_dir;              /* shared volume root                     */
    shoal_scheduler_t *scheduler;
    shoal_store_t *store;        /* durable state while it is read back;
                                    then the writer's                      */
    shoal_writer_t *writer;      /* writes the store, NULL: memory only    */
    shoal_store_batch_t *batch;  /* this round's changes for the writer,
                                    NULL when out of memory                */
    bool resync;                 /* the store missed changes: put every job
                                    and task in a batch again              */
    int64_t resync_at;           /* not before this monotonic ms           */
    s_deleted_t *deleted;        /* forgotten jobs whose delete rows may
                                    not be on disk yet (s_on_evicted)      */
    size_t deleted_count;
    size_t deleted_cap;
    s_held_t *held;              /* replies waiting for the writer         */
    size_t held_count;
    size_t held_cap;
    uint64_t submitted;          /* set by s_op_submit: its batch's ticket */
    zsock_t *router;             /* workers connect here                   */
    zactor_t *auth;              /* ZAP handler checking CURVE clients     */
    shoal_mailbox_t *mailbox;    /* HTTP threads' calls                    */
    zhashx_t *idempotency;       /* key -> s_idempotent_t (owned)          */
    zlistx_t *idempotency_order; /* keys, oldest first, for eviction       */
    zhashx_t *key_of_job;        /* job id -> its key (owned copy): a job
                                    forgotten past its retention takes its
                                    key along                              */
    int64_t retain_ms;           /* ended jobs are forgotten this long
                                    after; 0: kept forever                 */
    char instance[17];           /* random id of this controller run       */
    int64_t wall_start;          /* epoch ms when the loop started         */
    int64_t mono_start;          /* monotonic ms at the same moment        */
    int64_t next_tick;           /* loop time of the next scheduler tick   */
    uint64_t received[SHOAL_MSG_COUNT]; /* worker messages, by command,   */
    uint64_t sent[SHOAL_MSG_COUNT];     /* for GET /metrics               */
    shoal_events_t *events;      /* what changed, for the event stream     */
    shoal_event_t *staged;       /* events of this round not yet handed to
                                    the hub (S_STAGE_EVENTS, made on first
                                    use)                                   */
    size_t staged_count;
    const shoal_job_t *open_job; /* job whose tasks the flush is reporting:
                                    its stage and job events follow them   */
    bool *stage_touched;         /* stages of open_job that changed        */
    s_params_entry_t params[S_PARAMS_CACHE]; /* recent jobs' params        */
    size_t stage_touched_cap;
    s_worker_event_t *workers;   /* worker events of this round, one per
                                    worker name (the latest wins)          */
    size_t worker_count;
    size_t worker_cap;
    zhashx_t *worker_names;      /* name -> connections with that name, so
                                    a worker is "gone" only when its last
                                    connection goes (a count, no values
                                    to free)                               */
    int64_t heartbeat_ms;        /* least heartbeat period (--heartbeat-ms);
                                    the scheduler picks the one in force   */
    char heartbeat[40];          /* our HEARTBEAT body, telling the period */
    size_t heartbeat_size;
    int64_t heartbeat_told;      /* the period that body tells             */
    char *wire;                  /* TASK bodies are written here, reused   */
    size_t wire_cap;
    char *view;                  /* job views as text (s_release), reused  */
    size_t view_cap;
};

/* ---- time and ids --------------------------------------------------- */

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Epoch milliseconds that never step: the wall clock at start plus
    monotonic time since, so heartbeat deadlines survive clock changes.  */
static int64_t
s_now (shoal_loop_t *self)
{
    return self->wall_start + (s_mono_ms () - self->mono_start);
}

static void
s_key_from_identity (const byte *identity, size_t size, char *key)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        key[2 * i] = digits[identity[i] >> 4];
        key[2 * i + 1] = digits[identity[i] & 15];
    }
    key[2 * size] = '\0';
}

static size_t
s_identity_from_key (const char *key, byte *identity)
{
    size_t size = strlen (key) / 2;
    for (size_t i = 0; i < size; i++) {
        unsigned hi = (unsigned) (isdigit (key[2 * i]) ? key[2 * i] - '0'
                                                       : key[2 * i] - 'a' + 10);
        unsigned lo = (unsigned) (isdigit (key[2 * i + 1])
                                      ? key[2 * i + 1] - '0'
                                      : key[2 * i + 1] - 'a' + 10);
        identity[i] = (byte) (hi << 4 | lo);
    }
    return size;
}

/* ---- sending to workers ------------------------------------------- */

/*  Sends [identity][command][body] to the worker with `key`. Returns 0,
    or -1 when the peer cannot be reached (the caller drops the worker). */
static int
s_send_text (shoal_loop_t *self, const char *key, shoal_msg_type_t type,
             const char *text, size_t size)
{
    byte identity[S_MAX_IDENTITY];
    size_t identity_size = s_identity_from_key (key, identity);
    void *socket = zsock_resolve (self->router);
    const char *command = shoal_msg_name (type);
    int rc = zmq_send (socket, identity, identity_size,
                       ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc >= 0)
        rc = zmq_send (socket, command, strlen (command),
                       ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc >= 0)
        rc = zmq_send (socket, text, size, ZMQ_DONTWAIT);
    if (rc < 0)
        return -1;
    self->sent[type]++;
    return 0;
}

/*  Checks `body` against the protocol and sends it (see s_send_text).    */
static int
s_send (shoal_loop_t *self, const char *key, shoal_msg_type_t type,
        json_t *body)
{
    shoal_error_t err;
    size_t size;
    char *text = shoal_msg_encode (type, body, &size, &err);
    if (!text) {
        shoal_error ("cannot encode %s: %s", shoal_msg_name (type),
                     err.message);
        return 0;
    }
    int rc = s_send_text (self, key, type, text, size);
    free (text);
    return rc;
}

static void
s_send_empty (shoal_loop_t *self, const char *key, shoal_msg_type_t type)
{
    json_t *body = json_object ();
    s_send (self, key, type, body);
    json_decref (body);
}

static void s_worker_event (shoal_loop_t *self, const shoal_worker_t *worker,
                            const char *state);
static void s_worker_down (shoal_loop_t *self, const shoal_worker_t *worker);

/*  Carries out what the scheduler asked for. A worker that cannot be
    reached is dropped, which may queue more actions: the loop goes on
    until the queue is empty.                                             */
static void
s_run_actions (shoal_loop_t *self)
{
    shoal_action_t action;
    while (shoal_scheduler_next_action (self->scheduler, &action)) {
        const char *key = action.worker ? shoal_worker_key (action.worker)
                                        : NULL;
        int rc = 0;
        switch (action.type) {
            case SHOAL_ACTION_DISPATCH: {
                /* Written straight into a reused buffer: no JSON tree. */
                size_t size = shoal_task_wire_text (action.task, &self->wire,
                                                    &self->wire_cap);
                if (size)
                    rc = s_send_text (self, key, SHOAL_MSG_TASK, self->wire,
                                      size);
                else
                    shoal_error ("out of memory writing a TASK");
                shoal_log_task (SHOAL_LOG_DEBUG, shoal_job_id (action.job),
                                shoal_task_id (action.task),
                                "attempt %u dispatched to worker %s",
                                action.attempt,
                                shoal_worker_name (action.worker));
                break;
            }
            case SHOAL_ACTION_CANCEL: {
                json_t *body = json_pack (
                    "{s:s, s:I, s:I}", "job", shoal_job_id (action.job),
                    "task", (json_int_t) shoal_task_id (action.task),
                    "attempt", (json_int_t) action.attempt);
                rc = s_send (self, key, SHOAL_MSG_CANCEL, body);
                json_decref (body);
                break;
            }
            case SHOAL_ACTION_HEARTBEAT: {
                /* Tells the period in force (workers adopt it); the body
                   is written again only when the period changes. */
                int64_t period = shoal_scheduler_heartbeat_ms (
                    self->scheduler);
                if (period != self->heartbeat_told) {
                    self->heartbeat_size = shoal_msg_heartbeat_text (
                        self->heartbeat, sizeof self->heartbeat, period);
                    self->heartbeat_told = period;
                }
                rc = s_send_text (self, key, SHOAL_MSG_HEARTBEAT,
                                  self->heartbeat, self->heartbeat_size);
                break;
            }
            case SHOAL_ACTION_WORKER_LOST:
                shoal_warn ("worker %s lost: its tasks run elsewhere",
                            shoal_worker_name (action.worker));
                s_worker_down (self, action.worker);
                break;
            case SHOAL_ACTION_JOB_ENDED: {
                const shoal_job_t *job = action.job;
                shoal_log_task (SHOAL_LOG_INFO, shoal_job_id (job), -1,
                                "job (%s) %s", shoal_job_class (job)->id,
                                shoal_job_state_name (shoal_job_state (job)));
                break;
            }
        }
        if (rc < 0) {
            shoal_warn ("worker %s unreachable (%s): dropping it",
                        shoal_worker_name (action.worker),
                        zmq_strerror (zmq_errno ()));
            /* A TASK that never left was not a run: no loss for it. */
            if (action.type == SHOAL_ACTION_DISPATCH)
                shoal_scheduler_unsent (self->scheduler, action.task,
                                        action.attempt, s_now (self));
            /* Its WORKER_LOST action says "gone". */
            shoal_scheduler_worker_gone (self->scheduler, key, true,
                                         s_now (self));
        }
    }
}

/* ---- events and the store: one walk of the changes per round --------- */

/*  Hands the staged events to the hub in one lock.                       */
static void
s_stage_publish (shoal_loop_t *self)
{
    if (self->staged_count == 0)
        return;
    if (!shoal_events_publish (self->events, self->staged, self->staged_count))
        shoal_warn ("event stream: out of memory, held events dropped");
    self->staged_count = 0;
}

/*  The next free staged record, zeroed; NULL when out of memory.         */
static shoal_event_t *
s_stage_next (shoal_loop_t *self)
{
    if (!self->staged) {
        self->staged = calloc (S_STAGE_EVENTS, sizeof *self->staged);
        if (!self->staged)
            return NULL;
    }
    if (self->staged_count == S_STAGE_EVENTS)
        s_stage_publish (self);
    return &self->staged[self->staged_count++];
}

/*  The job's masked params as JSON text, from a small cache: they never
    change, and a busy job changes every round. Borrowed until the next
    call; NULL when out of memory (then made per event).                  */
static s_params_entry_t *
s_params_slot (shoal_loop_t *self, const char *id)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const char *p = id; *p; p++)
        hash = (hash ^ (unsigned char) *p) * 1099511628211ULL;
    return &self->params[hash % S_PARAMS_CACHE];
}

static const char *
s_job_params (shoal_loop_t *self, const shoal_job_t *job)
{
    const char *id = shoal_job_id (job);
    s_params_entry_t *entry = s_params_slot (self, id);
    if (entry->text && streq (entry->id, id))
        return entry->text;
    free (entry->text);
    entry->text = shoal_event_job_params (job);
    snprintf (entry->id, sizeof entry->id, "%s", id);
    return entry->text;
}

/*  The stage and job events of the job whose tasks were just reported:
    they follow its task events, so the job event that shows the job ended
    is the last of its round. Records only: the HTTP threads render them. */
static void
s_close_job (shoal_loop_t *self)
{
    const shoal_job_t *job = self->open_job;
    if (!job)
        return;
    self->open_job = NULL;
    size_t count = shoal_job_class (job)->stage_count;
    for (size_t i = 0; i < count && i < self->stage_touched_cap; i++) {
        if (!self->stage_touched[i])
            continue;
        self->stage_touched[i] = false;
        shoal_event_t *event = s_stage_next (self);
        if (event)
            shoal_event_set_stage (event, job, (uint32_t) i);
    }
    shoal_event_t *event = s_stage_next (self);
    if (event)
        shoal_event_set_job (event, job, s_job_params (self, job));
}

static void
s_touch_stage (shoal_loop_t *self, size_t stage)
{
    if (stage >= self->stage_touched_cap) {
        size_t cap = stage + 8;
        bool *grown = realloc (self->stage_touched, cap * sizeof *grown);
        if (!grown)
            return;
        memset (grown + self->stage_touched_cap, 0,
                (cap - self->stage_touched_cap) * sizeof *grown);
        self->stage_touched = grown;
        self->stage_touched_cap = cap;
    }
    self->stage_touched[stage] = true;
}

static void
s_on_changed_job (const shoal_job_t *job, void *arg)
{
    shoal_loop_t *self = arg;
    /* The store needs the job's row only when its record changed, not
       with every change of its tasks (their rows carry those). */
    if (self->batch && shoal_job_record_changed (job))
        shoal_store_batch_put_job (self->batch, job);
    s_close_job (self);
    self->open_job = job;
    shoal_job_record_t record;
    shoal_job_record (job, &record);
    s_touch_stage (self, record.stage);
}

/*  A task's event: a fixed-size record, no JSON.                         */
static void
s_on_changed_task (const shoal_task_t *task, void *arg)
{
    shoal_loop_t *self = arg;
    /* A round's batch goes over whole: a fan-out reaches the store in
       one transaction, so a restart never sees part of a stage. */
    if (self->batch)
        shoal_store_batch_put_task (self->batch, task);
    s_touch_stage (self, shoal_task_stage (task));
    shoal_event_t *event = s_stage_next (self);
    if (event)
        shoal_event_set_task (event, task);
}

/*  A worker's state for the event stream, sent at the end of the round;
    a later event of the same worker in the round replaces it.            */
static void
s_worker_event (shoal_loop_t *self, const shoal_worker_t *worker,
                const char *state)
{
    if (!worker)
        return;
    json_t *view = shoal_worker_to_json (worker);
    json_object_set_new (view, "state", json_string (state));
    char *text = json_dumps (view, JSON_COMPACT);
    json_decref (view);
    if (!text)
        return;
    const char *name = shoal_worker_name (worker);
    for (size_t i = 0; i < self->worker_count; i++)
        if (streq (self->workers[i].name, name)) {
            free (self->workers[i].text);
            self->workers[i].text = text;
            return;
        }
    if (self->worker_count == self->worker_cap) {
        size_t cap = self->worker_cap ? self->worker_cap * 2 : 8;
        s_worker_event_t *grown = realloc (self->workers, cap * sizeof *grown);
        if (!grown) {
            free (text);
            return;
        }
        self->workers = grown;
        self->worker_cap = cap;
    }
    self->workers[self->worker_count].name = strdup (name);
    self->workers[self->worker_count].text = text;
    self->worker_count++;
}

/*  Another connection under `worker`'s name: counted, so that a worker
    that reconnected before its old connection was found lost does not
    look gone.                                                            */
static void
s_worker_up (shoal_loop_t *self, const char *name)
{
    if (!name)
        return;
    uintptr_t count = (uintptr_t) zhashx_lookup (self->worker_names, name);
    zhashx_update (self->worker_names, name, (void *) (count + 1));
}

/*  A connection of `worker` went: "gone" once no other connection has its
    name.                                                                 */
static void
s_worker_down (shoal_loop_t *self, const shoal_worker_t *worker)
{
    if (!worker)
        return;
    const char *name = shoal_worker_name (worker);
    uintptr_t count = (uintptr_t) zhashx_lookup (self->worker_names, name);
    if (count > 1) {
        zhashx_update (self->worker_names, name, (void *) (count - 1));
        return;
    }
    zhashx_delete (self->worker_names, name);
    s_worker_event (self, worker, "gone");
}

static void
s_workers_publish (shoal_loop_t *self)
{
    for (size_t i = 0; i < self->worker_count; i++) {
        shoal_event_t *event = s_stage_next (self);
        if (event) {
            event->type = SHOAL_EVENT_WORKER;
            event->text = self->workers[i].text;
        }
        else
            free (self->workers[i].text);
        free (self->workers[i].name);
    }
    self->worker_count = 0;
}

/*  Takes what changed since the last flush to the store's writer (one
    batch, with the idempotency `key` for the job `key_job` when not NULL)
    and to the event hub. With a `key_job` the batch is watched, and
    self->submitted is its ticket: the reply waits for it (s_hold).
    Returns 0, or -1 when the changes could not be handed to the writer
    (out of memory: logged, written again later). Events go out either
    way.                                                                   */
/*  Lets go of the forgotten jobs whose delete rows are on disk: those of
    the batches up to `written`, when no write failed since.              */
static void
s_deleted_prune (shoal_loop_t *self, uint64_t written)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->deleted_count; i++) {
        s_deleted_t *entry = &self->deleted[i];
        if (entry->ticket && entry->ticket <= written)
            free (entry->job_id);
        else
            self->deleted[kept++] = *entry;
    }
    self->deleted_count = kept;
}

/*  Puts the delete rows of every forgotten job not yet known to be on
    disk into the batch again (a resync).                                 */
static void
s_deleted_put_all (shoal_loop_t *self)
{
    for (size_t i = 0; i < self->deleted_count; i++) {
        shoal_store_batch_delete_job (self->batch, self->deleted[i].job_id);
        self->deleted[i].ticket = 0;
    }
}

static int
s_flush (shoal_loop_t *self, const char *key, uint64_t fingerprint,
         const char *key_job)
{
    if (self->writer) {
        /* `written` first: a failed write is flagged before its ticket
           counts as written, so a delete is let go only once a write
           holding it is known to have succeeded. */
        uint64_t written = shoal_writer_written (self->writer);
        if (shoal_writer_take_resync (self->writer))
            self->resync = true;
        if (!self->resync)
            s_deleted_prune (self, written);
    }
    bool resync = self->resync && s_mono_ms () >= self->resync_at;
    if (!key && !resync && !self->worker_count
        && !shoal_scheduler_changed (self->scheduler)
        && !(self->batch && shoal_store_batch_rows (self->batch)))
        return 0;   /* (rows already in the batch: forgotten jobs) */
    if (self->writer && !self->batch)
        self->batch = shoal_store_batch_new ();
    if (self->writer && resync && self->batch) {
        /* A write failed, and what it held is gone from the change lists:
           everything again, at most once a second while writes fail. */
        shoal_store_batch_put_all (self->batch, self->scheduler);
        s_deleted_put_all (self);
        self->resync = false;
        self->resync_at = s_mono_ms () + 1000;
    }
    shoal_scheduler_flush (self->scheduler, s_on_changed_job,
                           s_on_changed_task, self);
    s_close_job (self);
    int rc = 0;
    if (self->writer) {
        if (!self->batch) {
            shoal_error ("out of memory: the state store misses changes");
            self->resync = true;
            rc = -1;
        }
        else {
            if (key)
                shoal_store_batch_put_key (self->batch, key, fingerprint,
                                           key_job);
            uint64_t ticket = shoal_writer_submit (self->writer,
                                                   &self->batch,
                                                   key_job != NULL);
            if (key_job)
                self->submitted = ticket;
            for (size_t i = 0; i < self->deleted_count; i++)
                if (!self->deleted[i].ticket)
                    self->deleted[i].ticket = ticket;
        }
    }
    s_workers_publish (self);
    s_stage_publish (self);
    return rc;
}

/* ---- worker messages ------------------------------------------------- */

static shoal_result_status_t
s_result_status (const char *text, bool *known)
{
    *known = true;
    if (streq (text, SHOAL_STATUS_EXITED))
        return SHOAL_RESULT_EXITED;
    if (streq (text, SHOAL_STATUS_SIGNALED))
        return SHOAL_RESULT_SIGNALED;
    if (streq (text, SHOAL_STATUS_CANCELED))
        return SHOAL_RESULT_CANCELED;
    if (streq (text, SHOAL_STATUS_REFUSED))
        return SHOAL_RESULT_REFUSED;
    if (streq (text, SHOAL_STATUS_TIMEOUT))
        return SHOAL_RESULT_TIMEOUT;
    *known = streq (text, SHOAL_STATUS_ERROR);
    return SHOAL_RESULT_ERROR;
}

static void s_apply_result (shoal_loop_t *self, const char *key,
                            const char *job_id, long long task,
                            long long attempt, const char *status,
                            shoal_result_t *result, int64_t now);

static void
s_on_result (shoal_loop_t *self, const char *key, json_t *body, int64_t now)
{
    shoal_result_t result = {
        .exit_code = (int) json_integer_value (json_object_get (body,
                                                                "exit_code")),
        .signal = (int) json_integer_value (json_object_get (body, "signal")),
        .error = json_string_value (json_object_get (body, "error")),
        .duration_ms = json_integer_value (json_object_get (body,
                                                            "duration_ms")),
        .spawn = json_object_get (body, "spawn"),
    };
    s_apply_result (self, key,
                    json_string_value (json_object_get (body, "job")),
                    json_integer_value (json_object_get (body, "task")),
                    json_integer_value (json_object_get (body, "attempt")),
                    json_string_value (json_object_get (body, "status")),
                    &result, now);
}

/*  The same from a RESULT read by the fast path, without jansson.        */
static void
s_on_result_wire (shoal_loop_t *self, const char *key,
                  const shoal_result_wire_t *wire, int64_t now)
{
    shoal_result_t result = {
        .exit_code = (int) wire->exit_code,
        .signal = (int) wire->signal,
        .error = wire->has_error ? wire->error : NULL,
        .duration_ms = wire->duration_ms,
        .spawn_text = wire->spawn,
        .spawn_size = wire->spawn_size,
    };
    s_apply_result (self, key, wire->job, wire->task, wire->attempt,
                    wire->status, &result, now);
}

static void
s_apply_result (shoal_loop_t *self, const char *key, const char *job_id,
                long long task, long long attempt, const char *status,
                shoal_result_t *result_in, int64_t now)
{
    bool known;
    shoal_result_t result = *result_in;
    result.status = s_result_status (status, &known);
    if (!known)
        result.error = "worker sent an unknown result status";
    if (task > UINT32_MAX || attempt > UINT32_MAX)
        return;
    shoal_error_t err;
    int rc = shoal_scheduler_result (self->scheduler, key, job_id,
                                     (uint32_t) task, (uint32_t) attempt,
                                     &result, now, &err);
    if (rc == SHOAL_ENOTFOUND && streq (err.field, "worker"))
        s_send_empty (self, key, SHOAL_MSG_RECONNECT);
    else if (rc)
        shoal_log_task (SHOAL_LOG_INFO, job_id, task, "ignored: %s",
                        err.message);
    else
        shoal_log_task (SHOAL_LOG_DEBUG, job_id, task,
                        "attempt %lld finished: %s", (long long) attempt,
                        known ? status : "unknown status");
}

/*  HEARTBEAT and RESULT, the messages every worker sends all the time,
    read without jansson when they look as workers write them. Returns 1
    when the message needs the full, checking decoder instead.            */
static int
s_on_hot_message (shoal_loop_t *self, const char *key, int type,
                  const void *body, size_t size, int64_t now)
{
    bool draining = false;
    shoal_result_wire_t *wire = NULL;
    shoal_result_wire_t result;
    if (type == SHOAL_MSG_HEARTBEAT) {
        if (shoal_msg_heartbeat_fast (body, size, &draining))
            return 1;
    }
    else if (type == SHOAL_MSG_RESULT) {
        if (shoal_msg_result_fast (body, size, &result))
            return 1;
        wire = &result;
    }
    else
        return 1;
    shoal_worker_t *worker = shoal_scheduler_worker_seen (self->scheduler,
                                                          key, now);
    if (!worker)
        s_send_text (self, key, SHOAL_MSG_RECONNECT, "{}", 2);
    else if (wire)
        s_on_result_wire (self, key, wire, now);
    else if (draining && !shoal_worker_draining (worker)) {
        shoal_scheduler_worker_drain (self->scheduler, key);
        s_worker_event (self, worker, "draining");
    }
    s_run_actions (self);
    return 0;
}

static void
s_on_worker_message (shoal_loop_t *self, zmq_msg_t frames[3])
{
    int64_t now = s_now (self);
    zmq_msg_t *identity = &frames[0];
    zmq_msg_t *command = &frames[1];
    zmq_msg_t *body_frame = &frames[2];
    if (zmq_msg_size (identity) == 0
        || zmq_msg_size (identity) > S_MAX_IDENTITY)
        return;
    char key[2 * S_MAX_IDENTITY + 1];
    s_key_from_identity (zmq_msg_data (identity), zmq_msg_size (identity),
                         key);
    int command_type = shoal_msg_command (zmq_msg_data (command),
                                          zmq_msg_size (command));
    if (command_type >= 0 && command_type < SHOAL_MSG_COUNT)
        self->received[command_type]++;
    if (s_on_hot_message (self, key, command_type,
                          zmq_msg_data (body_frame), zmq_msg_size (body_frame),
                          now) == 0)
        return;

    shoal_msg_type_t type;
    json_t *body;
    shoal_error_t err;
    if (shoal_msg_decode (zmq_msg_data (command), zmq_msg_size (command),
                          zmq_msg_data (body_frame), zmq_msg_size (body_frame),
                          &type, &body, &err)) {
        shoal_warn ("dropped a message from peer %s: %s", key, err.message);
        return;
    }
    shoal_worker_t *worker = NULL;
    if (type == SHOAL_MSG_HELLO) {
        const char *name = json_string_value (json_object_get (body, "worker"));
        const char *host = json_string_value (json_object_get (body, "host"));
        uint32_t slots = (uint32_t) json_integer_value (
            json_object_get (body, "slots"));
        uint32_t queue = (uint32_t) json_integer_value (
            json_object_get (body, "queue"));
        json_int_t running = json_integer_value (json_object_get (body,
                                                                  "running"));
        if (running > slots + queue)
            running = slots + queue;
        bool known = shoal_scheduler_worker_seen (self->scheduler, key, now);
        if (shoal_scheduler_worker_hello (self->scheduler, key, name, host,
                                          slots, (uint32_t) running, now)) {
            if (!known)
                s_worker_up (self, name);
            /* Credit: its slots plus the tasks it queues to start at once
               when a slot frees. */
            shoal_scheduler_worker_queue (self->scheduler, key, queue);
            /* The same worker process on a new connection: what it still
               holds moves over, the old connection is dropped. */
            const char *old = shoal_scheduler_worker_instance (
                self->scheduler, key,
                json_string_value (json_object_get (body, "instance")));
            char old_key[2 * S_MAX_IDENTITY + 1] = "";
            if (old)
                snprintf (old_key, sizeof old_key, "%s", old);
            size_t adopted = 0;
            size_t index;
            json_t *held;
            json_array_foreach (json_object_get (body, "tasks"), index, held) {
                const char *job = json_string_value (json_object_get (held,
                                                                      "job"));
                json_int_t task = json_integer_value (json_object_get (held,
                                                                       "task"));
                json_int_t attempt = json_integer_value (
                    json_object_get (held, "attempt"));
                if (job && task >= 0 && task <= UINT32_MAX && attempt >= 0
                    && attempt <= UINT32_MAX
                    && shoal_scheduler_adopt (self->scheduler, key, job,
                                              (uint32_t) task,
                                              (uint32_t) attempt, now))
                    adopted++;
            }
            if (*old_key) {
                shoal_info ("worker %s reconnected", name);
                s_worker_down (self, shoal_scheduler_worker_seen (
                                         self->scheduler, old_key, now));
                shoal_scheduler_worker_gone (self->scheduler, old_key, false,
                                             now);
            }
            shoal_info ("worker %s on %s joined with %u slots%s", name, host,
                        slots, adopted ? ", keeping its tasks" : "");
            if (adopted)
                shoal_info ("adopted %zu running tasks from worker %s",
                            adopted, name);
            worker = shoal_scheduler_worker_seen (self->scheduler, key, now);
            s_worker_event (self, worker,
                            worker && shoal_worker_draining (worker)
                                ? "draining" : "connected");
            json_t *welcome = json_pack ("{s:s, s:i}", "controller",
                                         self->instance, "heartbeat_ms",
                                         (int) shoal_scheduler_heartbeat_ms (
                                             self->scheduler));
            s_send (self, key, SHOAL_MSG_WELCOME, welcome);
            json_decref (welcome);
        }
    }
    else if (!(worker = shoal_scheduler_worker_seen (self->scheduler, key,
                                                     now))) {
        /* A worker we do not know (we restarted, or dropped it). */
        if (type != SHOAL_MSG_BYE)
            s_send_empty (self, key, SHOAL_MSG_RECONNECT);
    }
    else if (type == SHOAL_MSG_RESULT)
        s_on_result (self, key, body, now);
    else if (type == SHOAL_MSG_BYE) {
        shoal_info ("worker %s said goodbye", shoal_worker_name (worker));
        s_worker_down (self, worker);
        shoal_scheduler_worker_gone (self->scheduler, key, false, now);
    }
    else if (type == SHOAL_MSG_HEARTBEAT) {
        if (json_is_true (json_object_get (body, "draining"))
            && !shoal_worker_draining (worker)) {
            shoal_scheduler_worker_drain (self->scheduler, key);
            s_worker_event (self, worker, "draining");
        }
    }
    else
        shoal_warn ("dropped %s from a worker: not a worker command",
                    shoal_msg_name (type));
    json_decref (body);
    s_run_actions (self);
}

/* ---- API requests ------------------------------------------------- */

static json_t *
s_reply (int status, json_t *body)
{
    return json_pack ("{s:i, s:o}", "status", status, "body",
                      body ? body : json_null ());
}

/*  Sets `reply`'s body to `job`'s view as text ("body_text"), which the
    HTTP thread sends as it is: building the JSON tree, for the handler
    to print and free, took a sixth of the loop's time per submission.
    Out of memory for the text, the tree it is. Returns `reply`.          */
static json_t *
s_put_job_view (shoal_loop_t *self, json_t *reply, const shoal_job_t *job)
{
    size_t size = shoal_job_view_text (job, &self->view, &self->view_cap);
    if (size)
        json_object_set_new (reply, "body_text",
                             json_stringn_nocheck (self->view, size));
    else
        json_object_set_new (reply, "body", shoal_job_to_json (job));
    return reply;
}

static json_t *
s_problem (int status, const char *title, const char *detail,
           const char *field)
{
    json_t *problem = json_pack ("{s:s, s:s, s:i, s:s}", "type", "about:blank",
                                 "title", title, "status", status, "detail",
                                 detail);
    if (field && *field)
        json_object_set_new (problem, "field", json_string (field));
    json_t *reply = s_reply (status, problem);
    json_object_set_new (reply, "problem", json_true ());
    return reply;
}

static json_t *
s_job_not_found (const char *id)
{
    char detail[200];
    snprintf (detail, sizeof detail, "there is no job '%.100s'", id);
    return s_problem (404, "Job not found", detail, "id");
}

/*  FNV-1a over the canonical text of a submission: the same job class,
    params (headers included) and start flag give the same value.        */
static uint64_t
s_fingerprint (json_t *request)
{
    json_t *canonical = json_pack ("{s:O, s:O, s:O}", "job",
                                   json_object_get (request, "job"), "params",
                                   json_object_get (request, "params"),
                                   "start", json_object_get (request,
                                                             "start"));
    char *text = json_dumps (canonical, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (canonical);
    uint64_t hash = 14695981039346656037ULL;
    for (const char *p = text ? text : ""; *p; p++)
        hash = (hash ^ (unsigned char) *p) * 1099511628211ULL;
    free (text);
    return hash;
}

/*  Forgets `key` in memory (the caller sees to the store). O(1).        */
static void
s_drop_key (shoal_loop_t *self, const char *key)
{
    s_idempotent_t *entry = zhashx_lookup (self->idempotency, key);
    if (!entry)
        return;
    char *job_key = zhashx_lookup (self->key_of_job, entry->job_id);
    if (job_key && streq (job_key, key))
        zhashx_delete (self->key_of_job, entry->job_id);
    void *order = entry->order;
    zhashx_delete (self->idempotency, key);   /* frees entry; `key` may be
                                                 the order list's copy   */
    if (order)
        zlistx_delete (self->idempotency_order, order);
}

static void
s_remember_key (shoal_loop_t *self, const char *key, uint64_t fingerprint,
                const char *job_id)
{
    s_drop_key (self, key);   /* a key whose job was not stored, reused */
    if (zlistx_size (self->idempotency_order) >= S_MAX_IDEMPOTENCY_KEYS) {
        char *oldest = zlistx_first (self->idempotency_order);
        if (self->batch)
            shoal_store_batch_forget_key (self->batch, oldest);
        s_drop_key (self, oldest);
    }
    s_idempotent_t *entry = calloc (1, sizeof *entry);
    char *copy = strdup (key);
    if (!entry || !copy) {
        free (entry);
        free (copy);
        return;
    }
    entry->fingerprint = fingerprint;
    snprintf (entry->job_id, sizeof entry->job_id, "%s", job_id);
    entry->order = zlistx_add_end (self->idempotency_order, copy);
    if (!entry->order) {
        free (entry);
        free (copy);
        return;
    }
    zhashx_insert (self->idempotency, key, entry);
    char *job_key = strdup (key);
    if (job_key)
        zhashx_update (self->key_of_job, job_id, job_key);
}

/*  The view of `job` a writing op (submit, start, cancel, retry) answers
    with, as a reply with `status`. With a store, such an answer is held
    until its change is written, and its view rendered when it goes out
    (s_release), as the job may move on meanwhile: here it only names the
    job. Without one, the view goes now, as text.                          */
static json_t *
s_job_reply (shoal_loop_t *self, int status, shoal_job_t *job)
{
    if (self->writer)
        return s_reply (status, json_pack ("{s:s}", "id", shoal_job_id (job)));
    return s_put_job_view (self, s_reply (status, NULL), job);
}

static json_t *
s_job_created (shoal_loop_t *self, shoal_job_t *job, bool replayed)
{
    json_t *reply = s_job_reply (self, 201, job);
    json_object_set_new (reply, "location",
                         json_sprintf ("/api/v1/jobs/%s", shoal_job_id (job)));
    if (replayed)
        json_object_set_new (reply, "replayed", json_true ());
    return reply;
}

static json_t *
s_op_submit (shoal_loop_t *self, json_t *request)
{
    const char *class_id = json_string_value (json_object_get (request, "job"));
    const shoal_job_class_t *job_class
        = shoal_defs_job_class (self->defs, class_id);
    if (!job_class)
        return s_problem (404, "Unknown job", "no such job class", "job");
    /* A retried request with the same key gets the job its first try
       made; the same key on another request is a client bug. */
    const char *key = json_string_value (json_object_get (request,
                                                          "idempotency_key"));
    uint64_t fingerprint = key ? s_fingerprint (request) : 0;
    if (key) {
        s_idempotent_t *seen = zhashx_lookup (self->idempotency, key);
        if (seen && seen->fingerprint != fingerprint)
            return s_problem (422, "Idempotency key reused",
                              "this Idempotency-Key was used with another "
                              "request", "header Idempotency-Key");
        shoal_job_t *job = seen ? shoal_scheduler_job (self->scheduler,
                                                       seen->job_id)
                                : NULL;
        if (job)
            return s_job_created (self, job, true);
    }
    /* The HTTP thread made the id and <data-dir>/jobs/<id>/ (its logs/ is
       the workers' to make, mkdir -p before a task's first log). */
    const char *id = json_string_value (json_object_get (request, "id"));
    if (!id || strlen (id) != 2 * SHOAL_JOB_ID_BYTES
        || strspn (id, "0123456789abcdef") != strlen (id))
        return s_problem (500, "Internal error",
                          "a submission reached the loop without its job "
                          "id", "id");
    json_t *params = json_object_get (request, "params");
    bool start = json_is_true (json_object_get (request, "start"));
    shoal_error_t err;
    shoal_job_t *job = shoal_scheduler_submit (
        self->scheduler, id, job_class, json_incref (params), start,
        s_now (self), &err);
    if (!job)
        return s_problem (shoal_error_http_status (err.code),
                          "Job not accepted", err.message, err.field);
    /* From here a job of this id exists, whatever the answer: the HTTP
       thread keeps its directory (job_made). 201 promises the job
       survives a crash: the reply is held until the writer has stored
       this batch (s_hold). */
    json_t *reply;
    if (s_flush (self, key, fingerprint, id)) {
        shoal_scheduler_cancel (self->scheduler, id, s_now (self), NULL);
        reply = s_problem (503, "State store unavailable",
                           "the job could not be stored; it was not "
                           "accepted", NULL);
    }
    else {
        shoal_log_task (SHOAL_LOG_INFO, id, -1, "job (%s) submitted%s",
                        class_id, start ? " and started" : "");
        if (key)
            s_remember_key (self, key, fingerprint, id);
        reply = s_job_created (self, job, false);
    }
    json_object_set_new (reply, "job_made", json_true ());
    return reply;
}

static json_t *
s_op_start (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    shoal_error_t err;
    int rc = shoal_scheduler_start (self->scheduler, id, s_now (self), &err);
    if (rc == SHOAL_ENOTFOUND)
        return s_job_not_found (id);
    if (rc)
        return s_problem (409, "Job already started", err.message, "state");
    s_flush (self, NULL, 0, NULL);
    shoal_log_task (SHOAL_LOG_INFO, id, -1, "job started");
    return s_job_reply (self, 200, shoal_scheduler_job (self->scheduler, id));
}

static json_t *
s_op_cancel (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    shoal_error_t err;
    int rc = shoal_scheduler_cancel (self->scheduler, id, s_now (self), &err);
    if (rc == SHOAL_ENOTFOUND)
        return s_job_not_found (id);
    if (rc)
        return s_problem (409, "Job already ended", err.message, "state");
    s_flush (self, NULL, 0, NULL);
    shoal_log_task (SHOAL_LOG_INFO, id, -1, "job canceled on request");
    return s_job_reply (self, 200, shoal_scheduler_job (self->scheduler, id));
}

static json_t *
s_op_retry (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    shoal_error_t err;
    int rc = shoal_scheduler_retry (self->scheduler, id, s_now (self), &err);
    if (rc == SHOAL_ENOTFOUND)
        return s_job_not_found (id);
    if (rc)
        return s_problem (409, "Job not failed", err.message, "state");
    s_flush (self, NULL, 0, NULL);
    shoal_log_task (SHOAL_LOG_INFO, id, -1,
                    "job retried from its failed stage");
    return s_job_reply (self, 200, shoal_scheduler_job (self->scheduler, id));
}

static json_t *
s_op_job (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    shoal_job_t *job = shoal_scheduler_job (self->scheduler, id);
    return job ? s_put_job_view (self, s_reply (200, NULL), job)
               : s_job_not_found (id);
}

static json_t *
s_op_jobs (shoal_loop_t *self, json_t *request)
{
    json_int_t state = json_integer_value (json_object_get (request, "state"));
    json_int_t limit = json_integer_value (json_object_get (request, "limit"));
    json_int_t before = json_integer_value (json_object_get (request,
                                                             "before"));
    if (!json_object_get (request, "state"))
        state = -1;
    return s_reply (200, shoal_scheduler_jobs_to_json (
                             self->scheduler, (int) state, (size_t) limit,
                             (uint64_t) before));
}

static json_t *
s_op_tasks (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    shoal_job_t *job = shoal_scheduler_job (self->scheduler, id);
    if (!job)
        return s_job_not_found (id);
    /* The HTTP thread checked the numbers; only the job knows its stages. */
    json_t *state_value = json_object_get (request, "state");
    const char *stage_name = json_string_value (json_object_get (request,
                                                                 "stage"));
    int stage = -1;
    if (stage_name && (stage = shoal_job_stage_parse (job, stage_name)) < 0)
        return s_problem (400, "Invalid query", "stage must be the name or "
                          "the index of one of the job's stages", "stage");
    json_int_t limit = json_integer_value (json_object_get (request, "limit"));
    json_int_t from = json_integer_value (json_object_get (request, "from"));
    return s_reply (200, shoal_job_tasks_page_to_json (
                             job, state_value ? (int) json_integer_value (
                                                    state_value)
                                              : -1,
                             stage, (uint32_t) from, (size_t) limit));
}

/*  Where a task's log is: the HTTP thread reads the file itself so a big
    log never passes through this loop.                                   */
static json_t *
s_op_task_log (shoal_loop_t *self, json_t *request)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    json_int_t task_id = json_integer_value (json_object_get (request, "task"));
    shoal_job_t *job = shoal_scheduler_job (self->scheduler, id);
    if (!job)
        return s_job_not_found (id);
    shoal_task_t *task = task_id >= 0 && task_id <= UINT32_MAX
                             ? shoal_job_task (job, (uint32_t) task_id)
                             : NULL;
    if (!task)
        return s_problem (404, "Task not found", "the job has no such task",
                          "task_id");
    /* The HTTP thread walks this path one component at a time and
       follows no symbolic link: a task owns its job directory and could
       plant one to point the log route elsewhere. */
    char path[4096];
    snprintf (path, sizeof path, "%s/jobs", self->data_dir);
    char file[32];
    snprintf (file, sizeof file, "%u.log", shoal_task_id (task));
    return s_reply (200, json_pack ("{s:s, s:s, s:s, s:i}", "jobs_dir", path,
                                    "job", id, "file", file, "attempts",
                                    (int) shoal_task_attempt (task)));
}

static json_t *
s_op_workers (shoal_loop_t *self, json_t *request)
{
    return s_reply (200, shoal_scheduler_workers_to_json (self->scheduler));
}

static json_t *
s_histogram_json (const shoal_histogram_t *histogram)
{
    json_t *buckets = json_array ();
    for (size_t i = 0; i < SHOAL_HISTOGRAM_BUCKETS; i++)
        json_array_append_new (buckets,
                               json_integer ((json_int_t) histogram->buckets[i]));
    return json_pack ("{s:o, s:f, s:I}", "buckets", buckets, "sum",
                      histogram->sum, "count", (json_int_t) histogram->count);
}

/*  The scheduler's counters and gauges, for GET /metrics.                */
static json_t *
s_op_metrics (shoal_loop_t *self, json_t *request)
{
    shoal_scheduler_stats_t stats;
    shoal_scheduler_stats (self->scheduler, &stats);
    json_t *jobs = json_object ();
    for (int i = SHOAL_JOB_SUCCEEDED; i < SHOAL_JOB_STATE_COUNT; i++)
        json_object_set_new (jobs, shoal_job_state_name (i),
                             json_integer ((json_int_t) stats.jobs_finished[i]));
    json_t *tasks = json_object ();
    for (int i = SHOAL_TASK_SUCCEEDED; i < SHOAL_TASK_STATE_COUNT; i++)
        json_object_set_new (tasks, shoal_task_state_name (i),
                             json_integer ((json_int_t) stats.tasks_finished[i]));
    /* Only the commands seen so far: each direction has its own. */
    json_t *received = json_object ();
    json_t *sent = json_object ();
    for (int i = 0; i < SHOAL_MSG_COUNT; i++) {
        if (self->received[i])
            json_object_set_new (received, shoal_msg_name (i),
                                 json_integer ((json_int_t) self->received[i]));
        if (self->sent[i])
            json_object_set_new (sent, shoal_msg_name (i),
                                 json_integer ((json_int_t) self->sent[i]));
    }
    shoal_store_counts_t store = { 0 };
    if (self->writer)
        shoal_writer_counts (self->writer, &store);
    return s_reply (200, json_pack (
        "{s:I, s:o, s:I, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:I, s:I, s:I, s:I, s:{s:o, s:o}}",
        "jobs_submitted", (json_int_t) stats.jobs_submitted,
        "jobs_finished", jobs,
        "jobs_forgotten", (json_int_t) stats.jobs_evicted,
        "tasks_finished", tasks,
        "task_duration", s_histogram_json (&stats.task_duration),
        "queue_wait", s_histogram_json (&stats.queue_wait),
        "queue_depth", (json_int_t) stats.queue_depth,
        "tasks_running", (json_int_t) stats.tasks_running,
        "workers", (json_int_t) stats.workers,
        "slots", (json_int_t) stats.slots,
        "busy", (json_int_t) stats.busy,
        "jobs_active", (json_int_t) stats.jobs_active,
        "store_waiting_rows",
        (json_int_t) (self->writer ? shoal_writer_waiting_rows (self->writer)
                                   : 0),
        "store_rows_written", (json_int_t) store.written,
        "store_rows_replaced", (json_int_t) store.replaced,
        "store_checkpoints", (json_int_t) store.checkpoints,
        "heartbeat_ms",
        (json_int_t) shoal_scheduler_heartbeat_ms (self->scheduler),
        "worker_messages", "received", received, "sent", sent));
}

static json_t *
s_op_ping (shoal_loop_t *self, json_t *request)
{
    return s_reply (200, json_pack ("{s:s}", "status", "ready"));
}

/*  The definitions loaded now, or with "version" those of that version,
    when jobs read back at start were submitted under them; each with its
    version (null without a state store).                                 */
static json_t *
s_op_definitions (shoal_loop_t *self, json_t *request)
{
    json_t *asked = json_object_get (request, "version");
    uint32_t version = asked ? (uint32_t) json_integer_value (asked)
                             : shoal_scheduler_definitions_version (
                                   self->scheduler);
    const shoal_defs_t *defs = !asked ? self->defs
                               : version ? shoal_scheduler_definitions (
                                               self->scheduler, version)
                                         : NULL;
    if (!defs) {
        char detail[160];
        snprintf (detail, sizeof detail, "no definitions of version %" PRIu32
                  " are loaded or held for a job", version);
        return s_problem (404, "Definitions not found", detail, "version");
    }
    json_t *body = shoal_defs_to_json (defs);
    json_object_set_new (body, "version",
                         version ? json_integer (version) : json_null ());
    return s_reply (200, body);
}

typedef json_t *(s_op_fn) (shoal_loop_t *self, json_t *request);

/*  `snapshot`: the answer is a view a client may pair with the event
    stream, so what changed before it is flushed first and the reply's
    event_id is the last event whose change the view shows. The writing
    ops flush before they answer anyway. `durable`: the answer promises
    the change is stored, so it is held until the writer has written
    every batch handed over so far.                                       */
static const struct {
    const char *name;
    s_op_fn *fn;
    bool snapshot;
    bool durable;
} s_ops[] = {
    { "submit", s_op_submit, false, true },
    { "start", s_op_start, false, true },
    { "cancel", s_op_cancel, false, true },
    { "retry", s_op_retry, false, true },
    { "job", s_op_job, true, false },
    { "jobs", s_op_jobs, true, false },
    { "tasks", s_op_tasks, true, false },
    { "task_log", s_op_task_log, false, false },
    { "workers", s_op_workers, true, false },
    { "ping", s_op_ping, false, false },
    { "definitions", s_op_definitions, false, false },
    { "metrics", s_op_metrics, false, false },
};

/*  Forgets an idempotency key whose job was not stored.                  */
static void
s_forget_key (shoal_loop_t *self, const char *key)
{
    s_drop_key (self, key);
}

/*  Sends a held reply whose batches are written. A submission whose own
    batch failed is not accepted after all: its job is canceled, its key
    forgotten, and the client gets 503 instead of 201.                    */
static void
s_release (shoal_loop_t *self, s_held_t *held)
{
    json_t *reply = held->reply;
    if (held->watched && shoal_writer_failed (self->writer, held->watched)) {
        shoal_scheduler_cancel (self->scheduler, held->job_id, s_now (self),
                                NULL);
        if (held->key)
            s_forget_key (self, held->key);
        shoal_log_task (SHOAL_LOG_WARN, held->job_id, -1,
                        "job not stored: canceled, the client is told 503");
        json_decref (reply);
        reply = s_problem (503, "State store unavailable",
                           "the job could not be stored; it was not "
                           "accepted", NULL);
        /* Canceled, but it exists: the HTTP thread keeps its directory. */
        json_object_set_new (reply, "job_made", json_true ());
    }
    else if (held->job_id[0]) {
        /* The view is rendered now (s_job_reply), as the job may have
           moved on while the reply waited (a short job can end before
           its 201 goes out): it is never older than the events sent
           before it. A job already forgotten (it ended longer ago than
           --retain-finished while a slow disk held its answer) keeps
           the body that names it. */
        shoal_job_t *job = shoal_scheduler_job (self->scheduler,
                                                held->job_id);
        if (job)
            s_put_job_view (self, reply, job);
        json_object_set_new (reply, "event_id", json_integer (
            (json_int_t) shoal_events_last (self->events)));
    }
    shoal_call_answer (&held->call, reply);
    free (held->key);
}

/*  Sends every held reply the writer has caught up with, in order.        */
static void
s_release_written (shoal_loop_t *self)
{
    if (!self->held_count)
        return;
    uint64_t written = shoal_writer_written (self->writer);
    size_t kept = 0;
    for (size_t i = 0; i < self->held_count; i++) {
        if (self->held[i].ticket <= written)
            s_release (self, &self->held[i]);
        else
            self->held[kept++] = self->held[i];
    }
    self->held_count = kept;
    s_run_actions (self);   /* a canceled job sends CANCELs */
}

/*  Holds `reply` until the writer has written `ticket`; sends it at once
    when it has, or when there is no room to hold it (it is logged).      */
static void
s_hold (shoal_loop_t *self, shoal_call_t **call_p, json_t *reply,
        uint64_t ticket, uint64_t watched, const char *job_id,
        const char *key)
{
    s_held_t held = { .call = *call_p, .reply = reply,
                      .ticket = ticket, .watched = watched,
                      .key = key ? strdup (key) : NULL };
    *call_p = NULL;
    snprintf (held.job_id, sizeof held.job_id, "%s", job_id ? job_id : "");
    if (self->held_count == self->held_cap) {
        size_t want = self->held_cap ? 2 * self->held_cap : 16;
        s_held_t *grown = realloc (self->held, want * sizeof *grown);
        if (!grown) {
            shoal_error ("out of memory: a reply goes out before its "
                         "change is stored");
            s_release (self, &held);
            return;
        }
        self->held = grown;
        self->held_cap = want;
    }
    self->held[self->held_count++] = held;
    s_release_written (self);
    if (self->held_count)
        shoal_writer_hurry (self->writer);
}

/*  Serves one call of an HTTP thread: answers it, or holds the answer
    until the store has what it reports (s_hold). The answer goes by
    reference: the HTTP thread prints it for the client.                  */
static void
s_on_call (shoal_loop_t *self, shoal_call_t *call)
{
    json_t *request = shoal_call_request (call);
    const char *op = json_string_value (json_object_get (request, "op"));
    json_t *reply = NULL;
    bool durable = false;
    self->submitted = 0;
    for (size_t i = 0; op && i < sizeof s_ops / sizeof s_ops[0]; i++)
        if (streq (op, s_ops[i].name)) {
            if (s_ops[i].snapshot)
                s_flush (self, NULL, 0, NULL);
            reply = s_ops[i].fn (self, request);
            if (reply && s_ops[i].snapshot)
                json_object_set_new (reply, "event_id", json_integer (
                    (json_int_t) shoal_events_last (self->events)));
            durable = s_ops[i].durable;
            break;
        }
    if (!reply)
        reply = s_problem (500, "Internal error", "unknown loop operation",
                           NULL);
    json_int_t status = json_integer_value (json_object_get (reply,
                                                             "status"));
    if (durable && self->writer && status >= 200 && status < 300) {
        const char *job_id = json_string_value (json_object_get (
            json_object_get (reply, "body"), "id"));
        const char *key = json_string_value (json_object_get (
            request, "idempotency_key"));
        s_hold (self, &call, reply, shoal_writer_submitted (self->writer),
                self->submitted, job_id, self->submitted ? key : NULL);
    }
    else {
        if (durable && status >= 200 && status < 300)
            /* Rendered after the operation's flush: the view shows every
               event so far (a held reply gets its id when released). A
               client drops a view older than what it already shows. */
            json_object_set_new (reply, "event_id", json_integer (
                (json_int_t) shoal_events_last (self->events)));
        shoal_call_answer (&call, reply);
    }
    json_decref (request);
    s_run_actions (self);
}

/* ---- retention --------------------------------------------------- */

/*  A job past its retention is being forgotten: the store deletes its
    rows (with this round's batch), its idempotency key goes, and so does
    its cached params. Its directory on the shared volume stays: outputs
    are the users'.                                                       */
static void
s_on_evicted (const char *job_id, void *arg)
{
    shoal_loop_t *self = arg;
    if (self->writer && !self->batch)
        self->batch = shoal_store_batch_new ();
    if (self->writer) {
        /* Should this batch fail, the resync that follows deletes it
           again (s_deleted_put_all): it is no longer among the jobs a
           resync puts. */
        if (self->deleted_count == self->deleted_cap) {
            size_t want = self->deleted_cap ? 2 * self->deleted_cap : 64;
            s_deleted_t *grown = realloc (self->deleted,
                                          want * sizeof *grown);
            if (grown) {
                self->deleted = grown;
                self->deleted_cap = want;
            }
        }
        char *copy = self->deleted_count < self->deleted_cap
                         ? strdup (job_id) : NULL;
        if (copy)
            self->deleted[self->deleted_count++] = (s_deleted_t) {
                .job_id = copy, .ticket = 0 };
        if (self->batch)
            shoal_store_batch_delete_job (self->batch, job_id);
        else
            self->resync = true;   /* the resync deletes it (kept above) */
        if (!copy)
            shoal_error ("out of memory: job %s may stay in the state store "
                         "until the next start", job_id);
    }
    const char *key = zhashx_lookup (self->key_of_job, job_id);
    if (key) {
        char *copy = strdup (key);   /* s_drop_key frees the map's */
        if (copy)
            s_drop_key (self, copy);
        free (copy);
    }
    s_params_entry_t *entry = s_params_slot (self, job_id);
    if (entry->text && streq (entry->id, job_id)) {
        free (entry->text);
        entry->text = NULL;
        entry->id[0] = '\0';
    }
}

/*  Forgets jobs that ended more than the retention ago. Called with the
    action queue drained, so no action holds one of them.                */
static void
s_evict (shoal_loop_t *self)
{
    if (self->retain_ms <= 0)
        return;
    size_t count = shoal_scheduler_evict (self->scheduler,
                                          s_now (self) - self->retain_ms,
                                          S_EVICT_PER_TICK, s_on_evicted,
                                          self);
    if (count)
        shoal_debug ("%zu ended jobs past their retention forgotten",
                     count);
}

/* ---- lifecycle and the loop ------------------------------------- */

static void
s_restore_key (const char *key, uint64_t fingerprint, const char *job_id,
               void *arg)
{
    shoal_loop_t *self = arg;
    /* Read back, so already stored: no batch yet, so none is forgotten. */
    s_remember_key (self, key, fingerprint, job_id);
}

/*  Makes the ROUTER a CURVE server admitting only the workers whose public
    keys are in the clients directory (zauth rereads it when it changes,
    so adding a key admits a worker without a restart).                   */
static int
s_enable_curve (shoal_loop_t *self, const shoal_loop_config_t *config,
                shoal_error_t *err)
{
    zcert_t *cert = zcert_load (config->curve_secret);
    if (!cert || !*zcert_secret_txt (cert)
        || streq (zcert_secret_txt (cert),
                  "0000000000000000000000000000000000000000")) {
        zcert_destroy (&cert);
        return shoal_error_set (err, SHOAL_EINVAL, "curve-secret",
                                "cannot load the key pair %s (and %s_secret)",
                                config->curve_secret, config->curve_secret);
    }
    self->auth = zactor_new (zauth, NULL);
    if (!self->auth) {
        zcert_destroy (&cert);
        return shoal_error_set (err, SHOAL_EIO, NULL,
                                "cannot start the authenticator");
    }
    zstr_sendx (self->auth, "CURVE", config->curve_clients, NULL);
    zsock_wait (self->auth);
    zcert_apply (cert, self->router);
    zsock_set_curve_server (self->router, 1);
    zcert_destroy (&cert);
    return 0;
}

shoal_loop_t *
shoal_loop_new (const shoal_loop_config_t *config, shoal_error_t *err)
{
    const shoal_defs_t *defs = config->defs;
    const char *data_dir = config->data_dir;
    const char *bind = config->bind;
    const char *store_path = config->store_path;
    shoal_loop_t *self = calloc (1, sizeof *self);
    if (!self) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->defs = defs;
    self->data_dir = strdup (data_dir);
    self->scheduler = shoal_scheduler_new (defs);
    self->heartbeat_ms = config->heartbeat_ms ? config->heartbeat_ms
                                              : SHOAL_HEARTBEAT_MS;
    if (self->scheduler)
        shoal_scheduler_set_heartbeat_ms (self->scheduler,
                                          self->heartbeat_ms);
    if (self->scheduler && config->max_spawn_entries)
        shoal_scheduler_set_max_spawn_entries (self->scheduler,
                                               config->max_spawn_entries);
    self->router = zsock_new (ZMQ_ROUTER);
    self->mailbox = shoal_mailbox_new ();
    self->idempotency = zhashx_new ();
    self->idempotency_order = zlistx_new ();
    self->key_of_job = zhashx_new ();
    self->retain_ms = config->retain_finished_ms;
    self->worker_names = zhashx_new ();
    /* Ids of this run start above any id of an earlier run (unless that
       one averaged 1,000 events per millisecond): an old Last-Event-ID
       then gets a reset, never events it did not ask for. */
    struct timespec start;
    clock_gettime (CLOCK_REALTIME, &start);
    self->events = shoal_events_new (
        config->event_buffer ? config->event_buffer : SHOAL_EVENTS_CAPACITY,
        ((uint64_t) start.tv_sec * 1000 + (uint64_t) start.tv_nsec / 1000000)
            * 1000);
    if (self->idempotency)
        zhashx_set_destructor (self->idempotency,
                               (zhashx_destructor_fn *) zstr_free);
    if (self->idempotency_order)
        zlistx_set_destructor (self->idempotency_order,
                               (zlistx_destructor_fn *) zstr_free);
    if (self->key_of_job)
        zhashx_set_destructor (self->key_of_job,
                               (zhashx_destructor_fn *) zstr_free);
    if (!self->data_dir || !self->scheduler || !self->router || !self->mailbox
        || !self->idempotency || !self->idempotency_order
        || !self->key_of_job || !self->events
        || !self->worker_names) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        shoal_loop_destroy (&self);
        return NULL;
    }
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_maxmsgsize (self->router, SHOAL_MSG_MAX_SIZE);
    zsock_set_sndhwm (self->router, 0);
    zsock_set_rcvhwm (self->router, 0);
    zsock_set_linger (self->router, 0);
    if (config->curve_secret && s_enable_curve (self, config, err)) {
        shoal_loop_destroy (&self);
        return NULL;
    }
    if (zsock_bind (self->router, "%s", bind) < 0) {
        shoal_error_set (err, SHOAL_EIO, "bind", "cannot bind %s: %s", bind,
                         zmq_strerror (zmq_errno ()));
        shoal_loop_destroy (&self);
        return NULL;
    }
    shoal_random_hex (self->instance, 8);
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    self->wall_start = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    self->mono_start = s_mono_ms ();
    if (store_path) {
        self->store = shoal_store_open (store_path, err);
        size_t jobs = 0;
        size_t text_len = 0;
        const char *text = shoal_defs_source (defs, &text_len);
        uint32_t version = 0;
        if (!self->store
            || shoal_store_put_definitions (self->store, text, text_len,
                                            &version, err)) {
            shoal_loop_destroy (&self);
            return NULL;
        }
        /* Jobs submitted from now on record this version; those read back
           keep the definitions they were submitted under. */
        shoal_scheduler_set_definitions_version (self->scheduler, version);
        if (shoal_store_load (self->store, self->scheduler, s_now (self),
                              SHOAL_LOOP_ADOPT_LEASE_MS, s_restore_key, self,
                              &jobs, err)) {
            shoal_loop_destroy (&self);
            return NULL;
        }
        shoal_info ("state store %s: %zu jobs read back", store_path, jobs);
        self->batch = shoal_store_batch_new ();
        self->writer = self->batch ? shoal_writer_new (&self->store, err)
                                   : NULL;
        if (!self->writer) {
            if (!self->batch)
                shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
            shoal_loop_destroy (&self);
            return NULL;
        }
    }
    return self;
}

/*  Waits until the writer has written every batch handed over.          */
static void
s_wait_written (shoal_loop_t *self)
{
    uint64_t submitted = shoal_writer_submitted (self->writer);
    while (shoal_writer_written (self->writer) < submitted) {
        shoal_writer_hurry (self->writer);
        struct pollfd written = { shoal_writer_fd (self->writer), POLLIN, 0 };
        poll (&written, 1, 1000);
        shoal_writer_ack (self->writer);
    }
}

/*  Sends the replies still held, each once its batches are written.     */
static void
s_answer_held (shoal_loop_t *self)
{
    if (!self->writer || !self->scheduler || !self->events)
        return;
    s_flush (self, NULL, 0, NULL);
    while (self->held_count) {
        struct pollfd written = { shoal_writer_fd (self->writer), POLLIN, 0 };
        poll (&written, 1, 1000);
        shoal_writer_ack (self->writer);
        s_release_written (self);
    }
}

void
shoal_loop_destroy (shoal_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_loop_t *self = *self_p;
    s_answer_held (self);
    free (self->held);
    shoal_mailbox_destroy (&self->mailbox);
    zsock_destroy (&self->router);
    zactor_destroy (&self->auth);
    if (self->scheduler && self->events) {
        s_flush (self, NULL, 0, NULL);
        if (self->writer) {
            /* A write that failed in the last second is not made good
               yet (resyncs come at most once a second): once the writer
               has written the rest, make it good now, or the stop would
               lose what that write held. */
            s_wait_written (self);
            if (shoal_writer_take_resync (self->writer) || self->resync) {
                self->resync = true;
                self->resync_at = 0;
                s_flush (self, NULL, 0, NULL);
            }
        }
    }
    shoal_writer_destroy (&self->writer);   /* writes what is left */
    for (size_t i = 0; i < self->deleted_count; i++)
        free (self->deleted[i].job_id);
    free (self->deleted);
    shoal_store_batch_destroy (&self->batch);
    shoal_store_destroy (&self->store);
    shoal_scheduler_destroy (&self->scheduler);
    zhashx_destroy (&self->idempotency);
    zlistx_destroy (&self->idempotency_order);
    zhashx_destroy (&self->key_of_job);
    for (size_t i = 0; i < self->worker_count; i++) {
        free (self->workers[i].name);
        free (self->workers[i].text);
    }
    free (self->workers);
    zhashx_destroy (&self->worker_names);
    free (self->staged);
    free (self->stage_touched);
    for (size_t i = 0; i < S_PARAMS_CACHE; i++)
        free (self->params[i].text);
    shoal_events_destroy (&self->events);
    free (self->wire);
    free (self->view);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

shoal_events_t *
shoal_loop_events (shoal_loop_t *self)
{
    return self->events;
}

shoal_mailbox_t *
shoal_loop_mailbox (shoal_loop_t *self)
{
    return self->mailbox;
}

/*  Serves up to S_BATCH waiting calls; the mailbox's descriptor stays
    readable if more wait.                                                 */
static void
s_drain_calls (shoal_loop_t *self)
{
    shoal_call_t *call;
    for (int i = 0; i < S_BATCH && (call = shoal_mailbox_take (self->mailbox));
         i++)
        s_on_call (self, call);
}

/*  The same for worker messages, received part by part into three
    reused zmq_msg_t: no allocation per message (libzmq keeps a small body
    inside the zmq_msg_t itself), which the busiest socket notices.       */
static void
s_drain_workers (shoal_loop_t *self)
{
    void *socket = zsock_resolve (self->router);
    zmq_msg_t frames[3];
    for (int i = 0; i < 3; i++)
        zmq_msg_init (&frames[i]);
    for (int i = 0; i < S_BATCH; i++) {
        size_t count = 0;
        bool more = true;
        while (more) {
            /* Parts past the third land on the third: dropped below. */
            zmq_msg_t *part = &frames[count < 3 ? count : 2];
            if (zmq_msg_recv (part, socket, ZMQ_DONTWAIT) < 0)
                break;
            count++;
            more = zmq_msg_more (part);
        }
        if (count == 0)
            break;   /* nothing waiting */
        if (count != 3 || more) {
            shoal_warn ("dropped a worker message of %zu frames (want 3)",
                        count);
            continue;
        }
        s_on_worker_message (self, frames);
    }
    for (int i = 0; i < 3; i++)
        zmq_msg_close (&frames[i]);
}

int
shoal_loop_run (shoal_loop_t *self, int stop_fd)
{
    int rc = 0;
    self->next_tick = s_mono_ms ()
                      + shoal_scheduler_heartbeat_ms (self->scheduler);
    zmq_pollitem_t items[] = {
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { NULL, shoal_mailbox_fd (self->mailbox), ZMQ_POLLIN, 0 },
        { NULL, stop_fd, ZMQ_POLLIN, 0 },
        { NULL, self->writer ? shoal_writer_fd (self->writer) : -1,
          ZMQ_POLLIN, 0 },
    };
    int item_count = self->writer ? 4 : 3;
    while (true) {
        int64_t wait = self->next_tick - s_mono_ms ();
        int64_t wake = shoal_scheduler_next_wake (self->scheduler);
        if (wake >= 0 && wake - s_now (self) < wait)
            wait = wake - s_now (self);
        int64_t beat = shoal_scheduler_heartbeat_due (self->scheduler);
        if (beat >= 0 && beat - s_now (self) < wait)
            wait = beat - s_now (self);
        if (wait < 0)
            wait = 0;
        int ready = zmq_poll (items, item_count, (long) wait);
        if (ready < 0 && zmq_errno () != EINTR) {
            shoal_error ("poll failed: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (items[2].revents & ZMQ_POLLIN)
            break;
        if (item_count > 3 && (items[3].revents & ZMQ_POLLIN)) {
            shoal_writer_ack (self->writer);
            s_release_written (self);
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_drain_workers (self);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_calls (self);
        int64_t due = shoal_scheduler_next_wake (self->scheduler);
        if (due >= 0 && due <= s_now (self)) {
            shoal_scheduler_wake (self->scheduler, s_now (self));
            s_run_actions (self);
        }
        int64_t beat_due = shoal_scheduler_heartbeat_due (self->scheduler);
        if (beat_due >= 0 && beat_due <= s_now (self)) {
            shoal_scheduler_heartbeats (self->scheduler, s_now (self));
            s_run_actions (self);
        }
        if (s_mono_ms () >= self->next_tick) {
            int64_t was = shoal_scheduler_heartbeat_ms (self->scheduler);
            shoal_scheduler_tick (self->scheduler, s_now (self));
            int64_t period = shoal_scheduler_heartbeat_ms (self->scheduler);
            if (period != was)
                shoal_info ("heartbeat period now %lld ms for %zu workers "
                            "(was %lld ms)", (long long) period,
                            shoal_scheduler_worker_count (self->scheduler),
                            (long long) was);
            s_run_actions (self);
            s_evict (self);
            self->next_tick = s_mono_ms () + period;
        }
        /* One commit for everything this round of events changed. */
        s_flush (self, NULL, 0, NULL);
    }
    /* Answers held for the store go out once written; HTTP threads still
       waiting are told at once that the controller stops (503), so that
       stopping the HTTP server does not wait out their timeouts. */
    s_answer_held (self);
    shoal_mailbox_close (self->mailbox);
    return rc;
}
