/*  store.h: the controller's durable state, in an embedded SQLite file.

    Jobs, their stages and tasks (attempts, results, spawn entries) and the
    idempotency keys of submissions are kept in one SQLite database in WAL
    mode. The controller writes what the scheduler reports as changed, in
    one transaction per batch of events, and commits a new job before it
    answers 201; after a crash it reads everything back and carries on.

    With synchronous=NORMAL in WAL mode a commit survives the process being
    killed at any moment; a power cut may lose the last commits. SQLite
    needs working POSIX locks and shared memory: keep the state directory
    on a local disk, not on NFS, even when the data directory is shared.   */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stdint.h>

#include "shoal/error.h"
#include "shoal/scheduler.h"

typedef struct shoal_store shoal_store_t;

/*  Opens (creating when missing) the database at `path`, mode 0600.
    Returns NULL with `err` when it cannot be opened or is not ours.      */
shoal_store_t *shoal_store_open (const char *path, shoal_error_t *err);

void shoal_store_destroy (shoal_store_t **self_p);

/*  Reads every job and task back into `scheduler` (fresh, over the same
    definitions), ending with shoal_scheduler_restore_done. `key_fn` gets
    each remembered idempotency key, oldest first. Returns 0 or an error;
    `jobs` is set to the number of jobs read.                              */
typedef void (shoal_store_key_fn) (const char *key, uint64_t fingerprint,
                                   const char *job_id, void *arg);
int shoal_store_load (shoal_store_t *self, shoal_scheduler_t *scheduler,
                      int64_t now, int64_t lease_ms, shoal_store_key_fn *key_fn,
                      void *arg, size_t *jobs, shoal_error_t *err);

/*  Writes what the scheduler changed since the last save, and `key` (may
    be NULL) for the job `key_job`, in one transaction. Returns 0 or an
    error (nothing of the batch is then stored).                           */
int shoal_store_save (shoal_store_t *self, shoal_scheduler_t *scheduler,
                      const char *key, uint64_t fingerprint,
                      const char *key_job, shoal_error_t *err);

/*  The same save in pieces, for a caller that walks the scheduler's
    changes itself (the controller feeds one walk to the store and to its
    event stream): shoal_store_begin opens the transaction (and, after a
    failed save, writes everything again); put each job and task that
    shoal_scheduler_flush reports; shoal_store_commit adds `key` (may be
    NULL) and commits. When begin fails the caller still flushes the
    scheduler and skips the rest: the next save writes everything. A put
    that fails makes the commit fail (and roll back).                     */
int shoal_store_begin (shoal_store_t *self, shoal_scheduler_t *scheduler,
                       shoal_error_t *err);
void shoal_store_put_job (shoal_store_t *self, const shoal_job_t *job);
void shoal_store_put_task (shoal_store_t *self, const shoal_task_t *task);
int shoal_store_commit (shoal_store_t *self, const char *key,
                        uint64_t fingerprint, const char *key_job,
                        shoal_error_t *err);

/*  Forgets an idempotency key (the oldest, when the controller's table is
    full). Errors are ignored: a stale key only costs a row.              */
void shoal_store_forget_key (shoal_store_t *self, const char *key);

#endif
