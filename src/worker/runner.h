/*  runner.h: the worker's running tasks, one child process group each.

    The runner owns a fixed table of `slots` entries, one per task that
    runs here; starting a task when every entry is taken is refused, so
    the worker never runs more than it advertised. A task runs in its job
    directory on the shared volume (<data-dir>/jobs/<job>/), in a process
    group of its own so cancel reaches everything it started, with stdin
    from /dev/null and stdout and stderr in <jobdir>/logs/<task>.log.

    The runner does not wait on its own: the owner of the event loop calls
    shoal_runner_reap when SIGCHLD says a child ended, and
    shoal_runner_tick to escalate signals that were not heeded. Time is
    passed in (monotonic milliseconds) so the loop reads the clock once
    per turn.                                                              */
#ifndef SHOAL_WORKER_RUNNER_H
#define SHOAL_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "shoal/error.h"
#include "shoal/protocol.h"

/*  Longest job id; job ids are also directory names.                      */
#define SHOAL_JOB_ID_MAX 64

/*  How long a signalled process group has to exit before SIGKILL.         */
#define SHOAL_RUNNER_KILL_AFTER_MS 5000

/*  Largest spawn.json read: the RESULT carrying it must stay under
    SHOAL_MSG_MAX_SIZE, with room left for the other fields.               */
#define SHOAL_RUNNER_SPAWN_MAX_SIZE (SHOAL_MSG_MAX_SIZE - 1024 * 1024)

typedef struct shoal_runner shoal_runner_t;

/*  One task to start. Everything is borrowed for the duration of the
    call; the arguments are already filled.                                */
typedef struct {
    const char *job;          /* job id, checked by shoal_runner_job_id_ok */
    json_int_t task;          /* task id within the job, >= 0              */
    json_int_t attempt;       /* attempt number, >= 0                      */
    bool spawn;               /* read spawn.json after a clean exit        */
    const char *command;      /* argv[0], looked up in PATH                */
    char *const *args;        /* argv[1..], `argc` of them                 */
    size_t argc;
    int64_t timeout_ms;       /* stop it after this long; 0: never         */
} shoal_runner_task_t;

/*  Called once per ended task with its RESULT body (a new reference the
    callee owns).                                                          */
typedef void (*shoal_runner_result_fn) (json_t *result, void *arg);

/*  Creates the data directory (mkdir -p) and a table of `slots` entries.
    Returns NULL with `err` saying why (field "data-dir" when the directory
    cannot be made or resolved).                                           */
shoal_runner_t *shoal_runner_new (const char *data_dir, size_t slots,
                                  shoal_error_t *err);

/*  Kills every process group still running (SIGKILL) and reaps it, so no
    child outlives the runner; then frees it. Accepts NULL, nulls the
    pointer.                                                               */
void shoal_runner_destroy (shoal_runner_t **self_p);

/*  The absolute data directory (borrowed).                                */
const char *shoal_runner_data_dir (const shoal_runner_t *self);

/*  Number of tasks running (started and not yet reaped).                  */
size_t shoal_runner_running (const shoal_runner_t *self);

/*  True when `job` matches [A-Za-z0-9_-]{1,64}: job ids come from the
    network and become path components, so nothing else is let through.   */
bool shoal_runner_job_id_ok (const char *job);

/*  Starts `task` at time `now`. Returns 0 once the command has been
    exec'd, or a negative code with err->message fit to send as the RESULT
    `error`: "no free slot" (SHOAL_ELIMIT), "cannot run 'cmd': <reason>"
    (SHOAL_EIO), or a job directory that cannot be made (SHOAL_EIO). For a
    spawn task a stale spawn.json is removed first.                        */
int shoal_runner_start (shoal_runner_t *self, const shoal_runner_task_t *task,
                        int64_t now, shoal_error_t *err);

/*  Asks attempt `attempt` of task `task` of `job` to stop: SIGTERM to its
    process group now, SIGKILL after SHOAL_RUNNER_KILL_AFTER_MS. Its result
    will say "canceled". Returns 0, or SHOAL_ENOTFOUND when that attempt
    does not run here.                                                     */
int shoal_runner_cancel (shoal_runner_t *self, const char *job,
                         json_int_t task, json_int_t attempt, int64_t now);

/*  The attempts running here, as [{job, task, attempt}] (new reference),
    for a HELLO after a reconnect: the controller adopts them.             */
json_t *shoal_runner_attempts (const shoal_runner_t *self);

/*  Shutdown: SIGTERM to every process group, SIGKILL after
    SHOAL_RUNNER_KILL_AFTER_MS. Tasks stopped this way produce no result:
    the controller re-queues the tasks of a worker that said BYE.          */
void shoal_runner_stop_all (shoal_runner_t *self, int64_t now);

/*  Reaps every ended child (waitpid WNOHANG loop) and calls `fn` with the
    RESULT of each task that ended, reading spawn.json for spawn tasks
    that exited 0. Children that are not tasks are reaped and ignored.    */
void shoal_runner_reap (shoal_runner_t *self, int64_t now,
                        shoal_runner_result_fn fn, void *arg);

/*  Stops tasks that ran past their timeout (SIGTERM to the group, SIGKILL
    after the grace period; their result says "timeout"), and sends
    SIGKILL to process groups whose grace period has run out.              */
void shoal_runner_tick (shoal_runner_t *self, int64_t now);

/*  The earliest time shoal_runner_tick has work to do, or -1 for never.   */
int64_t shoal_runner_next_deadline (const shoal_runner_t *self);

#endif
