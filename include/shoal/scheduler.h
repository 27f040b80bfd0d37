/*  scheduler.h: the scheduler, a pure state machine.

    It owns every job, stage, task and worker of a controller. Events come
    in as function calls (job submitted, worker said hello, a result, a
    tick with the time passed in); what the outside world must do comes out
    as actions (send this task to that worker, cancel that attempt, send a
    heartbeat). There are no sockets, clocks or files in here, so the whole
    job model is tested without any of them and load simulations can drive
    it at full speed.

    Time is milliseconds since the Unix epoch, passed in by the caller; the
    controller derives it from a monotonic clock so a wall clock step never
    makes a worker look lost.

    Ownership: the scheduler owns all jobs, tasks and workers; pointers it
    hands out are borrowed and stay valid until the scheduler is destroyed
    (jobs and tasks: until shoal_scheduler_evict forgets their job;
    workers: until the next call that may drop lost workers, see
    shoal_scheduler_tick). Not thread safe: one thread owns it.

    Fencing: each dispatch of a task carries a new attempt number. A result
    is applied only when it comes from the worker holding the current
    attempt; anything else is recognised as stale and ignored.             */
#ifndef SHOAL_SCHEDULER_H
#define SHOAL_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "shoal/defs.h"
#include "shoal/error.h"

/*  A task whose worker is lost this many times fails with "worker lost". */
#define SHOAL_MAX_WORKER_LOSSES 3

/*  Back-off before the n-th retry of a failed task (n from 1):
    SHOAL_RETRY_BASE_MS * 2^(n-1), at most SHOAL_RETRY_MAX_MS.             */
#define SHOAL_RETRY_BASE_MS 1000
#define SHOAL_RETRY_MAX_MS 60000

typedef struct shoal_scheduler shoal_scheduler_t;
typedef struct shoal_job shoal_job_t;
typedef struct shoal_task shoal_task_t;
typedef struct shoal_worker shoal_worker_t;

typedef enum {
    SHOAL_JOB_CREATED = 0,
    SHOAL_JOB_RUNNING,
    SHOAL_JOB_SUCCEEDED,
    SHOAL_JOB_FAILED,
    SHOAL_JOB_CANCELED,
    SHOAL_JOB_STATE_COUNT
} shoal_job_state_t;

typedef enum {
    SHOAL_STAGE_PENDING = 0,
    SHOAL_STAGE_RUNNING,
    SHOAL_STAGE_SUCCEEDED,
    SHOAL_STAGE_FAILED,
    SHOAL_STAGE_STATE_COUNT
} shoal_stage_state_t;

typedef enum {
    SHOAL_TASK_PENDING = 0,
    SHOAL_TASK_RUNNING,
    SHOAL_TASK_SUCCEEDED,
    SHOAL_TASK_FAILED,
    SHOAL_TASK_CANCELED,
    SHOAL_TASK_STATE_COUNT
} shoal_task_state_t;

const char *shoal_job_state_name (shoal_job_state_t state);
const char *shoal_stage_state_name (shoal_stage_state_t state);
const char *shoal_task_state_name (shoal_task_state_t state);
/*  Parses a job state name; returns -1 when unknown.                      */
int shoal_job_state_parse (const char *name);
/*  Parses a task state name; returns -1 when unknown.                     */
int shoal_task_state_parse (const char *name);

/*  How a task attempt ended, as a worker reported it.                     */
typedef enum {
    SHOAL_RESULT_EXITED = 0,    /* exit_code says how                      */
    SHOAL_RESULT_SIGNALED,      /* killed by `signal`                      */
    SHOAL_RESULT_ERROR,         /* did not run or broke a rule: `error`    */
    SHOAL_RESULT_CANCELED,      /* stopped because we asked                */
    SHOAL_RESULT_REFUSED,       /* not run: the worker had no room; runs
                                   again elsewhere, no failure counted     */
    SHOAL_RESULT_TIMEOUT,       /* ran past its class's timeout, stopped   */
} shoal_result_status_t;

typedef struct {
    shoal_result_status_t status;
    int exit_code;              /* EXITED only                             */
    int signal;                 /* SIGNALED only                           */
    const char *error;          /* borrowed, may be NULL                   */
    int64_t duration_ms;        /* as measured by the worker               */
    json_t *spawn;              /* borrowed spawn list, NULL when none     */
    const char *spawn_text;     /* or the list as JSON text (borrowed),
                                   checked here; read before `spawn`      */
    size_t spawn_size;
} shoal_result_t;

typedef enum {
    SHOAL_ACTION_DISPATCH = 0,  /* send `task` attempt to `worker`         */
    SHOAL_ACTION_CANCEL,        /* tell `worker` to stop `task` attempt    */
    SHOAL_ACTION_HEARTBEAT,     /* send a heartbeat to `worker`            */
    SHOAL_ACTION_JOB_ENDED,     /* `job` reached a final state             */
    SHOAL_ACTION_WORKER_LOST,   /* `worker` was dropped as lost            */
} shoal_action_type_t;

typedef struct {
    shoal_action_type_t type;
    shoal_worker_t *worker;     /* borrowed; NULL for JOB_ENDED            */
    shoal_task_t *task;         /* borrowed; DISPATCH and CANCEL           */
    shoal_job_t *job;           /* borrowed                                */
    uint32_t attempt;           /* the attempt the action is about         */
} shoal_action_t;

/*  Creates a scheduler over `defs` (borrowed; must outlive it).           */
shoal_scheduler_t *shoal_scheduler_new (const shoal_defs_t *defs);
void shoal_scheduler_destroy (shoal_scheduler_t **self_p);

/*  Bounds the entries of one spawn list (default SHOAL_SPAWN_MAX_ENTRIES);
    a longer list fails its spawn task before any of it is kept.         */
void shoal_scheduler_set_max_spawn_entries (shoal_scheduler_t *self,
                                            size_t max_entries);

/*  The adaptive heartbeat period. Every period each worker sends one
    HEARTBEAT and the controller one back (none to a worker it sent a TASK
    or CANCEL in the last half period, or a WELCOME: any message is a sign
    of life, so a busy cluster gets none), 2 x workers messages; the
    period grows with the workers so that this stays near
    SHOAL_HEARTBEAT_BUDGET messages per second in all:
        2 W / P <= B   =>   P >= 2 W / B seconds = W x 2000 / B ms
    (with B = 5,000: 0.4 ms per worker, 4 s at 10,000 workers), rounded
    up to a whole second so that it changes only every 2,500 workers, not
    on every join. It is never below the minimum (--heartbeat-ms, default
    SHOAL_HEARTBEAT_MS: up to 2,500 workers keep 1 s) and not above
    SHOAL_HEARTBEAT_CAP_MS unless the minimum is, so that a lost worker is
    found within SHOAL_HEARTBEAT_LIVENESS x 10 s = 30 s; past 25,000
    workers the traffic grows again instead.                             */
#define SHOAL_HEARTBEAT_BUDGET 5000
#define SHOAL_HEARTBEAT_CAP_MS 10000
int64_t shoal_heartbeat_period_ms (size_t workers, int64_t minimum_ms);

/*  The minimum heartbeat period (--heartbeat-ms; default
    SHOAL_HEARTBEAT_MS). The period in force is
    shoal_heartbeat_period_ms of the connected workers, chosen again at
    every tick; a worker silent for SHOAL_HEARTBEAT_LIVENESS periods is
    lost. Call tick once per period in force (a tick tells a new period to
    every worker at once) and shoal_scheduler_heartbeats when
    shoal_scheduler_heartbeat_due says.                                    */
void shoal_scheduler_set_heartbeat_ms (shoal_scheduler_t *self,
                                       int64_t heartbeat_ms);

/*  The heartbeat period in force: told to workers in WELCOME and in every
    HEARTBEAT the controller sends.                                        */
int64_t shoal_scheduler_heartbeat_ms (const shoal_scheduler_t *self);

/*  How long a worker may be silent at `now` before it is lost:
    SHOAL_HEARTBEAT_LIVENESS periods, but after the period shrank, the
    longer deadline of the old period holds for one old deadline more,
    since a worker keeps the old period until the controller's next
    HEARTBEAT reaches it.                                                  */
int64_t shoal_scheduler_loss_ms (const shoal_scheduler_t *self, int64_t now);

/*  Takes the next action, oldest first. Returns false when none is left.
    Actions about a worker that was lost meanwhile, or a task attempt that
    is no longer current, are dropped here, so everything returned is
    still meant.                                                           */
bool shoal_scheduler_next_action (shoal_scheduler_t *self,
                                  shoal_action_t *action);

/* ---- jobs ------------------------------------------------------------ */

/*  Adds a job of class `job_class` with checked `params` (ownership taken,
    even on failure) under the caller-made unique `id`. With `start` the
    first stage becomes ready at once. The job gets the next sequence
    number (shoal_job_seq). Returns the job, or NULL with `err` set
    (SHOAL_EINVAL for a duplicate id).                                     */
shoal_job_t *shoal_scheduler_submit (shoal_scheduler_t *self, const char *id,
                                     const shoal_job_class_t *job_class,
                                     json_t *params, bool start, int64_t now,
                                     shoal_error_t *err);

/*  Starts a job in state `created`: 0, SHOAL_ENOTFOUND, or SHOAL_ESTATE. */
int shoal_scheduler_start (shoal_scheduler_t *self, const char *id,
                           int64_t now, shoal_error_t *err);

/*  Cancels a job that is created or running: pending tasks never start,
    running ones are sent CANCEL, the job ends `canceled`. Returns 0,
    SHOAL_ENOTFOUND, or SHOAL_ESTATE when the job has already ended.       */
int shoal_scheduler_cancel (shoal_scheduler_t *self, const char *id,
                            int64_t now, shoal_error_t *err);

/*  Runs a failed job again from the stage that failed: that stage starts
    afresh (its earlier tasks stay listed with their final states), the
    stages before it keep their results. Returns 0, SHOAL_ENOTFOUND, or
    SHOAL_ESTATE when the job is not `failed`.                             */
int shoal_scheduler_retry (shoal_scheduler_t *self, const char *id,
                           int64_t now, shoal_error_t *err);

shoal_job_t *shoal_scheduler_job (shoal_scheduler_t *self, const char *id);
size_t shoal_scheduler_job_count (const shoal_scheduler_t *self);
/*  Workers connected now.                                                 */
size_t shoal_scheduler_worker_count (const shoal_scheduler_t *self);
/*  The job submitted `index`-th (from 0), in submission order.           */
shoal_job_t *shoal_scheduler_job_at (const shoal_scheduler_t *self,
                                     size_t index);

/* ---- workers --------------------------------------------------------- */

/*  A worker said HELLO from routing key `key` (any bytes the caller uses
    to reach it, as a string) with `slots` in all, `running` of them taken
    by tasks this scheduler does not track for it (from before a
    reconnect). Those count as busy until results we cannot place arrive
    from it. A known key updates the worker in place. Returns the worker,
    NULL when out of memory.                                               */
shoal_worker_t *shoal_scheduler_worker_hello (shoal_scheduler_t *self,
                                              const char *key,
                                              const char *name,
                                              const char *host,
                                              uint32_t slots, uint32_t running,
                                              int64_t now);

/*  The worker at `key` also holds up to `queue` tasks beyond its slots,
    starting each when a slot frees: its credit is slots + queue.         */
void shoal_scheduler_worker_queue (shoal_scheduler_t *self, const char *key,
                                   uint32_t queue);

/*  Records that the worker at `key` is the process `instance` (a random id
    it keeps for its life). When another key still stands for the same
    process (it reconnected before we noticed it gone), returns that key,
    borrowed until the next call that drops workers: the caller lets the
    new key adopt the attempts the HELLO lists, then drops the old key
    with shoal_scheduler_worker_gone (no loss). Returns NULL otherwise.   */
const char *shoal_scheduler_worker_instance (shoal_scheduler_t *self,
                                             const char *key,
                                             const char *instance);

/*  Any message from `key` proves it alive. Returns the worker, or NULL
    when the key is unknown (the caller should ask it to say HELLO).       */
shoal_worker_t *shoal_scheduler_worker_seen (shoal_scheduler_t *self,
                                             const char *key, int64_t now);

/*  The worker drains before it stops: it gets no new task; what it runs
    goes on, and whatever it has not finished comes back with its BYE.
    Unknown key: no-op.                                                    */
void shoal_scheduler_worker_drain (shoal_scheduler_t *self, const char *key);

/*  The worker is gone: `lost` when it went silent or unreachable (its
    tasks count a loss), otherwise it said BYE. Its running tasks go back
    to the front of their job's queue as a new attempt. Unknown key: no-op. */
void shoal_scheduler_worker_gone (shoal_scheduler_t *self, const char *key,
                                  bool lost, int64_t now);

/*  The TASK of a DISPATCH action could not be sent: the attempt never
    reached the worker, so the task goes back to the front of its queue
    without counting a loss (the caller then drops the worker).           */
void shoal_scheduler_unsent (shoal_scheduler_t *self, shoal_task_t *task,
                             uint32_t attempt, int64_t now);

/*  A result of attempt `attempt` of task `task_id` of job `job_id` from
    worker `key`. Returns 0 when applied, SHOAL_ENOTFOUND for an unknown
    worker, job or task, SHOAL_ESTATE for a stale attempt (ignored; a slot
    the worker reported as taken at HELLO is given back all the same).     */
int shoal_scheduler_result (shoal_scheduler_t *self, const char *key,
                            const char *job_id, uint32_t task_id,
                            uint32_t attempt, const shoal_result_t *result,
                            int64_t now, shoal_error_t *err);

/*  Passes time: chooses the heartbeat period for the workers connected
    now, drops workers silent for longer than shoal_scheduler_loss_ms,
    and sends a HEARTBEAT telling the period to every worker not yet told
    the period in force. Call once per period in force
    (shoal_scheduler_heartbeat_ms).                                        */
void shoal_scheduler_tick (shoal_scheduler_t *self, int64_t now);

/*  The controller's regular HEARTBEATs, spread over the period: the
    workers form a ring, and each call looks at as many of them as the
    time since the last call is worth (W workers per period, each once),
    sending a HEARTBEAT to each one told nothing in the last half period.
    Sent all at once, a tick's heartbeats to 10,000 idle workers (and
    their answers) would hold up every TASK and RESULT behind them for
    tens of milliseconds; spread, a step holds a few dozen, still enough
    to share each wake-up of the loop and of libzmq's I/O thread.
    shoal_scheduler_heartbeat_due is when the next step is due (-1: no
    workers): every 25 ms at most, every period / W with fewer workers.   */
int64_t shoal_scheduler_heartbeat_due (const shoal_scheduler_t *self);
void shoal_scheduler_heartbeats (shoal_scheduler_t *self, int64_t now);

/*  Called with the id of each job shoal_scheduler_evict forgets, just
    before the job is freed; the id is borrowed for the call.             */
typedef void (shoal_evict_fn) (const char *job_id, void *arg);

/*  Retention: forgets up to `max` jobs that ended (succeeded, failed or
    canceled) before `cutoff` (ms), oldest first, as if never submitted:
    lookups return NULL, lists and pages skip them, stats stay right.
    `fn` (may be NULL) gets each id first, to forget it elsewhere too
    (the state store, idempotency keys). A job is kept for a later call
    while it changed since the last flush (its row must be stored before
    it can be deleted), while a worker still holds one of its tasks (a
    canceled job, until the result comes) and while a queued action
    points at it (call this with the action queue drained). Returns the
    number forgotten. O(jobs created before the cutoff and not forgotten,
    + the retry back-off and orphan lists when any is forgotten), plus
    one memmove of the job list: `max` bounds the pause.                  */
size_t shoal_scheduler_evict (shoal_scheduler_t *self, int64_t cutoff,
                              size_t max, shoal_evict_fn *fn, void *arg);

/*  When a task waiting out its retry back-off is due, or -1 when none
    waits. The caller calls shoal_scheduler_wake at that time.             */
int64_t shoal_scheduler_next_wake (const shoal_scheduler_t *self);

/*  Makes tasks whose back-off has passed ready again and dispatches.     */
void shoal_scheduler_wake (shoal_scheduler_t *self, int64_t now);

/* ---- metrics ------------------------------------------------------------ */

/*  Upper bounds, in seconds, of the task duration and queue wait
    histograms (a last, infinite bucket follows).                          */
#define SHOAL_HISTOGRAM_BOUNDS                                              \
    { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,     \
      300, 900, 3600 }
#define SHOAL_HISTOGRAM_BUCKETS 17   /* the bounds above and +Inf          */

typedef struct {
    uint64_t buckets[SHOAL_HISTOGRAM_BUCKETS]; /* not cumulative          */
    double sum;                  /* seconds                                */
    uint64_t count;
} shoal_histogram_t;

/*  What the scheduler counted since it was created (counters) and holds
    now (gauges).                                                          */
typedef struct {
    uint64_t jobs_submitted;
    uint64_t jobs_finished[SHOAL_JOB_STATE_COUNT];   /* by final state    */
    uint64_t tasks_finished[SHOAL_TASK_STATE_COUNT]; /* by final state    */
    shoal_histogram_t task_duration;  /* as the workers measured it       */
    shoal_histogram_t queue_wait;     /* ready -> dispatched              */
    uint64_t queue_depth;        /* tasks ready, waiting for a slot        */
    uint64_t tasks_running;      /* dispatched, no result yet              */
    uint64_t workers;            /* connected                              */
    uint64_t slots;              /* their slots in all                     */
    uint64_t busy;               /* of which taken                         */
    uint64_t jobs_active;        /* created or running                     */
    uint64_t jobs_evicted;       /* forgotten past their retention         */
} shoal_scheduler_stats_t;

void shoal_scheduler_stats (const shoal_scheduler_t *self,
                            shoal_scheduler_stats_t *stats);

/*  Adds `seconds` to `histogram`.                                         */
void shoal_histogram_observe (shoal_histogram_t *histogram, double seconds);

/* ---- persistence ------------------------------------------------------ */

/*  The durable part of a stage, a job and a task: what a state store keeps
    and gives back after a restart. Strings and JSON are borrowed from the
    scheduler (when read) or from the caller (when restoring).            */
typedef struct {
    shoal_stage_state_t state;
    uint32_t first_task;         /* id of its first task                   */
    uint32_t task_count;
    bool spawn_pending;          /* its spawn task has not succeeded       */
} shoal_stage_record_t;

typedef struct {
    const char *id;
    uint64_t seq;                /* submission order, from 1; restored
                                    jobs keep theirs (0: give it the next) */
    const char *job_class;       /* class id                               */
    uint32_t definitions;        /* version of the definitions it was
                                    submitted under (0: not known)         */
    json_t *params;              /* strings; secrets in clear              */
    const char *params_text;     /* the same as compact JSON when read from
                                    the scheduler (NULL: not at hand)      */
    shoal_job_state_t state;
    uint32_t stage;              /* current stage                          */
    uint32_t retries;
    const char *error;           /* NULL when none                         */
    int64_t created_at, started_at, finished_at;   /* ms, 0: not yet      */
} shoal_job_record_t;

typedef struct {
    uint32_t id;
    uint32_t stage;
    int32_t index;               /* -1: the stage's spawn task             */
    shoal_task_state_t state;
    uint32_t attempt, losses, failures;
    int exit_code;               /* -1: none                               */
    int signal;
    const char *error;           /* NULL when none                         */
    const char *worker;          /* last worker's name, NULL when none     */
    json_t *entry;               /* spawn entry, NULL when none; read back
                                    only when entry_text is NULL: the
                                    scheduler hands out entry_text         */
    const char *entry_text;      /* the entry as JSON text, not
                                    NUL-terminated; NULL when none         */
    size_t entry_size;
    int64_t started_at, finished_at, duration_ms, wake_at;
} shoal_task_record_t;

void shoal_job_record (const shoal_job_t *job, shoal_job_record_t *record);
void shoal_job_stage_record (const shoal_job_t *job, uint32_t stage,
                             shoal_stage_record_t *record);
void shoal_task_record (const shoal_task_t *task,
                        shoal_task_record_t *record);
/*  A stage's tasks by state (they sum to its task count), as the REST
    view's `tasks` shows them.                                             */
void shoal_job_stage_counts (const shoal_job_t *job, uint32_t stage,
                             uint32_t counts[SHOAL_TASK_STATE_COUNT]);

/*  Reports every job and task changed since the last call, then forgets
    the changes. `job_fn` sees a job before any of its tasks. A job's row
    is reported whenever one of its tasks changed (its stage counts did);
    shoal_job_record_changed tells, within `job_fn`, whether its record
    changed too.                                                           */
typedef void (shoal_job_fn) (const shoal_job_t *job, void *arg);
typedef void (shoal_task_fn) (const shoal_task_t *task, void *arg);
void shoal_scheduler_flush (shoal_scheduler_t *self, shoal_job_fn *job_fn,
                            shoal_task_fn *task_fn, void *arg);

/*  Within a flush's `job_fn`: whether what shoal_job_record and
    shoal_job_stage_record give differs from when the job was last
    reported (always, the first time); not, when only its tasks and the
    stage counts changed. Compared by a 64-bit fingerprint.               */
bool shoal_job_record_changed (const shoal_job_t *job);

/*  True when something changed since the last flush.                     */
bool shoal_scheduler_changed (const shoal_scheduler_t *self);

/*  Definitions change between runs of a controller, and a job keeps the
    ones it was submitted under. A state store numbers each text of the
    definitions it sees (store.h); the scheduler's own definitions are
    given theirs here, and a new job records it. 0: no store.              */
void shoal_scheduler_set_definitions_version (shoal_scheduler_t *self,
                                              uint32_t version);
uint32_t shoal_scheduler_definitions_version (const shoal_scheduler_t *self);

/*  Takes `*defs_p`, an earlier version of the definitions that jobs to be
    restored were submitted under; kept until the scheduler is destroyed.
    Returns 0, or SHOAL_ENOMEM (the definitions are freed all the same).  */
int shoal_scheduler_keep_definitions (shoal_scheduler_t *self,
                                      uint32_t version, shoal_defs_t **defs_p,
                                      shoal_error_t *err);

/*  The definitions of `version`: the scheduler's own or kept ones; NULL
    when neither.                                                          */
const shoal_defs_t *shoal_scheduler_definitions (const shoal_scheduler_t *self,
                                                 uint32_t version);

/*  Restores a job from its record (copied) and its class's stages, in
    submission order: a record's seq (when not 0) is kept, and must be
    above every seq restored or given before. The class is looked up in
    the definitions of the record's version when they are the scheduler's
    own or kept; otherwise (version 0, or not kept) in its own, and the
    job takes their version. Returns the job, or NULL with `err` (unknown
    class, stage count that differs from the class's, duplicate id, seq
    out of order).                                                         */
shoal_job_t *shoal_scheduler_restore_job (shoal_scheduler_t *self,
                                          const shoal_job_record_t *record,
                                          const shoal_stage_record_t *stages,
                                          size_t stage_count,
                                          shoal_error_t *err);

/*  Restores a task of `job`, in id order (copied). Returns 0 or an error. */
int shoal_scheduler_restore_task (shoal_scheduler_t *self, shoal_job_t *job,
                                  const shoal_task_record_t *record,
                                  shoal_error_t *err);

/*  Ends a restore: stage counts are recounted, pending tasks queued (or
    put back in their back-off), and tasks that were running wait until
    `now + lease_ms` for their worker to claim them in its HELLO; then they
    run again elsewhere. Nothing restored is reported by the next flush. */
void shoal_scheduler_restore_done (shoal_scheduler_t *self, int64_t now,
                                   int64_t lease_ms);

/*  A worker that says HELLO names the attempts it still holds (or finished
    and has not yet reported). Such an attempt becomes the worker's when it
    is the task's current one and the task was restored as running after a
    controller restart, or is held by an older connection of the same
    worker process. Returns true when the attempt was adopted.            */
bool shoal_scheduler_adopt (shoal_scheduler_t *self, const char *key,
                            const char *job_id, uint32_t task_id,
                            uint32_t attempt, int64_t now);

/* ---- reading the state ---------------------------------------------- */

const char *shoal_job_id (const shoal_job_t *job);
/*  The job's sequence number: submission order, from 1. Jobs held at
    once never share its low 32 bits (a store may key rows by them).      */
uint64_t shoal_job_seq (const shoal_job_t *job);
shoal_job_state_t shoal_job_state (const shoal_job_t *job);
const shoal_job_class_t *shoal_job_class (const shoal_job_t *job);
size_t shoal_job_task_count (const shoal_job_t *job);
shoal_task_t *shoal_job_task (const shoal_job_t *job, uint32_t task_id);

shoal_job_t *shoal_task_job (const shoal_task_t *task);
uint32_t shoal_task_id (const shoal_task_t *task);
uint32_t shoal_task_stage (const shoal_task_t *task);
bool shoal_task_is_spawn (const shoal_task_t *task);
shoal_task_state_t shoal_task_state (const shoal_task_t *task);
uint32_t shoal_task_attempt (const shoal_task_t *task);
const char *shoal_task_worker_name (const shoal_task_t *task);

const char *shoal_worker_key (const shoal_worker_t *worker);
const char *shoal_worker_name (const shoal_worker_t *worker);
uint32_t shoal_worker_busy (const shoal_worker_t *worker);

/*  The task's params: the job's params overlaid by its spawn entry, all
    values strings. New reference; secrets are NOT masked (for the wire). */
json_t *shoal_task_params (const shoal_task_t *task);

/*  The TASK message body for the current attempt. New reference.         */
json_t *shoal_task_wire_body (const shoal_task_t *task);

/*  The same body as JSON text, written without a JSON tree into *buf
    (grown with realloc as needed; *buf and *cap are the caller's, start
    them at NULL and 0 and reuse them). Returns its length, 0 when out of
    memory.                                                                */
size_t shoal_task_wire_text (const shoal_task_t *task, char **buf,
                             size_t *cap);

/*  JSON views for the REST API, secrets masked. New references. The
    whole task list is O(tasks) and only for tests and tools: the REST
    API serves it in pages (shoal_job_tasks_page_to_json).               */
json_t *shoal_job_to_json (const shoal_job_t *job);

/*  The same view of `job` as compact JSON text (the one definition of
    the view: shoal_job_to_json reads it back), written without a JSON
    tree into *buf (not NUL-terminated; grown with realloc as needed, as
    for shoal_task_wire_text). Returns its length, 0 when out of memory.
    The loop answers submissions with it: building a tree took a sixth of
    the loop's time per REST submission.                                   */
size_t shoal_job_view_text (const shoal_job_t *job, char **buf,
                            size_t *cap);
json_t *shoal_job_tasks_to_json (const shoal_job_t *job);

/*  Most tasks one page of a job's task list scans, filters or not: a page
    with a filter that matches few tasks stops here and hands back a
    cursor, so one request never walks a whole 1,000,000-task job.        */
#define SHOAL_TASK_PAGE_SCAN 100000

/*  One page of a job's tasks in id order: the tasks with id >= `from`
    that are in state `state` (-1: any) and stage `stage` (-1: any), at
    most `limit` of them, looking at no more than SHOAL_TASK_PAGE_SCAN
    tasks. {"job": ID, "total": all tasks of the job, "tasks": [...],
    "next": the id to pass as `from` for the next page, as a string, or
    null when no task after this page can match}. A filtered page may
    hold fewer than `limit` tasks, even none, and still have a `next`.
    O(limit + tasks scanned). New reference.                              */
json_t *shoal_job_tasks_page_to_json (const shoal_job_t *job, int state,
                                      int stage, uint32_t from, size_t limit);

/*  The index of the job's stage named `name`, or given as its decimal
    index; -1 when the job has no such stage.                             */
int shoal_job_stage_parse (const shoal_job_t *job, const char *name);

/*  A time as every view shows it: ISO 8601 UTC with milliseconds
    ("2026-11-28T10:00:00.000Z"), or JSON null for 0. A new reference.    */
json_t *shoal_time_json (int64_t ms);
json_t *shoal_task_to_json (const shoal_task_t *task);

/*  Jobs newest first: at most `limit`, with state `state` (-1: any),
    submitted before the job with sequence number `before` (0: from the
    newest). {"jobs": [...], "next": cursor or null}. Sequence numbers
    are not reused: after jobs were forgotten a cursor still starts the
    next page at the right job.                                            */
json_t *shoal_scheduler_jobs_to_json (const shoal_scheduler_t *self,
                                      int state, size_t limit,
                                      uint64_t before);

/*  Connected workers: id, name, host, slots, busy, last heartbeat.       */
json_t *shoal_scheduler_workers_to_json (const shoal_scheduler_t *self);

/*  One worker as in the list above (also for a worker just gone).       */
json_t *shoal_worker_to_json (const shoal_worker_t *worker);

/*  True once the worker said it drains.                                  */
bool shoal_worker_draining (const shoal_worker_t *worker);

#endif
