/*  tracker.h: what the simulated workers know about each job's stages,
    so they can time dispatch and stage transitions.

    A job's tasks are numbered in creation order and a stage's tasks are
    contiguous (docs/architecture.md), so the tracker keeps, per job, the
    span of task ids of its current stage: (first, first + count]. The
    span starts when a simulated worker sends a spawn RESULT with `count`
    entries (first = the spawn task's id), or when a plain task arrives
    outside the span (a stage of one task: first = id - 1, count = 1).

    - dispatch latency of a fanned-out task (attempt 1 only): received
      minus the later of "the stage's spawn RESULT was sent" and "the
      receiving slot was freed" (its previous RESULT was sent, or the
      WELCOME came): the time the controller took to hand a ready task to
      a free slot, queueing behind busy slots excluded;
    - fan-out time: first task of a spawned stage received minus the
      spawn RESULT sent;
    - stage transition latency: first task of the next stage received
      minus the moment the last RESULT of the stage was sent.

    Shared by every simulated-worker thread: one mutex, held for a hash
    lookup and a few stores per message.                                   */
#ifndef SHOAL_LOADGEN_TRACKER_H
#define SHOAL_LOADGEN_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

/*  Longest job id the tracker accepts (the controller makes 16 hex).      */
#define LG_JOB_ID_MAX 64

/*  Jobs tracked at most; past this a job is not timed (and counted).      */
#define LG_TRACKER_MAX_JOBS (1024u * 1024)

typedef struct lg_tracker lg_tracker_t;

/*  What one received TASK means for the figures: each value is -1 when
    the task gives no sample of that kind.                                 */
typedef struct {
    int64_t dispatch_ns;      /* dispatch latency                          */
    bool after_spawn;         /* ... timed from the spawn RESULT: the slot
                                 was free before the stage had tasks, so
                                 the task left in the fan-out's burst     */
    int64_t fanout_ns;        /* spawn RESULT sent -> first task of stage  */
    int64_t transition_ns;    /* last RESULT of a stage -> this task       */
} lg_task_timing_t;

/*  Returns a new tracker or NULL when out of memory.                      */
lg_tracker_t *lg_tracker_new (void);

/*  Frees the tracker. Accepts NULL, nulls the pointer.                    */
void lg_tracker_destroy (lg_tracker_t **self_p);

/*  A TASK of `job` (borrowed) arrived at `received_ns` on a slot freed at
    `slot_free_ns`. Fills `timing`.                                        */
void lg_tracker_task (lg_tracker_t *self, const char *job, uint32_t task,
                      uint32_t attempt, bool spawn, int64_t received_ns,
                      int64_t slot_free_ns, lg_task_timing_t *timing);

/*  A spawn RESULT with `count` entries for task `task` of `job` was sent
    at `sent_ns`: the stage's span is now (task, task + count].            */
void lg_tracker_spawn_sent (lg_tracker_t *self, const char *job,
                            uint32_t task, uint32_t count, int64_t sent_ns);

/*  A RESULT for a plain task was sent at `sent_ns`.                       */
void lg_tracker_result_sent (lg_tracker_t *self, const char *job,
                             uint32_t task, int64_t sent_ns);

/*  Jobs that could not be tracked (over LG_TRACKER_MAX_JOBS or out of
    memory).                                                               */
uint64_t lg_tracker_untracked (lg_tracker_t *self);

#endif
