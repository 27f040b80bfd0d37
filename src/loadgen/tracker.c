/*  tracker.c: per-job stage spans in an open-addressing hash table.

    Linear probing on an FNV-1a hash of the job id; the table doubles at
    70 % load (O(jobs) once per doubling, under the mutex) and never
    shrinks: jobs are few next to tasks, and a run is short.               */
#include "tracker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*  One job. Invariant: results <= count; done when results == count.      */
typedef struct {
    char id[LG_JOB_ID_MAX + 1];  /* job id, "" for an empty slot          */
    int64_t first;               /* span of the current stage: (first,    */
    uint32_t count;              /*   first + count]; first may be -1     */
    uint32_t results;            /* RESULTs sent for tasks in the span    */
    int64_t spawn_sent_ns;       /* 0 for a stage without a spawn task    */
    int64_t last_result_ns;      /* latest RESULT sent in the span        */
    bool has_span;               /* a span was set                        */
    bool fanout_seen;            /* first fanned-out task timed           */
    bool transition_seen;        /* next stage's first task timed         */
} s_job_t;

struct lg_tracker {
    pthread_mutex_t mutex;       /* guards everything below               */
    s_job_t *slots;              /* the table                             */
    size_t capacity;             /* a power of two                        */
    size_t used;                 /* occupied slots                        */
    uint64_t untracked;          /* jobs we had no room for               */
};

static uint64_t
s_hash (const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const char *p = text; *p; p++)
        hash = (hash ^ (unsigned char) *p) * 1099511628211ULL;
    return hash;
}

lg_tracker_t *
lg_tracker_new (void)
{
    lg_tracker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->capacity = 1024;
    self->slots = calloc (self->capacity, sizeof *self->slots);
    if (!self->slots) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
lg_tracker_destroy (lg_tracker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lg_tracker_t *self = *self_p;
    pthread_mutex_destroy (&self->mutex);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

static s_job_t *
s_probe (s_job_t *slots, size_t capacity, const char *id)
{
    size_t i = (size_t) s_hash (id) & (capacity - 1);
    while (slots[i].id[0] && strcmp (slots[i].id, id) != 0)
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

static int
s_grow (lg_tracker_t *self)
{
    size_t capacity = self->capacity * 2;
    s_job_t *slots = calloc (capacity, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots[i].id[0])
            *s_probe (slots, capacity, self->slots[i].id) = self->slots[i];
    free (self->slots);
    self->slots = slots;
    self->capacity = capacity;
    return 0;
}

/*  The record of `id`, made when missing; NULL when there is no room.
    Called with the mutex held.                                            */
static s_job_t *
s_job (lg_tracker_t *self, const char *id)
{
    if (strlen (id) > LG_JOB_ID_MAX)
        return NULL;
    s_job_t *job = s_probe (self->slots, self->capacity, id);
    if (job->id[0])
        return job;
    if (self->used >= LG_TRACKER_MAX_JOBS) {
        self->untracked++;
        return NULL;
    }
    if ((self->used + 1) * 10 > self->capacity * 7) {
        if (s_grow (self)) {
            self->untracked++;
            return NULL;
        }
        job = s_probe (self->slots, self->capacity, id);
    }
    memset (job, 0, sizeof *job);
    strcpy (job->id, id);
    self->used++;
    return job;
}

static bool
s_in_span (const s_job_t *job, uint32_t task)
{
    return job->has_span && (int64_t) task > job->first
           && (int64_t) task <= job->first + job->count;
}

/*  The span is complete and `task` lies past it: the next stage began.    */
static bool
s_next_stage (const s_job_t *job, uint32_t task)
{
    return job->has_span && job->results == job->count
           && (int64_t) task > job->first + job->count;
}

void
lg_tracker_task (lg_tracker_t *self, const char *id, uint32_t task,
                 uint32_t attempt, bool spawn, int64_t received_ns,
                 int64_t slot_free_ns, lg_task_timing_t *timing)
{
    timing->dispatch_ns = timing->fanout_ns = timing->transition_ns = -1;
    timing->after_spawn = false;
    pthread_mutex_lock (&self->mutex);
    s_job_t *job = s_job (self, id);
    if (!job)
        goto done;
    if (s_in_span (job, task)) {
        if (job->spawn_sent_ns && attempt == 1) {
            timing->after_spawn = job->spawn_sent_ns > slot_free_ns;
            int64_t from = timing->after_spawn ? job->spawn_sent_ns
                                               : slot_free_ns;
            timing->dispatch_ns = received_ns - from;
            if (!job->fanout_seen) {
                timing->fanout_ns = received_ns - job->spawn_sent_ns;
                job->fanout_seen = true;
            }
        }
        goto done;
    }
    if (s_next_stage (job, task) && !job->transition_seen) {
        timing->transition_ns = received_ns - job->last_result_ns;
        job->transition_seen = true;
    }
    if (!spawn && (!job->has_span
                   || (int64_t) task > job->first + job->count)) {
        /* A stage of one plain task; a spawn task's span starts when its
           RESULT is sent. */
        job->first = (int64_t) task - 1;
        job->count = 1;
        job->results = 0;
        job->spawn_sent_ns = 0;
        job->has_span = true;
        job->fanout_seen = true;
        job->transition_seen = false;
    }
done:
    pthread_mutex_unlock (&self->mutex);
}

void
lg_tracker_spawn_sent (lg_tracker_t *self, const char *id, uint32_t task,
                       uint32_t count, int64_t sent_ns)
{
    pthread_mutex_lock (&self->mutex);
    s_job_t *job = s_job (self, id);
    if (job) {
        job->first = task;
        job->count = count;
        job->results = 0;
        job->spawn_sent_ns = sent_ns;
        job->last_result_ns = sent_ns;   /* an empty list ends the stage */
        job->has_span = true;
        job->fanout_seen = false;
        job->transition_seen = false;
    }
    pthread_mutex_unlock (&self->mutex);
}

void
lg_tracker_result_sent (lg_tracker_t *self, const char *id, uint32_t task,
                        int64_t sent_ns)
{
    pthread_mutex_lock (&self->mutex);
    s_job_t *job = s_job (self, id);
    if (job && s_in_span (job, task) && job->results < job->count) {
        job->results++;
        if (sent_ns > job->last_result_ns)
            job->last_result_ns = sent_ns;
    }
    pthread_mutex_unlock (&self->mutex);
}

uint64_t
lg_tracker_untracked (lg_tracker_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t untracked = self->untracked;
    pthread_mutex_unlock (&self->mutex);
    return untracked;
}
