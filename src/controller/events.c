/*  events.c: the event hub, a ring of numbered events behind a mutex.

    The ring is an array of chunk pointers; a chunk of S_CHUNK records is
    allocated the first time an event lands in it and kept from then on
    (a full ring of 65,536 events is about 10 MiB of records, plus the
    JSON texts of job, stage and worker events). Held events are the ids
    first..last; an id's slot follows from the id, so finding where a
    reader resumes is O(1).

    Readers copy records (and duplicate their strings) under the mutex and
    render after letting go of it, so the publishing loop waits at most
    for a copy, never for JSON being made or a socket being written.       */
#include "events.h"

#include "shoal/params.h"
#include "shoal/protocol.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*  Records per chunk of the ring.                                         */
#define S_CHUNK 1024

/*  Most records a reader looks at per hold of the mutex, so a reader far
    behind with a filter does not keep the publisher waiting long.         */
#define S_SCAN_MAX 4096

struct shoal_events {
    pthread_mutex_t mutex;       /* guards everything below                */
    pthread_cond_t changed;      /* broadcast on publish and close         */
    shoal_event_t **chunks;      /* chunk_count pointers, NULL until used  */
    size_t chunk_count;
    size_t capacity;             /* records held at most                   */
    uint64_t base;               /* ids of this run start at base + 1      */
    uint64_t first;              /* oldest held id; last + 1 when none     */
    uint64_t last;               /* newest id; base before the first       */
    bool closed;                 /* readers must go                        */
};

static const char *s_type_names[SHOAL_EVENT_TYPE_COUNT] = {
    [SHOAL_EVENT_JOB] = "job",
    [SHOAL_EVENT_STAGE] = "stage",
    [SHOAL_EVENT_TASK] = "task",
    [SHOAL_EVENT_WORKER] = "worker",
    [SHOAL_EVENT_RESET] = "reset",
};

const char *
shoal_event_type_name (shoal_event_type_t type)
{
    return (unsigned) type < SHOAL_EVENT_TYPE_COUNT ? s_type_names[type] : "?";
}

void
shoal_event_clear (shoal_event_t *event)
{
    if (!event)
        return;
    free (event->text);
    if (event->type == SHOAL_EVENT_TASK) {
        free (event->task.worker_long);
        free (event->task.error);
    }
    else if (event->type == SHOAL_EVENT_JOB) {
        free (event->job_state.params);
        free (event->job_state.error);
        free (event->job_state.stages);
    }
    memset (event, 0, sizeof *event);
}

shoal_events_t *
shoal_events_new (size_t capacity, uint64_t base)
{
    if (capacity < 1)
        capacity = 1;
    shoal_events_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->capacity = capacity;
    self->chunk_count = (capacity + S_CHUNK - 1) / S_CHUNK;
    self->chunks = calloc (self->chunk_count, sizeof *self->chunks);
    self->base = base;
    self->last = base;
    self->first = base + 1;
    pthread_condattr_t attr;
    bool ok = self->chunks && pthread_condattr_init (&attr) == 0;
    if (ok) {
        /* Time-outs on the monotonic clock: a wall clock step must not
           stretch or cut a keep-alive. */
        pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
        ok = pthread_cond_init (&self->changed, &attr) == 0;
        pthread_condattr_destroy (&attr);
    }
    if (ok && pthread_mutex_init (&self->mutex, NULL)) {
        pthread_cond_destroy (&self->changed);
        ok = false;
    }
    if (!ok) {
        free (self->chunks);
        free (self);
        return NULL;
    }
    return self;
}

void
shoal_events_destroy (shoal_events_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_events_t *self = *self_p;
    for (size_t c = 0; c < self->chunk_count; c++) {
        if (!self->chunks[c])
            continue;
        for (size_t i = 0; i < S_CHUNK; i++)
            shoal_event_clear (&self->chunks[c][i]);
        free (self->chunks[c]);
    }
    free (self->chunks);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

/*  The record slot of event `id`, allocating its chunk when `make`.
    NULL when the chunk is missing (not made yet, or out of memory).      */
static shoal_event_t *
s_slot (shoal_events_t *self, uint64_t id, bool make)
{
    size_t slot = (size_t) ((id - self->base - 1) % self->capacity);
    size_t chunk = slot / S_CHUNK;
    if (!self->chunks[chunk] && make)
        self->chunks[chunk] = calloc (S_CHUNK, sizeof (shoal_event_t));
    return self->chunks[chunk] ? &self->chunks[chunk][slot % S_CHUNK] : NULL;
}

uint64_t
shoal_events_publish (shoal_events_t *self, shoal_event_t *events,
                      size_t count)
{
    bool lost = false;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < count; i++) {
        uint64_t id = ++self->last;
        shoal_event_t *slot = s_slot (self, id, true);
        if (!slot) {
            /* Out of memory: the event is dropped, and so is everything
               held, so that a reader sees a reset rather than a gap. */
            shoal_event_clear (&events[i]);
            self->first = id + 1;
            lost = true;
            continue;
        }
        shoal_event_clear (slot);    /* the event `capacity` ids older */
        *slot = events[i];
        slot->id = id;
        memset (&events[i], 0, sizeof events[i]);
    }
    if (self->last >= self->first + self->capacity)
        self->first = self->last - self->capacity + 1;
    uint64_t last = self->last;
    pthread_mutex_unlock (&self->mutex);
    if (count)
        pthread_cond_broadcast (&self->changed);
    return lost ? 0 : last;
}

uint64_t
shoal_events_last (shoal_events_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t last = self->last;
    pthread_mutex_unlock (&self->mutex);
    return last;
}

void
shoal_events_close (shoal_events_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->closed = true;
    pthread_mutex_unlock (&self->mutex);
    pthread_cond_broadcast (&self->changed);
}

static char *
s_strdup (const char *text)
{
    return text ? strdup (text) : NULL;
}

/*  `count` records of `size` bytes copied, or NULL.                     */
static void *
s_memdup (const void *from, size_t size)
{
    void *to = from ? malloc (size) : NULL;
    if (to)
        memcpy (to, from, size);
    return to;
}

/*  Copies `from` into `to` with strings of its own; false when out of
    memory (then `to` is cleared).                                         */
static bool
s_copy (shoal_event_t *to, const shoal_event_t *from)
{
    *to = *from;
    to->text = s_strdup (from->text);
    bool ok = !from->text || to->text;
    if (from->type == SHOAL_EVENT_TASK) {
        to->task.worker_long = s_strdup (from->task.worker_long);
        to->task.error = s_strdup (from->task.error);
        ok = ok && (!from->task.worker_long || to->task.worker_long)
             && (!from->task.error || to->task.error);
    }
    else if (from->type == SHOAL_EVENT_JOB) {
        const shoal_event_job_t *job = &from->job_state;
        size_t stages = job->job_class ? job->job_class->stage_count : 0;
        to->job_state.params = s_strdup (job->params);
        to->job_state.error = s_strdup (job->error);
        to->job_state.stages = s_memdup (job->stages,
                                         stages * sizeof *job->stages);
        ok = ok && (!job->params || to->job_state.params)
             && (!job->error || to->job_state.error)
             && (!job->stages || to->job_state.stages);
    }
    if (!ok)
        shoal_event_clear (to);
    return ok;
}

int
shoal_events_read (shoal_events_t *self, uint64_t *cursor, const char *job,
                   shoal_event_t *out, size_t max, int timeout_ms,
                   bool *reset)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    int copied = 0;
    pthread_mutex_lock (&self->mutex);
    while (!self->closed) {
        /* What the reader wants is gone (or never was of this run). */
        if (*cursor + 1 < self->first || *cursor > self->last) {
            /* Returns at once, so the caller can say so before the
               events that follow the new cursor. */
            *reset = true;
            *cursor = self->first - 1;
            pthread_mutex_unlock (&self->mutex);
            return 0;
        }
        if (*cursor < self->last)
            break;
        if (pthread_cond_timedwait (&self->changed, &self->mutex, &deadline)
            == ETIMEDOUT)
            break;
    }
    if (self->closed) {
        pthread_mutex_unlock (&self->mutex);
        return -1;
    }
    size_t looked = 0;
    while (*cursor < self->last && (size_t) copied < max
           && looked < S_SCAN_MAX) {
        uint64_t id = *cursor + 1;
        const shoal_event_t *event = s_slot (self, id, false);
        looked++;
        if (event && event->id == id
            && (!job || strcmp (event->job, job) == 0)) {
            if (!s_copy (&out[copied], event))
                break;
            copied++;
        }
        *cursor = id;
    }
    pthread_mutex_unlock (&self->mutex);
    return copied;
}

/* ---- rendering ------------------------------------------------------ */

static json_t *
s_string_or_null (const char *text)
{
    return text ? json_string (text) : json_null ();
}

/*  The task object of GET /api/v1/jobs/{id}/tasks without "params", plus
    "job".                                                                 */
static char *
s_task_data (const shoal_event_t *event)
{
    const shoal_event_task_t *task = &event->task;
    const char *worker = task->worker_long ? task->worker_long
                         : task->worker[0] ? task->worker : NULL;
    json_t *object = json_pack (
        "{s:I, s:s, s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:o, "
        "s:o, s:o, s:o, s:s}",
        "id", (json_int_t) task->id,
        "stage", task->stage ? task->stage : "",
        "stage_index", (json_int_t) task->stage_index,
        "kind", task->index < 0 ? SHOAL_KIND_SPAWN : SHOAL_KIND_TASK,
        "task_class", task->task_class ? task->task_class : "",
        "state", task->state ? task->state : "",
        "index", task->index < 0 ? json_null () : json_integer (task->index),
        "exit_code", task->exit_code >= 0 ? json_integer (task->exit_code)
                                          : json_null (),
        "attempts", (json_int_t) task->attempts,
        "failures", (json_int_t) task->failures,
        "signal", task->signal ? json_integer (task->signal) : json_null (),
        "worker", s_string_or_null (worker),
        "error", s_string_or_null (task->error),
        "started_at", shoal_time_json (task->started_at),
        "finished_at", shoal_time_json (task->finished_at),
        "duration_ms", task->finished_at ? json_integer (task->duration_ms)
                                          : json_null (),
        "job", event->job);
    char *text = object ? json_dumps (object, JSON_COMPACT) : NULL;
    json_decref (object);
    return text;
}

/*  A stage as in the job view's `stages[]`, into `object`.               */
static void
s_stage_fields (json_t *object, const shoal_stage_def_t *def,
                const shoal_event_counts_t *now)
{
    uint32_t total = 0;
    for (int i = 0; i < SHOAL_TASK_STATE_COUNT; i++)
        total += now->counts[i];
    json_object_set_new (object, "name", json_string (def->name));
    json_object_set_new (object, "state", json_string (
                             shoal_stage_state_name (now->state)));
    json_object_set_new (object, "task_class",
                         json_string (def->task_class->id));
    json_object_set_new (object, "spawn_task", s_string_or_null (
                             def->spawn_task ? def->spawn_task->id : NULL));
    json_object_set_new (object, "job_failed_on_error",
                         json_boolean (def->job_failed_on_error));
    json_object_set_new (object, "tasks", json_pack (
        "{s:i, s:i, s:i, s:i, s:i, s:i}",
        "total", (int) total,
        "pending", (int) now->counts[SHOAL_TASK_PENDING],
        "running", (int) now->counts[SHOAL_TASK_RUNNING],
        "succeeded", (int) now->counts[SHOAL_TASK_SUCCEEDED],
        "failed", (int) now->counts[SHOAL_TASK_FAILED],
        "canceled", (int) now->counts[SHOAL_TASK_CANCELED]));
}

/*  {"job": ID, "index": N, ...the stage as in the job view}.            */
static char *
s_stage_data (const shoal_event_t *event)
{
    const shoal_event_stage_t *stage = &event->stage;
    if (!stage->job_class || stage->index >= stage->job_class->stage_count)
        return NULL;
    json_t *object = json_pack ("{s:s, s:I}", "job", event->job, "index",
                                (json_int_t) stage->index);
    if (!object)
        return NULL;
    s_stage_fields (object, &stage->job_class->stages[stage->index],
                    &stage->now);
    char *text = json_dumps (object, JSON_COMPACT);
    json_decref (object);
    return text;
}

/*  The job exactly as GET /api/v1/jobs/{id} shows it.                    */
static char *
s_job_data (const shoal_event_t *event)
{
    const shoal_event_job_t *job = &event->job_state;
    if (!job->job_class || !job->stages)
        return NULL;
    json_t *stages = json_array ();
    for (size_t i = 0; stages && i < job->job_class->stage_count; i++) {
        json_t *stage = json_object ();
        s_stage_fields (stage, &job->job_class->stages[i], &job->stages[i]);
        json_array_append_new (stages, stage);
    }
    json_t *params = job->params ? json_loads (job->params, 0, NULL) : NULL;
    json_t *object = json_pack (
        "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}",
        "id", event->job,
        "job", job->job_class->id,
        "state", shoal_job_state_name (job->state),
        "params", params ? params : json_object (),
        "created_at", shoal_time_json (job->created_at),
        "started_at", shoal_time_json (job->started_at),
        "finished_at", shoal_time_json (job->finished_at),
        "error", s_string_or_null (job->error),
        "retries", (json_int_t) job->retries,
        "definitions", job->definitions ? json_integer (job->definitions)
                                        : json_null (),
        "stages", stages);
    char *text = object ? json_dumps (object, JSON_COMPACT) : NULL;
    json_decref (object);
    return text;
}

char *
shoal_event_data (const shoal_event_t *event)
{
    switch (event->type) {
        case SHOAL_EVENT_TASK: return s_task_data (event);
        case SHOAL_EVENT_JOB: return s_job_data (event);
        case SHOAL_EVENT_STAGE: return s_stage_data (event);
        default: return s_strdup (event->text);
    }
}

/* ---- records from the scheduler (the loop thread) ------------------- */

/*  Copies a job id, cut to SHOAL_EVENT_JOB_MAX (the loop makes 16 hex
    digits). Once per event: no snprintf.                                 */
static void
s_copy_job_id (char *out, const char *id)
{
    size_t len = strnlen (id, SHOAL_EVENT_JOB_MAX);
    memcpy (out, id, len);
    out[len] = '\0';
}

static void
s_counts (const shoal_job_t *job, uint32_t stage, shoal_event_counts_t *out)
{
    shoal_stage_record_t record;
    shoal_job_stage_record (job, stage, &record);
    out->state = record.state;
    shoal_job_stage_counts (job, stage, out->counts);
}

void
shoal_event_set_task (shoal_event_t *event, const shoal_task_t *task)
{
    shoal_task_record_t record;
    shoal_task_record (task, &record);
    const shoal_job_t *job = shoal_task_job (task);
    const shoal_stage_def_t *def = &shoal_job_class (job)->stages[record.stage];
    event->type = SHOAL_EVENT_TASK;
    s_copy_job_id (event->job, shoal_job_id (job));
    shoal_event_task_t *out = &event->task;
    *out = (shoal_event_task_t) {
        .stage = def->name,
        .task_class = record.index < 0 && def->spawn_task
                          ? def->spawn_task->id : def->task_class->id,
        .state = shoal_task_state_name (record.state),
        .id = record.id,
        .stage_index = record.stage,
        .index = record.index,
        .attempts = record.attempt,
        .failures = record.failures,
        .exit_code = record.exit_code,
        .signal = record.signal,
        .started_at = record.started_at,
        .finished_at = record.finished_at,
        .duration_ms = record.duration_ms,
    };
    size_t len = record.worker ? strlen (record.worker) : 0;
    if (record.worker && len <= SHOAL_EVENT_WORKER_INLINE)
        memcpy (out->worker, record.worker, len + 1);
    else if (record.worker)
        out->worker_long = strdup (record.worker);
    if (record.error) {
        /* Rare: the REST view masks the job's secrets in it. */
        json_t *view = shoal_task_to_json (task);
        out->error = s_strdup (json_string_value (json_object_get (view,
                                                                  "error")));
        json_decref (view);
    }
}

void
shoal_event_set_stage (shoal_event_t *event, const shoal_job_t *job,
                       uint32_t stage)
{
    event->type = SHOAL_EVENT_STAGE;
    s_copy_job_id (event->job, shoal_job_id (job));
    event->stage.job_class = shoal_job_class (job);
    event->stage.index = stage;
    s_counts (job, stage, &event->stage.now);
}

char *
shoal_event_job_params (const shoal_job_t *job)
{
    shoal_job_record_t record;
    shoal_job_record (job, &record);
    json_t *masked = shoal_params_masked (shoal_job_class (job),
                                          record.params);
    char *text = masked ? json_dumps (masked, JSON_COMPACT) : NULL;
    json_decref (masked);
    return text;
}

void
shoal_event_set_job (shoal_event_t *event, const shoal_job_t *job,
                     const char *params)
{
    shoal_job_record_t record;
    shoal_job_record (job, &record);
    const shoal_job_class_t *job_class = shoal_job_class (job);
    event->type = SHOAL_EVENT_JOB;
    event->final = record.state >= SHOAL_JOB_SUCCEEDED;
    s_copy_job_id (event->job, record.id);
    shoal_event_job_t *out = &event->job_state;
    *out = (shoal_event_job_t) {
        .job_class = job_class,
        .state = record.state,
        .retries = record.retries,
        .definitions = record.definitions,
        .created_at = record.created_at,
        .started_at = record.started_at,
        .finished_at = record.finished_at,
        .params = params ? strdup (params) : shoal_event_job_params (job),
        .stages = calloc (job_class->stage_count, sizeof *out->stages),
    };
    for (uint32_t i = 0; out->stages && i < job_class->stage_count; i++)
        s_counts (job, i, &out->stages[i]);
    if (record.error) {
        /* Rare (an ended job): the REST view masks secrets in it. */
        json_t *view = shoal_job_to_json (job);
        out->error = s_strdup (json_string_value (json_object_get (view,
                                                                  "error")));
        json_decref (view);
    }
}
