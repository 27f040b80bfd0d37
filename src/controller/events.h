/*  events.h: the event hub behind GET /api/v1/events (Server-Sent Events).

    The controller loop publishes what changed in each round (jobs, stages,
    tasks, workers) as events with sequence numbers; HTTP handler threads
    read them, each from its own cursor, and block on the hub while there
    is nothing new. The hub holds the latest `capacity` events in a ring so
    a client that reconnects with Last-Event-ID gets exactly what it
    missed; one that fell further behind is told to reset.

    Cost: the loop thread fills fixed-size records (shoal_event_set_*):
    ids, states, counts, times, pointers into the definitions, and a few
    strings (a job's masked params, an error). No JSON is made there: the
    HTTP thread that sends an event renders it (shoal_event_data), the same
    text the REST views give. Worker events, rare, carry a JSON text. The
    ring is allocated in chunks as it fills, so a controller that has
    published nothing holds nothing.

    Sequence numbers are contiguous within a run: the event with id N sits
    at slot (N - base - 1) % capacity. A run starts numbering after `base`
    (the controller passes its start time in ms * 1000), so the ids of a
    later run are above those of an earlier one and an old Last-Event-ID
    gets a reset instead of being taken for a new event.

    Thread safety: one publisher (the loop), any number of readers; every
    call takes the hub's mutex. Readers copy records out under the mutex
    and render them after letting go of it.                                */
#ifndef SHOAL_CONTROLLER_EVENTS_H
#define SHOAL_CONTROLLER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/scheduler.h"

/*  Events held when the controller is not told otherwise.                 */
#define SHOAL_EVENTS_CAPACITY 65536

/*  Longest job id an event carries (the loop makes 16 hex digits).        */
#define SHOAL_EVENT_JOB_MAX 32

/*  Worker names up to this many bytes are kept inside the record.         */
#define SHOAL_EVENT_WORKER_INLINE 23

typedef enum {
    SHOAL_EVENT_JOB = 0,
    SHOAL_EVENT_STAGE,
    SHOAL_EVENT_TASK,
    SHOAL_EVENT_WORKER,
    SHOAL_EVENT_RESET,           /* never held: made for a reader          */
    SHOAL_EVENT_TYPE_COUNT
} shoal_event_type_t;

/*  The state of a task as the event shows it. Strings that come from the
    definitions are borrowed (the definitions outlive the hub).            */
typedef struct {
    const char *stage;           /* stage name (definitions)               */
    const char *task_class;      /* task class id (definitions)            */
    const char *state;           /* state name (static)                    */
    uint32_t id;                 /* task id within the job                 */
    uint32_t stage_index;        /* index of its stage                     */
    int32_t index;               /* position in its stage, -1: spawn task  */
    uint32_t attempts;           /* dispatches so far                      */
    uint32_t failures;           /* failed runs so far                     */
    int32_t exit_code;           /* -1: none                               */
    int32_t signal;              /* 0: none                                */
    int64_t started_at;          /* ms since the epoch, 0: not yet         */
    int64_t finished_at;         /* ms, 0: not final                       */
    int64_t duration_ms;         /* as the worker measured it              */
    char worker[SHOAL_EVENT_WORKER_INLINE + 1];
                                 /* last worker's name when it fits, ""
                                    when none or when in worker_long       */
    char *worker_long;           /* a longer name (owned), or NULL         */
    char *error;                 /* why it failed, secrets masked (owned),
                                    NULL when none                         */
} shoal_event_task_t;

/*  A stage's state and its tasks by state.                                */
typedef struct {
    uint32_t counts[SHOAL_TASK_STATE_COUNT]; /* tasks by state; they sum to
                                    the stage's total                      */
    shoal_stage_state_t state;
} shoal_event_counts_t;

/*  The state of a job as the event shows it.                              */
typedef struct {
    const shoal_job_class_t *job_class; /* definitions (borrowed)          */
    shoal_job_state_t state;
    uint32_t retries;            /* times it was retried                   */
    uint32_t definitions;        /* version of its definitions, 0: none    */
    int64_t created_at;          /* ms since the epoch                     */
    int64_t started_at;          /* ms, 0: not yet                         */
    int64_t finished_at;         /* ms, 0: not final                       */
    char *params;                /* its params as JSON, secrets masked
                                    (owned)                                */
    char *error;                 /* why it failed, masked (owned), or NULL */
    shoal_event_counts_t *stages;/* one per stage of the class (owned)     */
} shoal_event_job_t;

/*  The state of one stage of a job.                                       */
typedef struct {
    const shoal_job_class_t *job_class; /* definitions (borrowed)          */
    uint32_t index;              /* which stage                            */
    shoal_event_counts_t now;    /* its state and counts                   */
} shoal_event_stage_t;

/*  One event. Its strings are owned by the record: shoal_events_publish
    takes them, shoal_events_read hands out copies that shoal_event_clear
    frees.                                                                 */
typedef struct {
    uint64_t id;                 /* sequence number, set when published    */
    shoal_event_type_t type;
    bool final;                  /* a job event whose job has ended        */
    char job[SHOAL_EVENT_JOB_MAX + 1]; /* the job it is about, "" for a
                                    worker                                 */
    char *text;                  /* WORKER, RESET: the data line (owned)   */
    union {
        shoal_event_task_t task;     /* TASK                               */
        shoal_event_job_t job_state; /* JOB                                */
        shoal_event_stage_t stage;   /* STAGE                              */
    };
} shoal_event_t;

typedef struct shoal_events shoal_events_t;

/*  Makes a hub holding up to `capacity` events (at least 1), numbering
    from base + 1. Returns NULL when out of memory.                        */
shoal_events_t *shoal_events_new (size_t capacity, uint64_t base);

/*  Frees the hub and every held event. No reader may be inside.           */
void shoal_events_destroy (shoal_events_t **self_p);

/*  Appends `count` events, numbering them, and wakes the readers. The hub
    takes the strings of each record (the array itself stays the
    caller's, its records zeroed). The oldest events are dropped past the
    capacity. Returns the id of the last event published (the previous
    last when count is 0), or 0 when a chunk of the ring could not be
    allocated (the events are then dropped and their strings freed, and
    readers behind get a reset: a gap is never hidden).                    */
uint64_t shoal_events_publish (shoal_events_t *self, shoal_event_t *events,
                               size_t count);

/*  The id of the last event published (base before the first).           */
uint64_t shoal_events_last (shoal_events_t *self);

/*  Reads the events after *cursor, at most `max` into `out`, keeping only
    those of job `job` (NULL: all). Waits up to `timeout_ms` while there is
    nothing after *cursor. When events after *cursor are no longer held
    (the reader fell behind, or *cursor is not an id of this run), sets
    *reset, moves *cursor to just before the oldest held event and returns
    0 at once (the reader says so, then reads on from there). Moves
    *cursor past every event looked at, kept or not. Returns how many
    events were copied into `out` (each to be freed with
    shoal_event_clear), 0 on time-out (or when none of those looked at
    matched), or -1 once the hub is closed.                                */
int shoal_events_read (shoal_events_t *self, uint64_t *cursor,
                       const char *job, shoal_event_t *out, size_t max,
                       int timeout_ms, bool *reset);

/*  Closes the hub: every waiting reader wakes and every read returns -1
    from now on. Publishing still works (and is then pointless).           */
void shoal_events_close (shoal_events_t *self);

/*  Frees the strings of a record and zeroes it.                           */
void shoal_event_clear (shoal_event_t *event);

/*  The SSE name of an event type ("job", ..., "reset").                   */
const char *shoal_event_type_name (shoal_event_type_t type);

/*  The data line of `event` (one line of JSON; the caller frees it), or
    NULL when out of memory. Job, stage and task events are rendered here,
    in the same text as their REST views.                                  */
char *shoal_event_data (const shoal_event_t *event);

/*  Fill a zeroed `event` from the scheduler's current state (the loop
    thread; cheap: no JSON except for an error, which is rare).           */
void shoal_event_set_task (shoal_event_t *event, const shoal_task_t *task);
void shoal_event_set_stage (shoal_event_t *event, const shoal_job_t *job,
                            uint32_t stage);
/*  `params` is the job's masked params as JSON text (copied), which a
    caller may keep from one event to the next (they never change); NULL:
    made here.                                                             */
void shoal_event_set_job (shoal_event_t *event, const shoal_job_t *job,
                          const char *params);

/*  The job's params as JSON text with secrets masked (the caller frees
    it), or NULL when out of memory.                                       */
char *shoal_event_job_params (const shoal_job_t *job);

#endif
