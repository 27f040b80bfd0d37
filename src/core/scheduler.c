/*  scheduler.c: jobs, stages, tasks and workers as one state machine.

    Data layout, chosen so every hot operation is O(1):
    - each job keeps its tasks in a vector indexed by task id; the tasks of
      a stage are contiguous because stages run one after another;
    - each job keeps a FIFO of ready tasks (linked through the tasks);
    - jobs with ready tasks sit in a round-robin ring, so one dispatch takes
      the next job's oldest task: a huge job cannot starve a small one;
    - workers with a free slot sit in a ring too, so tasks spread over
      workers and a dispatch never searches;
    - each worker links the tasks it holds, so losing it re-queues exactly
      those.

    Job state machine (stage transitions in s_stage_end):

      created --start--> running --last stage ends--> succeeded
                            |--stage fails, job_failed_on_error--> failed

    A task occupies its worker's slot from dispatch until that worker sends
    the attempt's result or is lost, even when the task was canceled in
    between: the process may still be running there.

    Retention: a job that ended is freed by shoal_scheduler_evict once it
    is old enough and nothing points at it any more (see there); lookups
    of its id then fail as for a job never submitted.                     */
#include "shoal/scheduler.h"

#include "shoal/params.h"
#include "shoal/protocol.h"
#include "shoal/spawn.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- data --------------------------------------------------------- */

/*  A task record. Records live in chunks owned by their job (see
    s_task_at), never one allocation each, and a spawned task's params
    overlay stays the JSON text of its spawn entry in the job's entry
    arena, parsed only when the task is sent or shown: a pending task
    costs this struct and the bytes of its entry.                          */
struct shoal_task {
    shoal_job_t *job;            /* owner                                   */
    char *error;                 /* why it failed, NULL when it did not    */
    const char *worker_name;     /* last worker (interned), NULL if none   */
    shoal_worker_t *worker;      /* holder of the current attempt, or NULL */
    shoal_task_t *worker_prev;   /* links in worker->tasks                 */
    shoal_task_t *worker_next;
    int64_t ready_at;            /* when it last became ready, ms          */
    int64_t lease_until;         /* running with no worker (restored after
                                    a restart): re-queued after this, ms   */
    int64_t started_at;          /* dispatch time of the last attempt, ms  */
    int64_t finished_at;         /* ms, 0 while not final                  */
    int64_t duration_ms;         /* as reported by the worker              */
    uint32_t id;                 /* its number in the job, from 0          */
    uint32_t stage;              /* index in the job class's stages        */
    int32_t index;               /* position in its stage, -1: spawn task  */
    uint32_t attempt;            /* dispatches so far; the fence           */
    uint32_t ready_next;         /* id of the next task in the job's ready
                                    FIFO, S_NO_TASK at its end             */
    uint32_t dirty_next;         /* id of the next in the job's changed
                                    tasks, S_NO_TASK at its end            */
    uint16_t losses;             /* times its worker was lost (at most
                                    SHOAL_MAX_WORKER_LOSSES)               */
    uint16_t failures;           /* failed runs so far (retries use them;
                                    at most SHOAL_TASK_MAX_RETRIES)        */
    int64_t wake_at;             /* end of its retry back-off, ms          */
    uint32_t entry_offset;       /* its spawn entry in job->entries        */
    uint32_t entry_size;         /* 0: no entry                            */
    int exit_code;               /* -1 until it exited                     */
    int16_t signal;              /* 0 unless killed by a signal            */
    uint8_t state;               /* a shoal_task_state_t                   */
    bool dirty;                  /* changed since the last flush           */
};

/*  The end of a list of tasks linked by id.                              */
#define S_NO_TASK UINT32_MAX
/*  Jobs held at once never share the low 32 bits of their seq.           */
#define S_SEQ_SPAN ((uint64_t) 1 << 32)

/*  Task chunks of a job: chunk k holds S_CHUNK_FIRST << k records, so a
    job of 2 tasks takes one small chunk and a stage of a million ~18, and
    a record never moves once made.                                        */
#define S_CHUNK_FIRST 4
#define S_CHUNKS 30

/*  One stage of a job. Invariant: counts[] sum to task_count.             */
typedef struct {
    shoal_stage_state_t state;
    uint32_t first_task;         /* id of its first task (the spawn task)  */
    uint32_t task_count;
    uint32_t counts[SHOAL_TASK_STATE_COUNT];
    bool spawn_pending;          /* spawn task has not succeeded yet       */
} s_stage_t;

struct shoal_job {
    shoal_scheduler_t *owner;    /* for the list of changed jobs           */
    char *id;
    const shoal_job_class_t *cls;
    uint32_t definitions;        /* the version of the definitions `cls`
                                    is from (0: none given)                */
    json_t *params;              /* strings, secrets in clear              */
    char *params_text;           /* the same as compact JSON, printed once
                                    for every row the store writes; NULL
                                    when out of memory                     */
    char *error;                 /* why it failed, NULL otherwise          */
    uint64_t seq;                /* submission order, from 1               */
    int64_t created_at;          /* ms                                     */
    int64_t started_at;          /* ms, 0 until started                    */
    int64_t finished_at;         /* ms, 0 until final                      */
    shoal_job_state_t state;
    uint32_t retries;            /* times it was retried after failing     */
    uint32_t stage;              /* current stage while running            */
    s_stage_t *stages;           /* cls->stage_count of them               */
    shoal_task_t *chunks[S_CHUNKS]; /* all tasks by id, see s_task_at     */
    uint32_t task_count;
    char *entries;               /* spawn entries' JSON text, one after
                                    another; tasks hold offsets into it    */
    size_t entries_size;
    size_t entries_cap;
    shoal_task_t *ready_head;    /* FIFO of tasks waiting for a slot       */
    shoal_task_t *ready_tail;
    shoal_job_t *rr_prev;        /* ring of jobs with ready tasks          */
    shoal_job_t *rr_next;
    bool in_rr;
    bool dirty;                  /* changed since the last flush           */
    bool record_changed;         /* its record, as of the flush reporting
                                    it, differs from the last one reported */
    uint64_t record_print;       /* fingerprint of the last one reported,
                                    0 before the first                     */
    bool evicting;               /* chosen by shoal_scheduler_evict, which
                                    clears it or frees the job            */
    uint32_t held;               /* its tasks whose attempt a worker holds:
                                    never forgotten while any is          */
    shoal_job_t *dirty_next;     /* link in the scheduler's changed jobs   */
    shoal_task_t *dirty_tasks;   /* its tasks changed since the last flush */
};

struct shoal_worker {
    char *key;                   /* routing key, hash key in workers       */
    const char *name;            /* interned display name                  */
    char *host;
    char *instance;              /* its process's random id, or NULL       */
    uint32_t slots;              /* tasks it runs at once                  */
    uint32_t queue;              /* tasks it holds beyond that, to start
                                    when a slot frees; credit = both       */
    uint32_t busy;               /* attempts it holds for us               */
    uint32_t untracked;          /* slots taken by tasks we do not track:
                                    running from before a reconnect, or
                                    found by a refusal; busy + untracked
                                    <= slots                               */
    int64_t connected_at;        /* ms                                     */
    int64_t last_seen;           /* ms of its last message                 */
    int64_t told_at;             /* ms of our last message to it (WELCOME,
                                    TASK, CANCEL, HEARTBEAT): any message
                                    is a sign of life to a worker          */
    int64_t told_period;         /* heartbeat period it last heard (ms)    */
    shoal_task_t *tasks;         /* attempts it holds (linked list)        */
    shoal_worker_t *free_prev;   /* ring of workers with a free slot       */
    shoal_worker_t *free_next;
    shoal_worker_t *beat_prev;   /* ring of every worker in the table, */
    shoal_worker_t *beat_next;   /* walked by shoal_scheduler_heartbeats   */
    shoal_worker_t *grave_next;  /* graveyard link once gone               */
    bool in_free;
    bool alive;
    bool draining;               /* finishing before it stops: no new work */
};

/*  The class part of a TASK body, as JSON text (see s_class_wire).       */
typedef struct {
    const shoal_task_class_t *cls;
    char *text;
    size_t size;
} s_class_wire_t;

/*  Definitions that jobs read back were submitted under, other than the
    current ones (owned).                                                  */
typedef struct {
    uint32_t version;
    shoal_defs_t *defs;
} s_kept_defs_t;

struct shoal_scheduler {
    const shoal_defs_t *defs;
    uint32_t definitions;        /* the version of `defs` (0: none given)  */
    s_kept_defs_t *kept;         /* earlier definitions, by version        */
    size_t kept_count;
    size_t kept_cap;
    zhashx_t *jobs;              /* id -> shoal_job_t (owned via vector)   */
    shoal_job_t **job_list;      /* in submission order, so by seq: jobs
                                    forgotten leave gaps in seq, not here  */
    size_t job_count;
    size_t job_cap;
    uint64_t last_seq;           /* seq of the latest job submitted        */
    zhashx_t *workers;           /* key -> shoal_worker_t (freed by hand:
                                    gone workers outlive their entry)      */
    zhashx_t *names;             /* interned worker names                  */
    shoal_worker_t *graveyard;   /* gone workers, freed when no action
                                    can point at them any more             */
    shoal_job_t *dirty_jobs;     /* jobs changed since the last flush, in
                                    the order of their first change, so
                                    new jobs are stored in submission order */
    shoal_job_t *dirty_tail;
    zlistx_t *orphans;           /* tasks restored as running, waiting for
                                    their worker to claim them             */
    shoal_job_t *rr;             /* next job to take a ready task from     */
    shoal_worker_t *free;        /* next worker to give a task to          */
    zlistx_t *waiting;           /* tasks in retry back-off, by wake_at;
                                    entries whose task is no longer
                                    pending are skipped when due           */
    int64_t now;                 /* time of the event being handled       */
    shoal_scheduler_stats_t stats; /* counters; gauges filled on demand    */
    uint64_t ready_count;        /* tasks in ready queues                  */
    uint64_t jobs_active;        /* created or running                     */
    size_t max_spawn_entries;    /* bound on one spawn list                */
    int64_t heartbeat_min_ms;    /* the least period (--heartbeat-ms)      */
    int64_t heartbeat_ms;        /* the period in force, told to workers   */
    int64_t hold_loss_ms;        /* a longer loss deadline kept after the
                                    period shrank ...                      */
    int64_t hold_until;          /* ... until this time                    */
    shoal_worker_t *beat;        /* next worker shoal_scheduler_heartbeats
                                    looks at, in the ring beat_next links  */
    int64_t beat_at;             /* time of its last step                  */
    int64_t beat_credit;         /* workers x ms not yet walked: a step
                                    looks at credit / period workers       */
    s_class_wire_t *class_wire;  /* TASK body parts made so far, by class  */
    size_t class_wire_count;
    size_t class_wire_cap;
    shoal_action_t *actions;     /* FIFO ring buffer of pending actions    */
    size_t action_head;
    size_t action_count;
    size_t action_cap;
};

/* ---- names ------------------------------------------------------- */

static const char *s_job_states[] = { "created", "running", "succeeded",
                                      "failed", "canceled" };
static const char *s_stage_states[] = { "pending", "running", "succeeded",
                                        "failed" };
static const char *s_task_states[] = { "pending", "running", "succeeded",
                                       "failed", "canceled" };

const char *
shoal_job_state_name (shoal_job_state_t state)
{
    return (unsigned) state < SHOAL_JOB_STATE_COUNT ? s_job_states[state] : "?";
}

const char *
shoal_stage_state_name (shoal_stage_state_t state)
{
    return (unsigned) state < SHOAL_STAGE_STATE_COUNT ? s_stage_states[state]
                                                      : "?";
}

const char *
shoal_task_state_name (shoal_task_state_t state)
{
    return (unsigned) state < SHOAL_TASK_STATE_COUNT ? s_task_states[state]
                                                     : "?";
}

int
shoal_job_state_parse (const char *name)
{
    for (int i = 0; i < SHOAL_JOB_STATE_COUNT; i++)
        if (strcmp (name, s_job_states[i]) == 0)
            return i;
    return -1;
}

int
shoal_task_state_parse (const char *name)
{
    for (int i = 0; i < SHOAL_TASK_STATE_COUNT; i++)
        if (strcmp (name, s_task_states[i]) == 0)
            return i;
    return -1;
}

/* ---- lifecycle --------------------------------------------------- */

/*  Chunk of task `id` and its place there.                               */
static inline void
s_task_place (uint32_t id, uint32_t *chunk, uint32_t *offset)
{
    uint32_t n = id / S_CHUNK_FIRST + 1;
    uint32_t k = 31 - (uint32_t) __builtin_clz (n);
    *chunk = k;
    *offset = id - S_CHUNK_FIRST * ((1u << k) - 1);
}

static inline shoal_task_t *
s_task_at (const shoal_job_t *job, uint32_t id)
{
    uint32_t chunk, offset;
    s_task_place (id, &chunk, &offset);
    return &job->chunks[chunk][offset];
}

static void
s_job_free (shoal_job_t *job)
{
    for (uint32_t i = 0; i < job->task_count; i++)
        free (s_task_at (job, i)->error);
    for (size_t k = 0; k < S_CHUNKS; k++)
        free (job->chunks[k]);
    free (job->entries);
    free (job->stages);
    json_decref (job->params);
    free (job->params_text);
    free (job->error);
    free (job->id);
    free (job);
}

static void
s_worker_free (shoal_worker_t *worker)
{
    free (worker->instance);
    free (worker->key);
    free (worker->host);
    free (worker);
}

/*  Orders tasks in back-off by when they are due.                       */
static int
s_wake_compare (const void *a, const void *b)
{
    int64_t x = ((const shoal_task_t *) a)->wake_at;
    int64_t y = ((const shoal_task_t *) b)->wake_at;
    return x < y ? -1 : x > y;
}

shoal_scheduler_t *
shoal_scheduler_new (const shoal_defs_t *defs)
{
    shoal_scheduler_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->defs = defs;
    self->max_spawn_entries = SHOAL_SPAWN_MAX_ENTRIES;
    self->heartbeat_min_ms = SHOAL_HEARTBEAT_MS;
    self->heartbeat_ms = SHOAL_HEARTBEAT_MS;
    self->jobs = zhashx_new ();
    self->workers = zhashx_new ();
    self->names = zhashx_new ();
    self->waiting = zlistx_new ();
    self->orphans = zlistx_new ();
    if (!self->jobs || !self->workers || !self->names || !self->waiting
        || !self->orphans) {
        shoal_scheduler_destroy (&self);
        return NULL;
    }
    /* Names are interned copies: tasks keep pointing at them after the
       worker is gone. The hash duplicates and frees the strings. */
    zhashx_set_duplicator (self->names, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->names, (zhashx_destructor_fn *) zstr_free);
    zlistx_set_comparator (self->waiting, s_wake_compare);
    return self;
}

void
shoal_scheduler_set_max_spawn_entries (shoal_scheduler_t *self,
                                       size_t max_entries)
{
    self->max_spawn_entries = max_entries;
}

int64_t
shoal_heartbeat_period_ms (size_t workers, int64_t minimum_ms)
{
    /* 2 W / B seconds, rounded up to whole seconds (see scheduler.h). */
    int64_t period = ((int64_t) workers * 2 + SHOAL_HEARTBEAT_BUDGET - 1)
                     / SHOAL_HEARTBEAT_BUDGET * 1000;
    if (period > SHOAL_HEARTBEAT_CAP_MS)
        period = SHOAL_HEARTBEAT_CAP_MS;
    return period > minimum_ms ? period : minimum_ms;
}

void
shoal_scheduler_set_heartbeat_ms (shoal_scheduler_t *self,
                                  int64_t heartbeat_ms)
{
    self->heartbeat_min_ms = heartbeat_ms > 0 ? heartbeat_ms
                                              : SHOAL_HEARTBEAT_MS;
    self->heartbeat_ms = shoal_heartbeat_period_ms (
        zhashx_size (self->workers), self->heartbeat_min_ms);
}

int64_t
shoal_scheduler_heartbeat_ms (const shoal_scheduler_t *self)
{
    return self->heartbeat_ms;
}

int64_t
shoal_scheduler_loss_ms (const shoal_scheduler_t *self, int64_t now)
{
    int64_t loss = self->heartbeat_ms * SHOAL_HEARTBEAT_LIVENESS;
    if (now < self->hold_until && self->hold_loss_ms > loss)
        loss = self->hold_loss_ms;
    return loss;
}

/*  Chooses the period for the workers connected now. When it grows, the
    HEARTBEATs of this tick tell every worker, and the longer deadline
    starts at once. When it shrinks, a worker goes on with the old period
    until our HEARTBEAT reaches it, so the deadline in force until now
    stays for as long again.                                               */
static void
s_heartbeat_adapt (shoal_scheduler_t *self, int64_t now)
{
    int64_t period = shoal_heartbeat_period_ms (zhashx_size (self->workers),
                                                self->heartbeat_min_ms);
    if (period == self->heartbeat_ms)
        return;
    int64_t loss = shoal_scheduler_loss_ms (self, now);
    if (period * SHOAL_HEARTBEAT_LIVENESS < loss) {
        self->hold_loss_ms = loss;
        self->hold_until = now + loss;
    }
    self->heartbeat_ms = period;
}

static void
s_graveyard_clear (shoal_scheduler_t *self)
{
    while (self->graveyard) {
        shoal_worker_t *next = self->graveyard->grave_next;
        s_worker_free (self->graveyard);
        self->graveyard = next;
    }
}

void
shoal_scheduler_destroy (shoal_scheduler_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_scheduler_t *self = *self_p;
    for (size_t i = 0; i < self->job_count; i++)
        s_job_free (self->job_list[i]);
    free (self->job_list);
    zhashx_destroy (&self->jobs);
    for (shoal_worker_t *worker = zhashx_first (self->workers); worker;
         worker = zhashx_next (self->workers))
        s_worker_free (worker);
    zhashx_destroy (&self->workers);
    s_graveyard_clear (self);
    zhashx_destroy (&self->names);
    zlistx_destroy (&self->waiting);
    zlistx_destroy (&self->orphans);
    for (size_t i = 0; i < self->class_wire_count; i++)
        free (self->class_wire[i].text);
    free (self->class_wire);
    free (self->actions);
    /* After the jobs and the TASK parts: both point into them. */
    for (size_t i = 0; i < self->kept_count; i++)
        shoal_defs_destroy (&self->kept[i].defs);
    free (self->kept);
    free (self);
    *self_p = NULL;
}

void
shoal_scheduler_set_definitions_version (shoal_scheduler_t *self,
                                         uint32_t version)
{
    self->definitions = version;
}

uint32_t
shoal_scheduler_definitions_version (const shoal_scheduler_t *self)
{
    return self->definitions;
}

int
shoal_scheduler_keep_definitions (shoal_scheduler_t *self, uint32_t version,
                                  shoal_defs_t **defs_p, shoal_error_t *err)
{
    if (self->kept_count == self->kept_cap) {
        size_t cap = self->kept_cap ? 2 * self->kept_cap : 4;
        s_kept_defs_t *grown = realloc (self->kept, cap * sizeof *grown);
        if (!grown) {
            shoal_defs_destroy (defs_p);
            return shoal_error_set (err, SHOAL_ENOMEM, NULL,
                                    "out of memory");
        }
        self->kept = grown;
        self->kept_cap = cap;
    }
    self->kept[self->kept_count++] = (s_kept_defs_t) { version, *defs_p };
    *defs_p = NULL;
    return 0;
}

const shoal_defs_t *
shoal_scheduler_definitions (const shoal_scheduler_t *self, uint32_t version)
{
    if (version == self->definitions)
        return self->defs;
    for (size_t i = 0; i < self->kept_count; i++)
        if (self->kept[i].version == version)
            return self->kept[i].defs;
    return NULL;
}

/* ---- actions ------------------------------------------------------ */

static void
s_emit (shoal_scheduler_t *self, shoal_action_type_t type,
        shoal_worker_t *worker, shoal_task_t *task, shoal_job_t *job)
{
    if (self->action_count == self->action_cap) {
        size_t cap = self->action_cap ? self->action_cap * 2 : 64;
        shoal_action_t *grown = malloc (cap * sizeof *grown);
        assert (grown);   /* the queue only holds what one event caused */
        for (size_t i = 0; i < self->action_count; i++)
            grown[i] = self->actions[(self->action_head + i) % self->action_cap];
        free (self->actions);
        self->actions = grown;
        self->action_cap = cap;
        self->action_head = 0;
    }
    size_t tail = (self->action_head + self->action_count) % self->action_cap;
    self->actions[tail] = (shoal_action_t) {
        .type = type,
        .worker = worker,
        .task = task,
        .job = job,
        .attempt = task ? task->attempt : 0,
    };
    self->action_count++;
}

/*  Whether an action still means what it meant when it was queued.       */
static bool
s_action_current (const shoal_action_t *action)
{
    switch (action->type) {
        case SHOAL_ACTION_DISPATCH:
            return action->worker->alive
                   && action->task->worker == action->worker
                   && action->task->attempt == action->attempt
                   && action->task->state == SHOAL_TASK_RUNNING;
        case SHOAL_ACTION_CANCEL:
            return action->worker->alive
                   && action->task->worker == action->worker
                   && action->task->attempt == action->attempt;
        case SHOAL_ACTION_HEARTBEAT:
            return action->worker->alive;
        case SHOAL_ACTION_WORKER_LOST:
            return true;
        default:
            return true;
    }
}

bool
shoal_scheduler_next_action (shoal_scheduler_t *self, shoal_action_t *action)
{
    while (self->action_count) {
        *action = self->actions[self->action_head];
        self->action_head = (self->action_head + 1) % self->action_cap;
        self->action_count--;
        if (s_action_current (action))
            return true;
    }
    return false;
}

/* ---- rings and queues -------------------------------------------- */

/*  The scheduler's rings (jobs taking turns, workers with a free slot,
    workers to heartbeat) are circular lists threaded through their items
    by a pair of link fields. `head` is the next to serve; an item joins
    just before it, so it comes last in the round, and one that leaves
    while it is the head hands that place to the item after it.          */
#define S_RING_INSERT(head, item, prev, next)                              \
    do {                                                                   \
        if (!(head)) {                                                     \
            (item)->prev = (item)->next = (item);                          \
            (head) = (item);                                               \
        }                                                                  \
        else {                                                             \
            (item)->next = (head);                                         \
            (item)->prev = (head)->prev;                                   \
            (item)->prev->next = (item);                                   \
            (head)->prev = (item);                                         \
        }                                                                  \
    } while (0)

#define S_RING_REMOVE(head, item, prev, next)                              \
    do {                                                                   \
        if ((item)->next == (item))                                        \
            (head) = NULL;                                                 \
        else {                                                             \
            (item)->prev->next = (item)->next;                             \
            (item)->next->prev = (item)->prev;                             \
            if ((head) == (item))                                          \
                (head) = (item)->next;                                     \
        }                                                                  \
        (item)->prev = (item)->next = NULL;                                \
    } while (0)

/*  Attempts a worker may hold: its slots and its queue.                  */
static uint32_t
s_capacity (const shoal_worker_t *worker)
{
    return worker->slots + worker->queue;
}

static void
s_rr_add (shoal_scheduler_t *self, shoal_job_t *job)
{
    if (job->in_rr)
        return;
    job->in_rr = true;
    S_RING_INSERT (self->rr, job, rr_prev, rr_next);
}

static void
s_rr_remove (shoal_scheduler_t *self, shoal_job_t *job)
{
    if (!job->in_rr)
        return;
    job->in_rr = false;
    S_RING_REMOVE (self->rr, job, rr_prev, rr_next);
}

static void
s_free_add (shoal_scheduler_t *self, shoal_worker_t *worker)
{
    if (worker->in_free || !worker->alive || worker->draining
        || worker->busy + worker->untracked >= s_capacity (worker))
        return;
    worker->in_free = true;
    S_RING_INSERT (self->free, worker, free_prev, free_next);
}

static void
s_free_remove (shoal_scheduler_t *self, shoal_worker_t *worker)
{
    if (!worker->in_free)
        return;
    worker->in_free = false;
    S_RING_REMOVE (self->free, worker, free_prev, free_next);
}

/*  A new worker joins the heartbeat ring just behind the next one looked
    at: its first look comes a period after its WELCOME, when it is due. */
static void
s_beat_add (shoal_scheduler_t *self, shoal_worker_t *worker)
{
    S_RING_INSERT (self->beat, worker, beat_prev, beat_next);
}

static void
s_beat_remove (shoal_scheduler_t *self, shoal_worker_t *worker)
{
    S_RING_REMOVE (self->beat, worker, beat_prev, beat_next);
}

static void
s_ready_push (shoal_scheduler_t *self, shoal_task_t *task, bool front)
{
    shoal_job_t *job = task->job;
    task->ready_next = S_NO_TASK;
    task->ready_at = self->now;
    self->ready_count++;
    if (!job->ready_head)
        job->ready_head = job->ready_tail = task;
    else if (front) {
        task->ready_next = job->ready_head->id;
        job->ready_head = task;
    }
    else {
        job->ready_tail->ready_next = task->id;
        job->ready_tail = task;
    }
    s_rr_add (self, job);
}

static shoal_task_t *
s_ready_pop (shoal_job_t *job)
{
    shoal_task_t *task = job->ready_head;
    if (task) {
        job->owner->ready_count--;
        job->ready_head = task->ready_next == S_NO_TASK
                              ? NULL : s_task_at (job, task->ready_next);
        if (!job->ready_head)
            job->ready_tail = NULL;
        task->ready_next = S_NO_TASK;
    }
    return task;
}

/*  Attaches the current attempt of `task` to `worker`'s slot.            */
static void
s_hold (shoal_scheduler_t *self, shoal_worker_t *worker, shoal_task_t *task)
{
    task->worker = worker;
    task->worker_prev = NULL;
    task->worker_next = worker->tasks;
    if (worker->tasks)
        worker->tasks->worker_prev = task;
    worker->tasks = task;
    worker->busy++;
    task->job->held++;
    if (worker->busy + worker->untracked >= s_capacity (worker))
        s_free_remove (self, worker);
}

/*  Gives `task`'s slot back to its worker.                                */
static void
s_release (shoal_scheduler_t *self, shoal_task_t *task)
{
    shoal_worker_t *worker = task->worker;
    if (!worker)
        return;
    if (task->worker_prev)
        task->worker_prev->worker_next = task->worker_next;
    else
        worker->tasks = task->worker_next;
    if (task->worker_next)
        task->worker_next->worker_prev = task->worker_prev;
    task->worker_prev = task->worker_next = NULL;
    task->worker = NULL;
    worker->busy--;
    task->job->held--;
    s_free_add (self, worker);
}

/* ---- changes to persist ------------------------------------------- */

static void
s_touch_job (shoal_job_t *job)
{
    if (job->dirty)
        return;
    job->dirty = true;
    job->dirty_next = NULL;
    shoal_scheduler_t *owner = job->owner;
    if (owner->dirty_tail)
        owner->dirty_tail->dirty_next = job;
    else
        owner->dirty_jobs = job;
    owner->dirty_tail = job;
}

static void
s_touch_task (shoal_task_t *task)
{
    s_touch_job (task->job);
    if (task->dirty)
        return;
    task->dirty = true;
    task->dirty_next = task->job->dirty_tasks ? task->job->dirty_tasks->id
                                              : S_NO_TASK;
    task->job->dirty_tasks = task;
}

/* ---- counting ------------------------------------------------------ */

static void
s_task_set_state (shoal_task_t *task, shoal_task_state_t state)
{
    s_touch_task (task);
    shoal_scheduler_stats_t *stats = &task->job->owner->stats;
    if (state == SHOAL_TASK_RUNNING)
        stats->tasks_running++;
    if (task->state == SHOAL_TASK_RUNNING)
        stats->tasks_running--;
    if (state >= SHOAL_TASK_SUCCEEDED && task->state != state)
        stats->tasks_finished[state]++;
    s_stage_t *stage = &task->job->stages[task->stage];
    stage->counts[task->state]--;
    stage->counts[state]++;
    task->state = state;
}

/*  Makes room for `size` more bytes of spawn entries. 0 or an error code:
    offsets are 32-bit, so one job keeps at most 4 GiB of entries.        */
static int
s_entries_reserve (shoal_job_t *job, size_t size)
{
    if (size > UINT32_MAX - job->entries_size)
        return SHOAL_ELIMIT;
    if (job->entries_size + size <= job->entries_cap)
        return 0;
    size_t cap = job->entries_cap ? job->entries_cap : 256;
    while (cap < job->entries_size + size)
        cap *= 2;
    char *grown = realloc (job->entries, cap);
    if (!grown)
        return SHOAL_ENOMEM;
    job->entries = grown;
    job->entries_cap = cap;
    return 0;
}

static shoal_task_t *
s_task_new (shoal_job_t *job, uint32_t stage, int32_t index,
            const char *entry, size_t entry_size)
{
    if (job->task_count == UINT32_MAX
        || (entry_size && s_entries_reserve (job, entry_size)))
        return NULL;
    uint32_t chunk, offset;
    s_task_place (job->task_count, &chunk, &offset);
    if (!job->chunks[chunk]) {
        /* Untouched pages of a large chunk cost no memory until used. */
        job->chunks[chunk] = calloc ((size_t) S_CHUNK_FIRST << chunk,
                                     sizeof (shoal_task_t));
        if (!job->chunks[chunk])
            return NULL;
    }
    shoal_task_t *task = &job->chunks[chunk][offset];
    task->job = job;
    task->id = job->task_count++;
    task->stage = stage;
    task->index = index;
    if (entry_size) {
        task->entry_offset = (uint32_t) job->entries_size;
        task->entry_size = (uint32_t) entry_size;
        memcpy (job->entries + job->entries_size, entry, entry_size);
        job->entries_size += entry_size;
    }
    task->exit_code = -1;
    task->ready_next = task->dirty_next = S_NO_TASK;
    task->state = SHOAL_TASK_PENDING;
    s_touch_task (task);
    s_stage_t *s = &job->stages[stage];
    s->task_count++;
    s->counts[SHOAL_TASK_PENDING]++;
    return task;
}

/* ---- dispatch ------------------------------------------------------ */

/*  Hands ready tasks to free slots until one of the two runs out. Each
    round takes one task from the next job in the ring and gives it to the
    next worker in the free ring: fair between jobs, spread over workers. */
static void
s_dispatch (shoal_scheduler_t *self, int64_t now)
{
    while (self->rr && self->free) {
        shoal_job_t *job = self->rr;
        shoal_task_t *task = s_ready_pop (job);
        if (!job->ready_head)
            s_rr_remove (self, job);
        else
            self->rr = job->rr_next;
        if (!task)
            continue;
        shoal_worker_t *worker = self->free;
        self->free = worker->free_next;
        task->attempt++;
        task->started_at = now;
        shoal_histogram_observe (&self->stats.queue_wait,
                                 (double) (now - task->ready_at) / 1000.0);
        task->worker_name = worker->name;
        s_task_set_state (task, SHOAL_TASK_RUNNING);
        s_hold (self, worker, task);
        worker->told_at = now;
        s_emit (self, SHOAL_ACTION_DISPATCH, worker, task, job);
    }
}

/* ---- stages and jobs ------------------------------------------------- */

static void s_stage_start (shoal_scheduler_t *self, shoal_job_t *job,
                           uint32_t index, int64_t now);
static void s_expire_orphans (shoal_scheduler_t *self, int64_t now);

static void
s_job_end (shoal_scheduler_t *self, shoal_job_t *job, shoal_job_state_t state,
           const char *error, int64_t now)
{
    /* Nothing waiting may start; whatever runs is told to stop. */
    shoal_task_t *task;
    while ((task = s_ready_pop (job)))
        s_task_set_state (task, SHOAL_TASK_CANCELED);
    s_rr_remove (self, job);
    for (uint32_t i = 0; i < job->task_count; i++) {
        task = s_task_at (job, i);
        if (task->state == SHOAL_TASK_PENDING)  /* in retry back-off */
            s_task_set_state (task, SHOAL_TASK_CANCELED);
        if (task->state == SHOAL_TASK_RUNNING) {
            s_task_set_state (task, SHOAL_TASK_CANCELED);
            task->finished_at = now;
            /* A task read back as running has no worker until one claims
               it: there is nobody to tell, and no claim is taken now. */
            if (task->worker) {
                task->worker->told_at = now;
                s_emit (self, SHOAL_ACTION_CANCEL, task->worker, task, job);
            }
        }
    }
    job->state = state;
    job->finished_at = now;
    if (error && !job->error)
        job->error = strdup (error);
    s_touch_job (job);
    self->stats.jobs_finished[state]++;
    self->jobs_active--;
    s_emit (self, SHOAL_ACTION_JOB_ENDED, NULL, NULL, job);
}

/*  Called when a stage may have ended: ends it if nothing is left to run,
    then starts the next stage or ends the job.                            */
static void
s_stage_check (shoal_scheduler_t *self, shoal_job_t *job, int64_t now)
{
    s_stage_t *stage = &job->stages[job->stage];
    if (job->state != SHOAL_JOB_RUNNING || stage->state != SHOAL_STAGE_RUNNING)
        return;
    if (stage->spawn_pending || stage->counts[SHOAL_TASK_PENDING]
        || stage->counts[SHOAL_TASK_RUNNING])
        return;
    stage->state = stage->counts[SHOAL_TASK_FAILED] ? SHOAL_STAGE_FAILED
                                                     : SHOAL_STAGE_SUCCEEDED;
    if (job->stage + 1 < job->cls->stage_count)
        s_stage_start (self, job, job->stage + 1, now);
    else
        s_job_end (self, job, SHOAL_JOB_SUCCEEDED, NULL, now);
}

static void
s_stage_start (shoal_scheduler_t *self, shoal_job_t *job, uint32_t index,
               int64_t now)
{
    const shoal_stage_def_t *def = &job->cls->stages[index];
    s_stage_t *stage = &job->stages[index];
    s_touch_job (job);
    job->stage = index;
    stage->state = SHOAL_STAGE_RUNNING;
    stage->first_task = job->task_count;
    stage->spawn_pending = def->spawn_task != NULL;
    shoal_task_t *task = s_task_new (job, index, def->spawn_task ? -1 : 0,
                                     NULL, 0);
    if (!task) {
        stage->spawn_pending = false;
        stage->state = SHOAL_STAGE_FAILED;
        s_job_end (self, job, SHOAL_JOB_FAILED, "out of memory", now);
        return;
    }
    s_ready_push (self, task, false);
}

typedef struct {
    shoal_scheduler_t *self;
    shoal_task_t *spawn;
} s_fan_t;

static int
s_fan_entry (void *arg, size_t index, const char *text, size_t size)
{
    s_fan_t *fan = arg;
    /* "{}" overlays nothing: keep no text for it. */
    bool empty = size == 2 && text[0] == '{';
    shoal_task_t *task = s_task_new (fan->spawn->job, fan->spawn->stage,
                                     (int32_t) index, text, empty ? 0 : size);
    if (!task)
        return SHOAL_ENOMEM;
    s_ready_push (fan->self, task, false);
    return 0;
}

/*  Fans a stage out from a spawn list, given as its JSON text: one task
    per entry. The text is checked whole (and its entries counted) before
    the first task is made, so a refused list leaves nothing behind.      */
static int
s_fan_out (shoal_scheduler_t *self, shoal_task_t *spawn, const char *text,
           size_t size, shoal_error_t *err)
{
    size_t count;
    int rc = shoal_spawn_scan (text, size, self->max_spawn_entries, NULL,
                               NULL, &count, err);
    if (rc == SHOAL_ELIMIT) {
        char why[sizeof err->message];
        snprintf (why, sizeof why, "%s", err->message);
        return shoal_error_set (err, SHOAL_ELIMIT, err->field,
                                "%s (shoal-controller --max-spawn-entries)",
                                why);
    }
    if (rc)
        return rc;
    shoal_job_t *job = spawn->job;
    if (count > UINT32_MAX - job->task_count
        || s_entries_reserve (job, size))
        return shoal_error_set (err, SHOAL_ELIMIT, SHOAL_SPAWN_FILE,
                                "%s: %zu tasks and %zu bytes of entries are "
                                "more than one job holds", SHOAL_SPAWN_FILE,
                                count, size);
    s_fan_t fan = { self, spawn };
    rc = shoal_spawn_scan (text, size, self->max_spawn_entries, s_fan_entry,
                           &fan, NULL, err);
    if (rc)
        return shoal_error_set (err, SHOAL_ENOMEM, NULL,
                                "out of memory fanning out %zu spawn entries",
                                count);
    return 0;
}

/*  Describes a failed attempt for the task's `error` field.              */
static void
s_describe_failure (const shoal_result_t *result, char *buf, size_t size)
{
    switch (result->status) {
        case SHOAL_RESULT_EXITED:
            snprintf (buf, size, "exited with code %d", result->exit_code);
            break;
        case SHOAL_RESULT_SIGNALED:
            snprintf (buf, size, "killed by signal %d", result->signal);
            break;
        case SHOAL_RESULT_CANCELED:
            snprintf (buf, size, "canceled");
            break;
        case SHOAL_RESULT_TIMEOUT:
            snprintf (buf, size, "%s", result->error ? result->error
                                                     : "timed out");
            break;
        default:
            snprintf (buf, size, "%s", result->error ? result->error : "error");
            break;
    }
}

/*  Puts a failed task in retry back-off when its class allows another
    run. Only runs that did run and failed are retried: a command that
    cannot start or an input with no value would fail the same way again. */
static bool
s_retry_later (shoal_scheduler_t *self, shoal_task_t *task,
               const shoal_result_t *result, const char *why, int64_t now)
{
    const shoal_stage_def_t *def = &task->job->cls->stages[task->stage];
    const shoal_task_class_t *cls = task->index < 0 ? def->spawn_task
                                                    : def->task_class;
    bool ran = result->status == SHOAL_RESULT_EXITED
               || result->status == SHOAL_RESULT_SIGNALED
               || result->status == SHOAL_RESULT_TIMEOUT;
    if (!ran || task->failures >= cls->retries)
        return false;
    task->failures++;
    int64_t delay = SHOAL_RETRY_BASE_MS;
    for (uint32_t i = 1; i < task->failures && delay < SHOAL_RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > SHOAL_RETRY_MAX_MS)
        delay = SHOAL_RETRY_MAX_MS;
    task->wake_at = now + delay;
    free (task->error);
    task->error = strdup (why);   /* the last failure, while it waits */
    s_task_set_state (task, SHOAL_TASK_PENDING);
    /* Sorted insert searching from the back, where later wake-ups go. */
    zlistx_insert (self->waiting, task, false);
    return true;
}

/*  Records that `task` failed with `why` and applies the stage's policy.  */
static void
s_task_failed (shoal_scheduler_t *self, shoal_task_t *task, const char *why,
               int64_t now)
{
    shoal_job_t *job = task->job;
    free (task->error);
    task->error = strdup (why);
    task->finished_at = now;
    s_task_set_state (task, SHOAL_TASK_FAILED);
    s_stage_t *stage = &job->stages[task->stage];
    if (task->index < 0)
        stage->spawn_pending = false;   /* nothing will be fanned out */
    const shoal_stage_def_t *def = &job->cls->stages[task->stage];
    if (def->job_failed_on_error) {
        char error[700];
        if (task->index < 0)
            snprintf (error, sizeof error,
                      "stage '%s': spawn task %u failed: %s", def->name,
                      task->id, why);
        else
            snprintf (error, sizeof error, "stage '%s': task %u failed: %s",
                      def->name, task->id, why);
        stage->state = SHOAL_STAGE_FAILED;
        s_job_end (self, job, SHOAL_JOB_FAILED, error, now);
        return;
    }
    s_stage_check (self, job, now);
}

/*  The index in job_list of the first job with seq >= `seq` (job_count
    when there is none): forgotten jobs leave gaps in seq, so it is
    searched for, O(log jobs).                                            */
static size_t
s_job_lower_bound (const shoal_scheduler_t *self, uint64_t seq)
{
    size_t low = 0, end = self->job_count;
    while (low < end) {
        size_t mid = low + (end - low) / 2;
        if (self->job_list[mid]->seq < seq)
            low = mid + 1;
        else
            end = mid;
    }
    return low;
}

/*  Whether a job held has a seq with the same low 32 bits as `seq`.      */
static bool
s_seq_low_bits_taken (const shoal_scheduler_t *self, uint64_t seq)
{
    uint64_t oldest = self->job_list[0]->seq;
    for (uint64_t other = seq - S_SEQ_SPAN; other >= oldest && other < seq;
         other -= S_SEQ_SPAN) {
        size_t at = s_job_lower_bound (self, other);
        if (at < self->job_count && self->job_list[at]->seq == other)
            return true;
    }
    return false;
}

/*  The next job's seq: one past the last, skipping any whose low 32 bits
    a job still held has. That can only happen once 2^32 jobs came after
    the oldest one held, so the first test almost always ends it.         */
static uint64_t
s_next_seq (const shoal_scheduler_t *self)
{
    uint64_t seq = self->last_seq + 1;
    while (self->job_count && seq - self->job_list[0]->seq >= S_SEQ_SPAN
           && s_seq_low_bits_taken (self, seq))
        seq++;
    return seq;
}

shoal_job_t *
shoal_scheduler_submit (shoal_scheduler_t *self, const char *id,
                        const shoal_job_class_t *job_class, json_t *params,
                        bool start, int64_t now, shoal_error_t *err)
{
    self->now = now;
    if (zhashx_lookup (self->jobs, id)) {
        json_decref (params);
        shoal_error_set (err, SHOAL_EINVAL, "id", "job id '%s' is taken", id);
        return NULL;
    }
    if (self->job_count == self->job_cap) {
        size_t cap = self->job_cap ? self->job_cap * 2 : 64;
        shoal_job_t **grown = realloc (self->job_list, cap * sizeof *grown);
        if (!grown) {
            json_decref (params);
            shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
            return NULL;
        }
        self->job_list = grown;
        self->job_cap = cap;
    }
    shoal_job_t *job = calloc (1, sizeof *job);
    if (job) {
        job->id = strdup (id);
        job->stages = calloc (job_class->stage_count, sizeof *job->stages);
    }
    if (!job || !job->id || !job->stages) {
        if (job) {
            free (job->id);
            free (job->stages);
            free (job);
        }
        json_decref (params);
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->stats.jobs_submitted++;
    self->jobs_active++;
    job->owner = self;
    job->cls = job_class;
    job->definitions = self->definitions;
    job->params = params;
    job->params_text = json_dumps (params, JSON_COMPACT);
    job->seq = self->last_seq = s_next_seq (self);
    s_touch_job (job);
    job->created_at = now;
    job->state = SHOAL_JOB_CREATED;
    self->job_list[self->job_count++] = job;
    zhashx_insert (self->jobs, job->id, job);
    if (start)
        shoal_scheduler_start (self, id, now, NULL);
    return job;
}

int
shoal_scheduler_start (shoal_scheduler_t *self, const char *id, int64_t now,
                       shoal_error_t *err)
{
    self->now = now;
    shoal_job_t *job = zhashx_lookup (self->jobs, id);
    if (!job)
        return shoal_error_set (err, SHOAL_ENOTFOUND, "id", "no job '%s'", id);
    if (job->state != SHOAL_JOB_CREATED)
        return shoal_error_set (err, SHOAL_ESTATE, "state",
                                "job '%s' is %s, not created", id,
                                shoal_job_state_name (job->state));
    job->state = SHOAL_JOB_RUNNING;
    job->started_at = now;
    s_touch_job (job);
    s_stage_start (self, job, 0, now);
    s_dispatch (self, now);
    return 0;
}

int
shoal_scheduler_cancel (shoal_scheduler_t *self, const char *id, int64_t now,
                        shoal_error_t *err)
{
    self->now = now;
    shoal_job_t *job = zhashx_lookup (self->jobs, id);
    if (!job)
        return shoal_error_set (err, SHOAL_ENOTFOUND, "id", "no job '%s'", id);
    if (job->state != SHOAL_JOB_CREATED && job->state != SHOAL_JOB_RUNNING)
        return shoal_error_set (err, SHOAL_ESTATE, "state",
                                "job '%s' has already ended: %s", id,
                                shoal_job_state_name (job->state));
    if (job->state == SHOAL_JOB_RUNNING)
        job->stages[job->stage].spawn_pending = false;
    s_job_end (self, job, SHOAL_JOB_CANCELED, "canceled on request", now);
    if (job->stages[job->stage].state == SHOAL_STAGE_RUNNING)
        job->stages[job->stage].state = SHOAL_STAGE_FAILED;
    s_dispatch (self, now);
    return 0;
}

int
shoal_scheduler_retry (shoal_scheduler_t *self, const char *id, int64_t now,
                       shoal_error_t *err)
{
    self->now = now;
    shoal_job_t *job = zhashx_lookup (self->jobs, id);
    if (!job)
        return shoal_error_set (err, SHOAL_ENOTFOUND, "id", "no job '%s'", id);
    if (job->state != SHOAL_JOB_FAILED)
        return shoal_error_set (err, SHOAL_ESTATE, "state",
                                "job '%s' is %s; only a failed job can be "
                                "retried", id,
                                shoal_job_state_name (job->state));
    /* The failed stage starts afresh: its counters restart from zero and
       its new tasks are appended; the old ones keep their final states
       and are no longer counted. */
    s_stage_t *stage = &job->stages[job->stage];
    memset (stage, 0, sizeof *stage);
    free (job->error);
    job->error = NULL;
    job->finished_at = 0;
    job->retries++;
    self->jobs_active++;
    job->state = SHOAL_JOB_RUNNING;
    s_stage_start (self, job, job->stage, now);
    s_dispatch (self, now);
    return 0;
}

shoal_job_t *
shoal_scheduler_job (shoal_scheduler_t *self, const char *id)
{
    return zhashx_lookup (self->jobs, id);
}

size_t
shoal_scheduler_job_count (const shoal_scheduler_t *self)
{
    return self->job_count;
}

size_t
shoal_scheduler_worker_count (const shoal_scheduler_t *self)
{
    return zhashx_size (self->workers);
}

shoal_job_t *
shoal_scheduler_job_at (const shoal_scheduler_t *self, size_t index)
{
    return index < self->job_count ? self->job_list[index] : NULL;
}

/* ---- workers ------------------------------------------------------ */

static const char *
s_intern (shoal_scheduler_t *self, const char *name)
{
    const char *interned = zhashx_lookup (self->names, name);
    if (!interned) {
        /* The hash's duplicator copies the item; key and item are the
           same text, so look the copy up again. */
        zhashx_insert (self->names, name, (void *) name);
        interned = zhashx_lookup (self->names, name);
    }
    return interned;
}

shoal_worker_t *
shoal_scheduler_worker_hello (shoal_scheduler_t *self, const char *key,
                              const char *name, const char *host,
                              uint32_t slots, uint32_t running, int64_t now)
{
    self->now = now;
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker) {
        worker = calloc (1, sizeof *worker);
        if (!worker)
            return NULL;
        worker->key = strdup (key);
        worker->host = strdup (host);
        if (!worker->key || !worker->host) {
            s_worker_free (worker);
            return NULL;
        }
        worker->alive = true;
        worker->connected_at = now;
        zhashx_insert (self->workers, worker->key, worker);
        s_beat_add (self, worker);
    }
    worker->name = s_intern (self, name);
    worker->slots = slots;
    worker->last_seen = now;
    /* The WELCOME that answers this HELLO tells the period. */
    worker->told_at = now;
    worker->told_period = self->heartbeat_ms;
    /* It runs `running` tasks; those we hold for it are among them. */
    worker->untracked = running > worker->busy ? running - worker->busy : 0;
    if (worker->busy + worker->untracked < s_capacity (worker))
        s_free_add (self, worker);
    else
        s_free_remove (self, worker);
    s_dispatch (self, now);
    return worker;
}

void
shoal_scheduler_worker_queue (shoal_scheduler_t *self, const char *key,
                              uint32_t queue)
{
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker)
        return;
    worker->queue = queue;
    s_free_remove (self, worker);
    s_free_add (self, worker);
    s_dispatch (self, self->now);
}

const char *
shoal_scheduler_worker_instance (shoal_scheduler_t *self, const char *key,
                                 const char *instance)
{
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker || !instance || !*instance)
        return NULL;
    free (worker->instance);
    worker->instance = strdup (instance);
    /* O(workers), once per HELLO. */
    for (shoal_worker_t *other = zhashx_first (self->workers); other;
         other = zhashx_next (self->workers))
        if (other != worker && other->instance
            && streq (other->instance, instance))
            return other->key;
    return NULL;
}

shoal_worker_t *
shoal_scheduler_worker_seen (shoal_scheduler_t *self, const char *key,
                             int64_t now)
{
    self->now = now;
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (worker)
        worker->last_seen = now;
    return worker;
}

void
shoal_scheduler_worker_drain (shoal_scheduler_t *self, const char *key)
{
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker)
        return;
    worker->draining = true;
    s_free_remove (self, worker);
}

void
shoal_scheduler_worker_gone (shoal_scheduler_t *self, const char *key,
                             bool lost, int64_t now)
{
    self->now = now;
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker)
        return;
    s_free_remove (self, worker);
    worker->alive = false;
    while (worker->tasks) {
        shoal_task_t *task = worker->tasks;
        s_release (self, task);
        if (task->state != SHOAL_TASK_RUNNING)
            continue;   /* canceled meanwhile: nothing to re-run */
        if (lost)
            task->losses++;
        if (task->losses >= SHOAL_MAX_WORKER_LOSSES) {
            char why[128];
            snprintf (why, sizeof why, "worker lost %u times",
                      task->losses);
            s_task_failed (self, task, why, now);
            continue;
        }
        s_task_set_state (task, SHOAL_TASK_PENDING);
        s_ready_push (self, task, true);
    }
    if (lost)
        s_emit (self, SHOAL_ACTION_WORKER_LOST, worker, NULL, NULL);
    /* Out of the table now; the memory goes to the graveyard because
       queued actions may still point at it. */
    zhashx_delete (self->workers, key);
    s_beat_remove (self, worker);
    worker->grave_next = self->graveyard;
    self->graveyard = worker;
    s_dispatch (self, now);
}

void
shoal_scheduler_unsent (shoal_scheduler_t *self, shoal_task_t *task,
                        uint32_t attempt, int64_t now)
{
    self->now = now;
    if (task->attempt != attempt || task->state != SHOAL_TASK_RUNNING
        || !task->worker)
        return;
    s_release (self, task);
    s_task_set_state (task, SHOAL_TASK_PENDING);
    s_ready_push (self, task, true);
}

int
shoal_scheduler_result (shoal_scheduler_t *self, const char *key,
                        const char *job_id, uint32_t task_id,
                        uint32_t attempt, const shoal_result_t *result,
                        int64_t now, shoal_error_t *err)
{
    self->now = now;
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    if (!worker)
        return shoal_error_set (err, SHOAL_ENOTFOUND, "worker",
                                "result from an unknown worker");
    worker->last_seen = now;
    shoal_job_t *job = zhashx_lookup (self->jobs, job_id);
    shoal_task_t *task = job && task_id < job->task_count ? s_task_at (job, task_id)
                                                          : NULL;
    if (!task || task->worker != worker || task->attempt != attempt) {
        /* Not an attempt we placed there: one of the untracked slots the
           worker reported has come free. */
        if (worker->untracked) {
            worker->untracked--;
            s_free_add (self, worker);
            s_dispatch (self, now);
        }
        if (!task)
            return shoal_error_set (err, SHOAL_ENOTFOUND, "task",
                                    "result for unknown task %s/%u", job_id,
                                    task_id);
        return shoal_error_set (err, SHOAL_ESTATE, "attempt",
                                "stale result for task %s/%u attempt %u "
                                "(current %u)", job_id, task_id, attempt,
                                task->attempt);
    }
    s_release (self, task);
    if (result->status == SHOAL_RESULT_REFUSED) {
        /* The worker is fuller than we knew: count the slot as taken by
           something untracked, and give the task to someone else. */
        if (worker->busy + worker->untracked < s_capacity (worker))
            worker->untracked++;
        s_free_remove (self, worker);
        s_free_add (self, worker);
        if (task->state == SHOAL_TASK_RUNNING) {
            s_task_set_state (task, SHOAL_TASK_PENDING);
            s_ready_push (self, task, true);
        }
        s_dispatch (self, now);
        return 0;
    }
    if (task->state == SHOAL_TASK_RUNNING) {
        task->duration_ms = result->duration_ms;
        shoal_histogram_observe (&self->stats.task_duration,
                                 (double) result->duration_ms / 1000.0);
        task->exit_code = result->status == SHOAL_RESULT_EXITED
                              ? result->exit_code : -1;
        task->signal = result->status == SHOAL_RESULT_SIGNALED
                           ? result->signal : 0;
        bool ok = result->status == SHOAL_RESULT_EXITED
                  && result->exit_code == 0;
        if (ok && task->index < 0) {
            shoal_error_t spawn_err = { 0 };
            const char *list = result->spawn_text;
            size_t list_size = result->spawn_size;
            char *dumped = NULL;
            if (!list && result->spawn) {
                dumped = json_dumps (result->spawn, JSON_COMPACT);
                list = dumped;
                list_size = dumped ? strlen (dumped) : 0;
            }
            if (!list)
                shoal_error_set (&spawn_err, SHOAL_EINVAL, "spawn",
                                 "spawn task sent no spawn list");
            int fanned = list ? s_fan_out (self, task, list, list_size,
                                           &spawn_err) : SHOAL_EINVAL;
            free (dumped);
            if (fanned) {
                s_task_failed (self, task, spawn_err.message, now);
                s_dispatch (self, now);
                return 0;
            }
            job->stages[task->stage].spawn_pending = false;
        }
        if (ok) {
            task->finished_at = now;
            s_task_set_state (task, SHOAL_TASK_SUCCEEDED);
            s_stage_check (self, job, now);
        }
        else {
            char why[600];
            s_describe_failure (result, why, sizeof why);
            if (!s_retry_later (self, task, result, why, now))
                s_task_failed (self, task, why, now);
        }
    }
    s_dispatch (self, now);
    return 0;
}

/*  The ring is walked at W workers per period, a step every
    S_BEAT_STEP_MS at least (fewer workers: one each P / W). At 10,000
    workers and 4 s that is 62 workers a step: a step holds the loop up
    for well under a millisecond, and shares its wake-ups. Measured with
    10,000 idle workers, steps of 10, 25, 50 and 100 ms cost 6.6, 6.1,
    5.4 and 5.2 % of a core (all at once: 5.0 %).                        */
#define S_BEAT_STEP_MS 25

int64_t
shoal_scheduler_heartbeat_due (const shoal_scheduler_t *self)
{
    size_t workers = zhashx_size (self->workers);
    if (!workers)
        return -1;
    int64_t step = self->heartbeat_ms / (int64_t) workers;
    if (step < S_BEAT_STEP_MS)
        step = S_BEAT_STEP_MS;
    return self->beat_at + step;
}

void
shoal_scheduler_heartbeats (shoal_scheduler_t *self, int64_t now)
{
    self->now = now;
    int64_t period = self->heartbeat_ms;
    int64_t workers = (int64_t) zhashx_size (self->workers);
    int64_t elapsed = now - self->beat_at;
    self->beat_at = now;
    if (elapsed <= 0 || !workers)
        return;
    if (elapsed > period)
        elapsed = period;   /* a late step looks at each worker once */
    self->beat_credit += elapsed * workers;
    int64_t looks = self->beat_credit / period;
    self->beat_credit %= period;
    if (looks > workers)
        looks = workers;
    for (int64_t i = 0; i < looks && self->beat; i++) {
        shoal_worker_t *worker = self->beat;
        self->beat = worker->beat_next;
        /* A worker we sent a TASK or a CANCEL in the last half period
           has heard from us (any message is a sign of life to it): no
           HEARTBEAT. A busy cluster thus gets none. We are silent to a
           worker for 1.5 periods at most, against the
           SHOAL_HEARTBEAT_LIVENESS it waits. */
        if (now - worker->told_at >= period / 2) {
            worker->told_at = now;
            worker->told_period = period;
            s_emit (self, SHOAL_ACTION_HEARTBEAT, worker, NULL, NULL);
        }
    }
}

void
shoal_scheduler_tick (shoal_scheduler_t *self, int64_t now)
{
    self->now = now;
    if (!self->action_count)
        s_graveyard_clear (self);
    s_heartbeat_adapt (self, now);
    int64_t deadline = shoal_scheduler_loss_ms (self, now);
    /* Collect first: worker_gone changes the table we walk. O(workers). */
    zlistx_t *lost = zlistx_new ();
    for (shoal_worker_t *worker = zhashx_first (self->workers); worker;
         worker = zhashx_next (self->workers)) {
        if (now - worker->last_seen > deadline)
            zlistx_add_end (lost, worker->key);
        else if (worker->told_period != self->heartbeat_ms) {
            /* A new period is told at once, to every worker: one that
               kept a shorter one would give us up before the ring
               reaches it. */
            worker->told_at = now;
            worker->told_period = self->heartbeat_ms;
            s_emit (self, SHOAL_ACTION_HEARTBEAT, worker, NULL, NULL);
        }
    }
    for (const char *key = zlistx_first (lost); key; key = zlistx_next (lost))
        shoal_scheduler_worker_gone (self, key, true, now);
    zlistx_destroy (&lost);
    if (zlistx_size (self->orphans)) {
        s_expire_orphans (self, now);
        s_dispatch (self, now);
    }
}

/* ---- metrics --------------------------------------------------------- */

void
shoal_histogram_observe (shoal_histogram_t *histogram, double seconds)
{
    static const double bounds[] = SHOAL_HISTOGRAM_BOUNDS;
    size_t bucket = 0;
    while (bucket < sizeof bounds / sizeof bounds[0]
           && seconds > bounds[bucket])
        bucket++;
    histogram->buckets[bucket]++;
    histogram->sum += seconds > 0 ? seconds : 0;
    histogram->count++;
}

void
shoal_scheduler_stats (const shoal_scheduler_t *self,
                       shoal_scheduler_stats_t *stats)
{
    *stats = self->stats;
    stats->queue_depth = self->ready_count;
    stats->workers = stats->slots = stats->busy = 0;
    /* O(workers), once per scrape. */
    for (shoal_worker_t *worker = zhashx_first (self->workers); worker;
         worker = zhashx_next (self->workers)) {
        stats->workers++;
        stats->slots += worker->slots;
        stats->busy += worker->busy + worker->untracked;
    }
    stats->jobs_active = self->jobs_active;
}

/* ---- persistence ----------------------------------------------------- */

/*  Mixes `value` into the fingerprint `h` (the finaliser of splitmix64
    over the sum: every bit of both reaches every bit of the result).     */
static uint64_t
s_print_mix (uint64_t h, uint64_t value)
{
    h += value + 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

/*  A fingerprint of what shoal_job_record and shoal_job_stage_record give
    that can change: a job is reported to the flush whenever one of its
    tasks changed, while its record changes far less often. Never 0.      */
static uint64_t
s_record_print (const shoal_job_t *job)
{
    uint64_t h = s_print_mix (0, (uint64_t) job->state);
    h = s_print_mix (h, job->stage);
    h = s_print_mix (h, job->retries);
    h = s_print_mix (h, (uint64_t) job->started_at);
    h = s_print_mix (h, (uint64_t) job->finished_at);
    for (const char *c = job->error; c && *c; c++)
        h = s_print_mix (h, (unsigned char) *c);
    h = s_print_mix (h, job->error != NULL);
    for (size_t i = 0; i < job->cls->stage_count; i++) {
        const s_stage_t *stage = &job->stages[i];
        h = s_print_mix (h, (uint64_t) stage->state);
        h = s_print_mix (h, stage->first_task);
        h = s_print_mix (h, stage->task_count);
        h = s_print_mix (h, stage->spawn_pending);
    }
    return h ? h : 1;
}

void
shoal_job_record (const shoal_job_t *job, shoal_job_record_t *record)
{
    *record = (shoal_job_record_t) {
        .id = job->id,
        .seq = job->seq,
        .job_class = job->cls->id,
        .definitions = job->definitions,
        .params = job->params,
        .params_text = job->params_text,
        .state = job->state,
        .stage = job->stage,
        .retries = job->retries,
        .error = job->error,
        .created_at = job->created_at,
        .started_at = job->started_at,
        .finished_at = job->finished_at,
    };
}

void
shoal_job_stage_record (const shoal_job_t *job, uint32_t stage,
                        shoal_stage_record_t *record)
{
    const s_stage_t *s = &job->stages[stage];
    *record = (shoal_stage_record_t) {
        .state = s->state,
        .first_task = s->first_task,
        .task_count = s->task_count,
        .spawn_pending = s->spawn_pending,
    };
}

void
shoal_job_stage_counts (const shoal_job_t *job, uint32_t stage,
                        uint32_t counts[SHOAL_TASK_STATE_COUNT])
{
    memcpy (counts, job->stages[stage].counts,
            sizeof job->stages[stage].counts);
}

void
shoal_task_record (const shoal_task_t *task, shoal_task_record_t *record)
{
    *record = (shoal_task_record_t) {
        .id = task->id,
        .stage = task->stage,
        .index = task->index,
        .state = task->state,
        .attempt = task->attempt,
        .losses = task->losses,
        .failures = task->failures,
        .exit_code = task->exit_code,
        .signal = task->signal,
        .error = task->error,
        .worker = task->worker_name,
        .entry = NULL,
        .entry_text = task->entry_size ? task->job->entries
                                             + task->entry_offset : NULL,
        .entry_size = task->entry_size,
        .started_at = task->started_at,
        .finished_at = task->finished_at,
        .duration_ms = task->duration_ms,
        .wake_at = task->wake_at,
    };
}

void
shoal_scheduler_flush (shoal_scheduler_t *self, shoal_job_fn *job_fn,
                       shoal_task_fn *task_fn, void *arg)
{
    while (self->dirty_jobs) {
        shoal_job_t *job = self->dirty_jobs;
        self->dirty_jobs = job->dirty_next;
        if (!self->dirty_jobs)
            self->dirty_tail = NULL;
        job->dirty = false;
        job->dirty_next = NULL;
        uint64_t print = s_record_print (job);
        job->record_changed = print != job->record_print
                              || job->record_print == 0;
        job->record_print = print;
        if (job_fn)
            job_fn (job, arg);
        while (job->dirty_tasks) {
            shoal_task_t *task = job->dirty_tasks;
            job->dirty_tasks = task->dirty_next == S_NO_TASK
                                   ? NULL : s_task_at (job, task->dirty_next);
            task->dirty = false;
            task->dirty_next = S_NO_TASK;
            if (task_fn)
                task_fn (task, arg);
        }
    }
}

bool
shoal_scheduler_changed (const shoal_scheduler_t *self)
{
    return self->dirty_jobs != NULL;
}

shoal_job_t *
shoal_scheduler_restore_job (shoal_scheduler_t *self,
                             const shoal_job_record_t *record,
                             const shoal_stage_record_t *stages,
                             size_t stage_count, shoal_error_t *err)
{
    /* A job goes on with the definitions it was submitted under; one
       stored without them (by an older controller), or whose definitions
       could not be read back, with the current ones if its class fits. */
    uint32_t version = record->definitions;
    const shoal_defs_t *defs = version ? shoal_scheduler_definitions (
                                             self, version)
                                       : NULL;
    if (!defs) {
        defs = self->defs;
        version = self->definitions;
    }
    const shoal_job_class_t *cls
        = shoal_defs_job_class (defs, record->job_class);
    if (!cls) {
        shoal_error_set (err, SHOAL_ENOTFOUND, "job", "job %s is of class "
                         "'%s', which the definitions no longer have, and "
                         "the definitions it was submitted under are not "
                         "stored (docs/operations.md, \"Changing the "
                         "definitions\")", record->id, record->job_class);
        return NULL;
    }
    if (stage_count != cls->stage_count || record->stage >= stage_count) {
        shoal_error_set (err, SHOAL_EINVAL, "stages", "job %s has %zu "
                         "stages stored, its class '%s' has %zu now, and "
                         "the definitions it was submitted under are not "
                         "stored (docs/operations.md, \"Changing the "
                         "definitions\")", record->id, stage_count, cls->id,
                         cls->stage_count);
        return NULL;
    }
    /* Jobs come back in submission order, each keeping its seq: a store
       keys rows by it, and list cursors stay valid across a restart. */
    if (record->seq && record->seq <= self->last_seq) {
        shoal_error_set (err, SHOAL_EINVAL, "seq", "job %s: stored sequence "
                         "number %" PRIu64 " is not after %" PRIu64,
                         record->id, record->seq, self->last_seq);
        return NULL;
    }
    shoal_job_t *job = shoal_scheduler_submit (
        self, record->id, cls, json_deep_copy (record->params), false,
        record->created_at, err);
    if (!job)
        return NULL;
    if (record->seq)
        job->seq = self->last_seq = record->seq;
    job->definitions = version;
    self->stats.jobs_submitted--;   /* read back, not submitted */
    job->state = record->state;
    if (job->state != SHOAL_JOB_CREATED && job->state != SHOAL_JOB_RUNNING)
        self->jobs_active--;
    job->stage = record->stage;
    job->retries = record->retries;
    job->error = record->error ? strdup (record->error) : NULL;
    job->started_at = record->started_at;
    job->finished_at = record->finished_at;
    for (size_t i = 0; i < stage_count; i++) {
        job->stages[i].state = stages[i].state;
        job->stages[i].first_task = stages[i].first_task;
        job->stages[i].spawn_pending = stages[i].spawn_pending;
        /* task_count and counts are recounted from the tasks. */
    }
    return job;
}

int
shoal_scheduler_restore_task (shoal_scheduler_t *self, shoal_job_t *job,
                              const shoal_task_record_t *record,
                              shoal_error_t *err)
{
    if (record->id != job->task_count || record->stage >= job->cls->stage_count
        || (unsigned) record->state >= SHOAL_TASK_STATE_COUNT)
        return shoal_error_set (err, SHOAL_EINVAL, "task",
                                "job %s: stored task %u is out of order or "
                                "malformed", job->id, record->id);
    char *dumped = NULL;
    const char *entry = record->entry_text;
    size_t entry_size = record->entry_size;
    if (!entry && record->entry) {
        dumped = json_dumps (record->entry, JSON_COMPACT);
        entry = dumped;
        entry_size = dumped ? strlen (dumped) : 0;
    }
    if (entry && entry_size == 2 && entry[0] == '{')
        entry_size = 0;   /* {} overlays nothing */
    shoal_task_t *task = s_task_new (job, record->stage, record->index,
                                     entry, entry ? entry_size : 0);
    free (dumped);
    if (!task)
        return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    s_stage_t *stage = &job->stages[task->stage];
    stage->counts[SHOAL_TASK_PENDING]--;
    stage->counts[record->state]++;
    task->state = record->state;
    if (task->state == SHOAL_TASK_RUNNING)
        self->stats.tasks_running++;
    task->attempt = record->attempt;
    task->losses = record->losses;
    task->failures = record->failures;
    task->exit_code = record->exit_code;
    task->signal = record->signal;
    task->error = record->error ? strdup (record->error) : NULL;
    task->worker_name = record->worker ? s_intern (self, record->worker)
                                       : NULL;
    task->started_at = record->started_at;
    task->finished_at = record->finished_at;
    task->duration_ms = record->duration_ms;
    task->wake_at = record->wake_at;
    return 0;
}

void
shoal_scheduler_restore_done (shoal_scheduler_t *self, int64_t now,
                              int64_t lease_ms)
{
    self->now = now;
    for (size_t i = 0; i < self->job_count; i++) {
        shoal_job_t *job = self->job_list[i];
        /* A stage's tasks are those restored since its first task. */
        for (uint32_t s = 0; s < job->cls->stage_count; s++) {
            s_stage_t *stage = &job->stages[s];
            if (stage->state == SHOAL_STAGE_PENDING)
                continue;
            uint32_t count = 0;
            for (uint32_t t = stage->first_task; t < job->task_count
                 && s_task_at (job, t)->stage == s; t++)
                count++;
            if (count != stage->task_count) {
                /* An earlier run of a retried stage: recount the current
                   run only. */
                memset (stage->counts, 0, sizeof stage->counts);
                for (uint32_t t = stage->first_task;
                     t < stage->first_task + count; t++)
                    stage->counts[s_task_at (job, t)->state]++;
                stage->task_count = count;
            }
        }
        if (job->state != SHOAL_JOB_RUNNING)
            continue;
        s_stage_t *stage = &job->stages[job->stage];
        for (uint32_t t = stage->first_task; t < job->task_count; t++) {
            shoal_task_t *task = s_task_at (job, t);
            if (task->state == SHOAL_TASK_PENDING) {
                if (task->failures && task->wake_at > now)
                    zlistx_insert (self->waiting, task, false);
                else
                    s_ready_push (self, task, false);
            }
            else if (task->state == SHOAL_TASK_RUNNING) {
                task->lease_until = now + lease_ms;
                zlistx_add_end (self->orphans, task);
            }
        }
    }
    /* What was just read back is stored already. */
    shoal_scheduler_flush (self, NULL, NULL, NULL);
}

bool
shoal_scheduler_adopt (shoal_scheduler_t *self, const char *key,
                       const char *job_id, uint32_t task_id, uint32_t attempt,
                       int64_t now)
{
    self->now = now;
    shoal_worker_t *worker = zhashx_lookup (self->workers, key);
    shoal_job_t *job = zhashx_lookup (self->jobs, job_id);
    shoal_task_t *task = job && task_id < job->task_count ? s_task_at (job, task_id)
                                                          : NULL;
    if (!worker || !task || task->state != SHOAL_TASK_RUNNING
        || task->attempt != attempt || task->worker == worker)
        return false;
    shoal_worker_t *holder = task->worker;
    bool orphan = !holder && task->lease_until;
    bool same_process = holder && holder->instance && worker->instance
                        && streq (holder->instance, worker->instance);
    if (!orphan && !same_process)
        return false;
    if (holder)
        s_release (self, task);
    task->lease_until = 0;
    task->worker_name = worker->name;
    if (worker->untracked)
        worker->untracked--;   /* counted in HELLO's `running` */
    s_hold (self, worker, task);
    s_touch_task (task);
    return true;
}

/*  Restored running tasks nobody claimed in time run again.              */
static void
s_expire_orphans (shoal_scheduler_t *self, int64_t now)
{
    shoal_task_t *task = zlistx_first (self->orphans);
    while (task) {
        if (!task->lease_until || task->state != SHOAL_TASK_RUNNING
            || task->worker) {
            zlistx_delete (self->orphans, zlistx_cursor (self->orphans));
            task = zlistx_first (self->orphans);
            continue;
        }
        if (task->lease_until <= now) {
            task->lease_until = 0;
            zlistx_delete (self->orphans, zlistx_cursor (self->orphans));
            if (task->job->state == SHOAL_JOB_RUNNING) {
                s_task_set_state (task, SHOAL_TASK_PENDING);
                s_ready_push (self, task, true);
            }
            task = zlistx_first (self->orphans);
            continue;
        }
        task = zlistx_next (self->orphans);
    }
}

int64_t
shoal_scheduler_next_wake (const shoal_scheduler_t *self)
{
    shoal_task_t *first = zlistx_first (self->waiting);
    return first ? first->wake_at : -1;
}

void
shoal_scheduler_wake (shoal_scheduler_t *self, int64_t now)
{
    self->now = now;
    shoal_task_t *task;
    while ((task = zlistx_first (self->waiting)) && task->wake_at <= now) {
        zlistx_detach (self->waiting, NULL);
        /* Canceled, or its job ended or was retried meanwhile. */
        if (task->state != SHOAL_TASK_PENDING
            || task->job->state != SHOAL_JOB_RUNNING)
            continue;
        s_ready_push (self, task, false);
    }
    s_dispatch (self, now);
}

/* ---- retention ---------------------------------------------------- */

/*  Drops from `list` (waiting or orphans) the tasks of jobs about to be
    forgotten. O(list): run once per call of shoal_scheduler_evict that
    forgets anything.                                                      */
static void
s_prune_evicting (zlistx_t *list)
{
    shoal_task_t *task = zlistx_first (list);
    while (task) {
        void *handle = zlistx_cursor (list);
        shoal_task_t *next = zlistx_next (list);
        if (task->job->evicting)
            zlistx_delete (list, handle);
        task = next;
    }
}

size_t
shoal_scheduler_evict (shoal_scheduler_t *self, int64_t cutoff, size_t max,
                       shoal_evict_fn *fn, void *arg)
{
    /* Choose. A job that ended before the cutoff was created before it,
       and jobs are listed as they were created, so the walk stops at the
       first job created since: it sees the jobs that are old enough and
       not yet forgotten (long runners, those held back below, and those
       past `max`), not the whole list. */
    size_t chosen = 0;
    size_t scanned = 0;
    for (; scanned < self->job_count && chosen < max; scanned++) {
        shoal_job_t *job = self->job_list[scanned];
        if (job->created_at >= cutoff)
            break;
        /* Changed since the last flush: its row is not stored yet, and a
           put after the delete would bring it back. A task a worker still
           holds (a canceled job's, until its result comes) keeps the job,
           so the result finds it. */
        if (job->state >= SHOAL_JOB_SUCCEEDED && job->finished_at < cutoff
            && !job->dirty && !job->held) {
            job->evicting = true;
            chosen++;
        }
    }
    /* A queued action may point at a job or its tasks: such a job waits
       for the next call. O(actions); the loop calls this with none. */
    for (size_t i = 0; chosen && i < self->action_count; i++) {
        const shoal_action_t *action
            = &self->actions[(self->action_head + i) % self->action_cap];
        shoal_job_t *job = action->job ? action->job
                           : action->task ? action->task->job : NULL;
        if (job && job->evicting) {
            job->evicting = false;
            chosen--;
        }
    }
    if (!chosen)
        return 0;
    /* Tasks of an ended job may linger in the back-off list and among
       the orphans until their time comes: they go now. */
    s_prune_evicting (self->waiting);
    s_prune_evicting (self->orphans);
    /* Forget, and close the gaps: O(scanned), then one memmove of the
       jobs after them. */
    size_t kept = 0;
    for (size_t i = 0; i < scanned; i++) {
        shoal_job_t *job = self->job_list[i];
        if (!job->evicting) {
            self->job_list[kept++] = job;
            continue;
        }
        s_rr_remove (self, job);   /* an ended job is out already */
        if (fn)
            fn (job->id, arg);
        zhashx_delete (self->jobs, job->id);
        s_job_free (job);
    }
    memmove (self->job_list + kept, self->job_list + scanned,
             (self->job_count - scanned) * sizeof *self->job_list);
    self->job_count -= scanned - kept;
    self->stats.jobs_evicted += scanned - kept;
    return scanned - kept;
}

/* ---- reading the state --------------------------------------------- */

const char *shoal_job_id (const shoal_job_t *job) { return job->id; }
uint64_t shoal_job_seq (const shoal_job_t *job) { return job->seq; }
bool shoal_job_record_changed (const shoal_job_t *job) { return job->record_changed; }
shoal_job_state_t shoal_job_state (const shoal_job_t *job) { return job->state; }
const shoal_job_class_t *shoal_job_class (const shoal_job_t *job) { return job->cls; }
size_t shoal_job_task_count (const shoal_job_t *job) { return job->task_count; }

shoal_task_t *
shoal_job_task (const shoal_job_t *job, uint32_t task_id)
{
    return task_id < job->task_count ? s_task_at (job, task_id) : NULL;
}

shoal_job_t *shoal_task_job (const shoal_task_t *task) { return task->job; }
uint32_t shoal_task_id (const shoal_task_t *task) { return task->id; }
uint32_t shoal_task_stage (const shoal_task_t *task) { return task->stage; }
bool shoal_task_is_spawn (const shoal_task_t *task) { return task->index < 0; }
shoal_task_state_t shoal_task_state (const shoal_task_t *task) { return task->state; }
uint32_t shoal_task_attempt (const shoal_task_t *task) { return task->attempt; }
const char *shoal_task_worker_name (const shoal_task_t *task) { return task->worker_name; }

const char *shoal_worker_key (const shoal_worker_t *worker) { return worker->key; }
const char *shoal_worker_name (const shoal_worker_t *worker) { return worker->name; }
uint32_t shoal_worker_busy (const shoal_worker_t *worker) { return worker->busy; }

static const shoal_task_class_t *
s_task_class (const shoal_task_t *task)
{
    const shoal_stage_def_t *def = &task->job->cls->stages[task->stage];
    return task->index < 0 ? def->spawn_task : def->task_class;
}

json_t *
shoal_task_params (const shoal_task_t *task)
{
    json_t *params = json_copy (task->job->params);
    if (!task->entry_size)
        return params;
    json_t *entry = json_loadb (task->job->entries + task->entry_offset,
                                task->entry_size, 0, NULL);
    const char *key;
    json_t *value;
    json_object_foreach (entry, key, value) {
        char text[64];
        if (json_is_string (value))
            json_object_set (params, key, value);
        else if (shoal_params_scalar_string (value, text, sizeof text))
            json_object_set_new (params, key, json_string (text));
    }
    json_decref (entry);
    return params;
}

static json_t *
s_inputs_to_wire (const shoal_task_class_t *cls)
{
    json_t *inputs = json_array ();
    for (size_t i = 0; i < cls->input_count; i++) {
        const shoal_input_t *input = &cls->inputs[i];
        json_t *item = json_pack ("{s:s, s:s}", "name", input->name, "source",
                                  shoal_source_name (input->source));
        if (input->default_value)
            json_object_set_new (item, "default",
                                 json_string (input->default_value));
        json_array_append_new (inputs, item);
    }
    return inputs;
}

json_t *
shoal_task_wire_body (const shoal_task_t *task)
{
    const shoal_task_class_t *cls = s_task_class (task);
    json_t *args = json_array ();
    for (size_t i = 0; i < cls->exec_argc; i++)
        json_array_append_new (args, json_string (cls->exec_args[i]));
    json_t *body = json_pack ("{s:s, s:I, s:I, s:s, s:s, s:o, s:o, s:o}",
                      "job", task->job->id,
                      "task", (json_int_t) task->id,
                      "attempt", (json_int_t) task->attempt,
                      "kind", task->index < 0 ? SHOAL_KIND_SPAWN
                                              : SHOAL_KIND_TASK,
                      "command", cls->exec_command,
                      "args", args,
                      "inputs", s_inputs_to_wire (cls),
                      "params", shoal_task_params (task));
    if (body && cls->timeout_ms)
        json_object_set_new (body, "timeout_ms",
                             json_integer (cls->timeout_ms));
    return body;
}

/* ---- TASK bodies without a JSON tree ---------------------------------- */

/*  A growing output buffer; `failed` once an allocation failed.          */
typedef struct {
    char **data;
    size_t *cap;
    size_t size;
    bool failed;
} s_out_t;

static bool
s_out_room (s_out_t *out, size_t more)
{
    if (out->failed)
        return false;
    if (out->size + more <= *out->cap)
        return true;
    size_t cap = *out->cap ? *out->cap : 512;
    while (cap < out->size + more)
        cap *= 2;
    char *grown = realloc (*out->data, cap);
    if (!grown) {
        out->failed = true;
        return false;
    }
    *out->data = grown;
    *out->cap = cap;
    return true;
}

static void
s_out_put (s_out_t *out, const char *text, size_t size)
{
    if (s_out_room (out, size)) {
        memcpy (*out->data + out->size, text, size);
        out->size += size;
    }
}

static void
s_out_str (s_out_t *out, const char *text)
{
    s_out_put (out, text, strlen (text));
}

/*  `text` as a JSON string, quotes included, escaped as jansson does.    */
static void
s_out_json_string (s_out_t *out, const char *text, size_t size)
{
    if (!s_out_room (out, size * 6 + 2))
        return;
    char *p = *out->data + out->size;
    *p++ = '"';
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;
        }
        else if (c < 0x20) {
            static const char *short_forms[32] = {
                ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",
                ['\r'] = "\\r", ['\t'] = "\\t" };
            if (short_forms[c]) {
                memcpy (p, short_forms[c], 2);
                p += 2;
            }
            else
                p += sprintf (p, "\\u%04x", c);
        }
        else
            *p++ = (char) c;
    }
    *p++ = '"';
    out->size = (size_t) (p - *out->data);
}

static void
s_out_uint (s_out_t *out, uint64_t value)
{
    char text[24];
    size_t n = sizeof text;
    do {
        text[--n] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    s_out_put (out, text + n, sizeof text - n);
}

/*  The part of a TASK body that only depends on the task class, from
    ,"command" to the end of "inputs" (and timeout_ms), made once.        */
static const char *
s_class_wire (shoal_scheduler_t *self, const shoal_task_class_t *cls,
              size_t *size)
{
    for (size_t i = 0; i < self->class_wire_count; i++)
        if (self->class_wire[i].cls == cls) {
            *size = self->class_wire[i].size;
            return self->class_wire[i].text;
        }
    json_t *body = json_object ();
    json_t *args = json_array ();
    for (size_t i = 0; i < cls->exec_argc; i++)
        json_array_append_new (args, json_string (cls->exec_args[i]));
    json_object_set_new (body, "command", json_string (cls->exec_command));
    json_object_set_new (body, "args", args);
    json_object_set_new (body, "inputs", s_inputs_to_wire (cls));
    if (cls->timeout_ms)
        json_object_set_new (body, "timeout_ms",
                             json_integer (cls->timeout_ms));
    char *text = json_dumps (body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (body);
    if (!text)
        return NULL;
    if (self->class_wire_count == self->class_wire_cap) {
        size_t cap = self->class_wire_cap ? self->class_wire_cap * 2 : 8;
        void *grown = realloc (self->class_wire, cap * sizeof *self->class_wire);
        if (!grown) {
            free (text);
            return NULL;
        }
        self->class_wire = grown;
        self->class_wire_cap = cap;
    }
    /* Without its braces: it goes inside the TASK object. */
    size_t length = strlen (text);
    memmove (text, text + 1, length - 2);
    text[length - 2] = '\0';
    self->class_wire[self->class_wire_count++] = (s_class_wire_t) {
        .cls = cls, .text = text, .size = length - 2 };
    *size = length - 2;
    return text;
}

/*  Most keys a spawn entry may have for the direct encoder; an entry with
    more goes through jansson.                                            */
#define S_WIRE_ENTRY_KEYS 32

size_t
shoal_task_wire_text (const shoal_task_t *task, char **buf, size_t *cap)
{
    shoal_job_t *job = task->job;
    size_t class_size;
    const char *class_text = s_class_wire (job->owner, s_task_class (task),
                                           &class_size);
    /* The spawn entry's keys and values, decoded from its text. */
    struct {
        shoal_jscan_string_t key;
        shoal_jscan_type_t type;
        const char *raw;
        size_t raw_size;
    } fields[S_WIRE_ENTRY_KEYS];
    size_t field_count = 0;
    bool direct = class_text != NULL;
    if (direct && task->entry_size) {
        shoal_jscan_t scan;
        shoal_jscan_init (&scan, job->entries + task->entry_offset,
                          task->entry_size);
        shoal_jscan_expect (&scan, '{');
        if (shoal_jscan_peek (&scan) == '}')
            scan.pos++;
        else
            while (direct) {
                if (field_count == S_WIRE_ENTRY_KEYS) {
                    direct = false;
                    break;
                }
                shoal_jscan_string (&scan, &fields[field_count].key);
                shoal_jscan_expect (&scan, ':');
                shoal_jscan_peek (&scan);
                size_t start = scan.pos;
                shoal_jscan_type_t type = shoal_jscan_value (&scan, NULL);
                fields[field_count].type = type;
                fields[field_count].raw = scan.text + start;
                fields[field_count].raw_size = scan.pos - start;
                if ((type == SHOAL_JSCAN_INTEGER || type == SHOAL_JSCAN_REAL)
                    && fields[field_count].raw_size >= 64)
                    direct = false;   /* longer than the number buffer */
                field_count++;
                if (shoal_jscan_peek (&scan) != ',')
                    break;
                scan.pos++;
            }
        for (size_t i = 0; i < field_count; i++)
            if (fields[i].key.escaped)
                direct = false;   /* rare: compare keys decoded, in jansson */
    }
    if (!direct) {
        json_t *body = shoal_task_wire_body (task);
        char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
        json_decref (body);
        size_t size = text ? strlen (text) : 0;
        s_out_t out = { buf, cap, 0, false };
        if (text)
            s_out_put (&out, text, size);
        free (text);
        return text && !out.failed ? out.size : 0;
    }
    s_out_t out = { buf, cap, 0, false };
    s_out_str (&out, "{\"job\":");
    s_out_json_string (&out, job->id, strlen (job->id));
    s_out_str (&out, ",\"task\":");
    s_out_uint (&out, task->id);
    s_out_str (&out, ",\"attempt\":");
    s_out_uint (&out, task->attempt);
    s_out_str (&out, task->index < 0 ? ",\"kind\":\"" SHOAL_KIND_SPAWN "\","
                                     : ",\"kind\":\"" SHOAL_KIND_TASK "\",");
    s_out_put (&out, class_text, class_size);
    s_out_str (&out, ",\"params\":{");
    bool first = true;
    const char *key;
    json_t *value;
    json_object_foreach (job->params, key, value) {
        size_t key_size = strlen (key);
        bool overlaid = false;
        for (size_t i = 0; i < field_count && !overlaid; i++)
            overlaid = fields[i].key.size == key_size
                       && memcmp (fields[i].key.raw, key, key_size) == 0;
        if (overlaid || !json_is_string (value))
            continue;
        if (!first)
            s_out_put (&out, ",", 1);
        first = false;
        s_out_json_string (&out, key, key_size);
        s_out_put (&out, ":", 1);
        s_out_json_string (&out, json_string_value (value),
                           json_string_length (value));
    }
    for (size_t i = 0; i < field_count; i++) {
        if (!first)
            s_out_put (&out, ",", 1);
        first = false;
        s_out_put (&out, "\"", 1);
        s_out_put (&out, fields[i].key.raw, fields[i].key.size);
        s_out_put (&out, "\":", 2);
        char text[64];
        const char *string = text;
        switch (fields[i].type) {
            case SHOAL_JSCAN_STRING:
                /* Checked JSON string text already: copied as it is. */
                s_out_put (&out, fields[i].raw, fields[i].raw_size);
                continue;
            case SHOAL_JSCAN_TRUE:
                string = "true";
                break;
            case SHOAL_JSCAN_FALSE:
                string = "false";
                break;
            case SHOAL_JSCAN_INTEGER:
                /* A checked integer's text is already what "%lld" of its
                   value writes, but for "-0". */
                if (fields[i].raw_size == 2 && fields[i].raw[0] == '-'
                    && fields[i].raw[1] == '0')
                    s_out_put (&out, "\"0\"", 3);
                else {
                    s_out_put (&out, "\"", 1);
                    s_out_put (&out, fields[i].raw, fields[i].raw_size);
                    s_out_put (&out, "\"", 1);
                }
                continue;
            default: {   /* a real, written as shoal_params_scalar_string */
                char number[64];
                size_t size = fields[i].raw_size;
                memcpy (number, fields[i].raw, size);
                number[size] = '\0';
                if (fields[i].type == SHOAL_JSCAN_INTEGER)
                    snprintf (text, sizeof text, "%lld",
                              strtoll (number, NULL, 10));
                else
                    snprintf (text, sizeof text, "%.17g",
                              strtod (number, NULL));
                break;
            }
        }
        s_out_json_string (&out, string, strlen (string));
    }
    s_out_str (&out, "}}");
    return out.failed ? 0 : out.size;
}

/*  Writes `value` as `width` decimal digits, zero-padded, at `at`.        */
static char *
s_digits (char *at, int value, int width)
{
    for (int i = width - 1; i >= 0; i--, value /= 10)
        at[i] = (char) ('0' + value % 10);
    return at + width;
}

/*  `ms` since the epoch as ISO 8601 in UTC, with milliseconds
    ("2026-11-29T21:32:57.123Z"), written digit by digit: a job view has
    up to three of them, and snprintf took half the time of writing one. */
static void
s_time_text (int64_t ms, char text[96])
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999 || ms < 0) {   /* never from a clock */
        snprintf (text, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, (int) (ms % 1000));
        return;
    }
    char *at = s_digits (text, year, 4);
    *at++ = '-';
    at = s_digits (at, tm.tm_mon + 1, 2);
    *at++ = '-';
    at = s_digits (at, tm.tm_mday, 2);
    *at++ = 'T';
    at = s_digits (at, tm.tm_hour, 2);
    *at++ = ':';
    at = s_digits (at, tm.tm_min, 2);
    *at++ = ':';
    at = s_digits (at, tm.tm_sec, 2);
    *at++ = '.';
    at = s_digits (at, (int) (ms % 1000), 3);
    *at++ = 'Z';
    *at = '\0';
}

json_t *
shoal_time_json (int64_t ms)
{
    if (!ms)
        return json_null ();
    char text[96];
    s_time_text (ms, text);
    return json_string (text);
}

static json_t *
s_string_or_null (const char *text)
{
    return text ? json_string (text) : json_null ();
}

/*  `text` with every value of the job's secret params replaced by "***":
    an error message may quote what a task printed or was given. Values
    shorter than 3 bytes are left alone (masking "a" would garble every
    message). O(secrets * length).                                        */
static char *
s_masked_copy (const shoal_job_t *job, const char *text)
{
    char *copy = strdup (text);
    if (!copy)
        return NULL;
    const char *name;
    json_t *value;
    json_object_foreach (job->params, name, value) {
        const char *secret = json_string_value (value);
        size_t len = secret ? strlen (secret) : 0;
        if (len < 3 || !shoal_params_is_secret (job->cls, name))
            continue;
        char *hit;
        while ((hit = strstr (copy, secret))) {
            /* "***" is never longer than the value: shrink in place. */
            memcpy (hit, "***", 3);
            memmove (hit + 3, hit + len, strlen (hit + len) + 1);
        }
    }
    return copy;
}

/*  The same as a JSON value: null for no text, "***" when out of memory.  */
static json_t *
s_masked_text (const shoal_job_t *job, const char *text)
{
    if (!text)
        return json_null ();
    char *copy = s_masked_copy (job, text);
    if (!copy)
        return json_string ("***");
    json_t *masked = json_string (copy);
    free (copy);
    return masked;
}

/* ---- the job's view as text, without a JSON tree ---------------------- */

static void
s_out_key (s_out_t *out, const char *key)
{
    s_out_json_string (out, key, strlen (key));
    s_out_put (out, ":", 1);
}

static void
s_out_string_or_null (s_out_t *out, const char *text)
{
    if (text)
        s_out_json_string (out, text, strlen (text));
    else
        s_out_str (out, "null");
}

static void
s_out_time (s_out_t *out, int64_t ms)
{
    if (!ms) {
        s_out_str (out, "null");
        return;
    }
    char text[96];
    s_time_text (ms, text);
    s_out_json_string (out, text, strlen (text));
}

size_t
shoal_job_view_text (const shoal_job_t *job, char **buf, size_t *cap)
{
    s_out_t out = { buf, cap, 0, false };
    s_out_str (&out, "{\"id\":");
    s_out_json_string (&out, job->id, strlen (job->id));
    s_out_str (&out, ",\"job\":");
    s_out_json_string (&out, job->cls->id, strlen (job->cls->id));
    s_out_str (&out, ",\"state\":");
    s_out_str (&out, "\"");
    s_out_str (&out, shoal_job_state_name (job->state));
    s_out_str (&out, "\",\"params\":{");
    const char *name;
    json_t *value;
    bool first = true;
    json_object_foreach (job->params, name, value) {
        if (!first)
            s_out_put (&out, ",", 1);
        first = false;
        s_out_key (&out, name);
        if (shoal_params_is_secret (job->cls, name))
            s_out_str (&out, "\"***\"");
        else if (json_is_string (value))
            s_out_json_string (&out, json_string_value (value),
                               json_string_length (value));
        else {
            /* Not made by the API (params are strings): as jansson prints
               it. */
            char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text)
                out.failed = true;
            else
                s_out_str (&out, text);
            free (text);
        }
    }
    s_out_str (&out, "},\"created_at\":");
    s_out_time (&out, job->created_at);
    s_out_str (&out, ",\"started_at\":");
    s_out_time (&out, job->started_at);
    s_out_str (&out, ",\"finished_at\":");
    s_out_time (&out, job->finished_at);
    s_out_str (&out, ",\"error\":");
    if (job->error) {
        char *masked = s_masked_copy (job, job->error);
        s_out_string_or_null (&out, masked ? masked : "***");
        free (masked);
    }
    else
        s_out_str (&out, "null");
    s_out_str (&out, ",\"retries\":");
    s_out_uint (&out, job->retries);
    s_out_str (&out, ",\"definitions\":");
    if (job->definitions)
        s_out_uint (&out, job->definitions);
    else
        s_out_str (&out, "null");
    s_out_str (&out, ",\"stages\":[");
    for (size_t i = 0; i < job->cls->stage_count; i++) {
        const s_stage_t *stage = &job->stages[i];
        const shoal_stage_def_t *def = &job->cls->stages[i];
        s_out_str (&out, i ? ",{\"name\":" : "{\"name\":");
        s_out_json_string (&out, def->name, strlen (def->name));
        s_out_str (&out, ",\"state\":\"");
        s_out_str (&out, shoal_stage_state_name (stage->state));
        s_out_str (&out, "\",\"task_class\":");
        s_out_json_string (&out, def->task_class->id,
                           strlen (def->task_class->id));
        s_out_str (&out, ",\"spawn_task\":");
        s_out_string_or_null (&out, def->spawn_task ? def->spawn_task->id
                                                    : NULL);
        s_out_str (&out, def->job_failed_on_error
                             ? ",\"job_failed_on_error\":true"
                             : ",\"job_failed_on_error\":false");
        static const struct {
            const char *key;
            shoal_task_state_t state;
        } counts[] = {
            { ",\"pending\":", SHOAL_TASK_PENDING },
            { ",\"running\":", SHOAL_TASK_RUNNING },
            { ",\"succeeded\":", SHOAL_TASK_SUCCEEDED },
            { ",\"failed\":", SHOAL_TASK_FAILED },
            { ",\"canceled\":", SHOAL_TASK_CANCELED },
        };
        s_out_str (&out, ",\"tasks\":{\"total\":");
        s_out_uint (&out, stage->task_count);
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            s_out_str (&out, counts[k].key);
            s_out_uint (&out, stage->counts[counts[k].state]);
        }
        s_out_str (&out, "}}");
    }
    s_out_str (&out, "]}");
    return out.failed ? 0 : out.size;
}

/*  The tree is read back from the text: the view is defined once
    (shoal_job_view_text), and the loop's answers skip the tree.           */
json_t *
shoal_job_to_json (const shoal_job_t *job)
{
    char *text = NULL;
    size_t cap = 0;
    size_t size = shoal_job_view_text (job, &text, &cap);
    json_t *view = size ? json_loadb (text, size, 0, NULL) : NULL;
    free (text);
    return view;
}

json_t *
shoal_task_to_json (const shoal_task_t *task)
{
    const shoal_job_t *job = task->job;
    json_t *params = shoal_task_params (task);
    json_t *masked = shoal_params_masked (job->cls, params);
    json_decref (params);
    return json_pack (
        "{s:I, s:s, s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:o, "
        "s:o, s:o, s:o, s:o}",
        "id", (json_int_t) task->id,
        "stage", job->cls->stages[task->stage].name,
        "stage_index", (json_int_t) task->stage,
        "kind", task->index < 0 ? SHOAL_KIND_SPAWN : SHOAL_KIND_TASK,
        "task_class", s_task_class (task)->id,
        "state", shoal_task_state_name (task->state),
        "index", task->index < 0 ? json_null () : json_integer (task->index),
        "exit_code", task->exit_code >= 0 ? json_integer (task->exit_code)
                                          : json_null (),
        "attempts", (json_int_t) task->attempt,
        "failures", (json_int_t) task->failures,
        "signal", task->signal ? json_integer (task->signal) : json_null (),
        "worker", s_string_or_null (task->worker_name),
        "params", masked,
        "error", s_masked_text (job, task->error),
        "started_at", shoal_time_json (task->started_at),
        "finished_at", shoal_time_json (task->finished_at),
        "duration_ms", task->finished_at ? json_integer (task->duration_ms)
                                          : json_null ());
}

json_t *
shoal_job_tasks_to_json (const shoal_job_t *job)
{
    json_t *tasks = json_array ();
    for (uint32_t i = 0; i < job->task_count; i++)
        json_array_append_new (tasks, shoal_task_to_json (s_task_at (job, i)));
    return json_pack ("{s:s, s:o}", "job", job->id, "tasks", tasks);
}

json_t *
shoal_job_tasks_page_to_json (const shoal_job_t *job, int state, int stage,
                              uint32_t from, size_t limit)
{
    json_t *tasks = json_array ();
    json_t *next = json_null ();
    uint32_t scanned = 0;
    for (uint32_t id = from; id < job->task_count; id++) {
        /* Both bounds hand back the first task not yet looked at, so the
           next page goes on exactly where this one stopped. */
        if (json_array_size (tasks) == limit
            || scanned == SHOAL_TASK_PAGE_SCAN) {
            json_decref (next);
            next = json_sprintf ("%" PRIu32, id);
            break;
        }
        scanned++;
        const shoal_task_t *task = s_task_at (job, id);
        if ((state >= 0 && task->state != (shoal_task_state_t) state)
            || (stage >= 0 && task->stage != (uint32_t) stage))
            continue;
        json_array_append_new (tasks, shoal_task_to_json (task));
    }
    return json_pack ("{s:s, s:I, s:o, s:o}", "job", job->id, "total",
                      (json_int_t) job->task_count, "tasks", tasks, "next",
                      next);
}

int
shoal_job_stage_parse (const shoal_job_t *job, const char *name)
{
    size_t count = job->cls->stage_count;
    for (size_t i = 0; i < count; i++)
        if (strcmp (name, job->cls->stages[i].name) == 0)
            return (int) i;
    /* A name wins over an index: a stage may well be called "1". */
    char *end;
    errno = 0;
    unsigned long index = strtoul (name, &end, 10);
    if (!errno && end != name && !*end && isdigit ((unsigned char) *name)
        && index < count)
        return (int) index;
    return -1;
}

json_t *
shoal_scheduler_jobs_to_json (const shoal_scheduler_t *self, int state,
                              size_t limit, uint64_t before)
{
    json_t *jobs = json_array ();
    /* The page ends before the first job with seq >= `before`. */
    size_t end = before ? s_job_lower_bound (self, before) : self->job_count;
    json_t *next = json_null ();
    /* Newest first. O(jobs scanned); a state filter may scan far. */
    for (size_t i = end; i > 0; i--) {
        shoal_job_t *job = self->job_list[i - 1];
        if (state >= 0 && job->state != (shoal_job_state_t) state)
            continue;
        if (json_array_size (jobs) == limit) {
            json_decref (next);
            next = json_sprintf ("%" PRIu64, job->seq + 1);
            break;
        }
        json_array_append_new (jobs, shoal_job_to_json (job));
    }
    return json_pack ("{s:o, s:o}", "jobs", jobs, "next", next);
}

json_t *
shoal_worker_to_json (const shoal_worker_t *worker)
{
    return json_pack ("{s:s, s:s, s:I, s:I, s:I, s:b, s:o, s:o}",
                      "id", worker->name,
                      "host", worker->host,
                      "slots", (json_int_t) worker->slots,
                      "queue", (json_int_t) worker->queue,
                      "busy", (json_int_t) (worker->busy + worker->untracked),
                      "draining", worker->draining,
                      "connected_at", shoal_time_json (worker->connected_at),
                      "last_heartbeat", shoal_time_json (worker->last_seen));
}

bool
shoal_worker_draining (const shoal_worker_t *worker)
{
    return worker->draining;
}

json_t *
shoal_scheduler_workers_to_json (const shoal_scheduler_t *self)
{
    json_t *workers = json_array ();
    for (shoal_worker_t *worker = zhashx_first (self->workers); worker;
         worker = zhashx_next (self->workers))
        json_array_append_new (workers, shoal_worker_to_json (worker));
    return json_pack ("{s:o}", "workers", workers);
}
