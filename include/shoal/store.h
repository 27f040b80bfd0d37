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

/*  Stores the text of the definitions (the same text once) and gives its
    version, from 1; call it before shoal_store_load with the scheduler's
    definitions, and give their version to the scheduler
    (shoal_scheduler_set_definitions_version). Returns 0 or an error.     */
int shoal_store_put_definitions (shoal_store_t *self, const char *text,
                                 size_t len, uint32_t *version,
                                 shoal_error_t *err);

/*  Reads every job and task back into `scheduler` (fresh), ending with
    shoal_scheduler_restore_done. A job stored with other definitions than
    the scheduler's is read back with those: they are read from the store
    and kept by the scheduler. Definitions that cannot be read back are
    logged, and their jobs read back with the scheduler's own (an error
    if a job's class is not there or has another number of stages; so
    too for a job stored before definitions were kept). Then jobs stored
    without definitions are given the scheduler's, and definitions no job
    names any more are dropped. `key_fn` gets each remembered idempotency
    key, oldest first. Returns 0 or an error; `jobs` is set to the number
    of jobs read.                                                          */
typedef void (shoal_store_key_fn) (const char *key, uint64_t fingerprint,
                                   const char *job_id, void *arg);
int shoal_store_load (shoal_store_t *self, shoal_scheduler_t *scheduler,
                      int64_t now, int64_t lease_ms, shoal_store_key_fn *key_fn,
                      void *arg, size_t *jobs, shoal_error_t *err);

/*  Writes what the scheduler changed since the last save, and `key` (may
    be NULL) for the job `key_job`, in one transaction, on the calling
    thread. Returns 0 or an error (nothing of the batch is then stored;
    the next save writes everything).                                      */
int shoal_store_save (shoal_store_t *self, shoal_scheduler_t *scheduler,
                      const char *key, uint64_t fingerprint,
                      const char *key_job, shoal_error_t *err);

/*  A batch: copies of changed jobs and tasks (and idempotency keys to
    add or drop), taken on the thread that owns the scheduler and written
    by shoal_store_write on any other, one thread at a time: the batch
    holds no pointer into the scheduler. A row is written as its state
    was when it was put; of the same job or task put twice, the later row
    wins. Running out of memory while putting marks the batch broken:
    shoal_store_write then refuses it.                                    */
typedef struct shoal_store_batch shoal_store_batch_t;

shoal_store_batch_t *shoal_store_batch_new (void);
void shoal_store_batch_destroy (shoal_store_batch_t **self_p);
/*  Empties the batch, keeping its memory for the next one.                */
void shoal_store_batch_clear (shoal_store_batch_t *self);
/*  Rows put since the last clear.                                         */
size_t shoal_store_batch_rows (const shoal_store_batch_t *self);
/*  Memory the batch holds (its capacity, not what is used).               */
size_t shoal_store_batch_bytes (const shoal_store_batch_t *self);
void shoal_store_batch_put_job (shoal_store_batch_t *self,
                                const shoal_job_t *job);
void shoal_store_batch_put_task (shoal_store_batch_t *self,
                                 const shoal_task_t *task);
/*  Every job and task the scheduler holds: after a failed write, whose
    changes the scheduler no longer lists. O(jobs + tasks).               */
void shoal_store_batch_put_all (shoal_store_batch_t *self,
                                const shoal_scheduler_t *scheduler);
/*  Remembers `key` for the job `job_id`, or forgets it (the oldest key,
    when the controller's table is full).                                  */
void shoal_store_batch_put_key (shoal_store_batch_t *self, const char *key,
                                uint64_t fingerprint, const char *job_id);
void shoal_store_batch_forget_key (shoal_store_batch_t *self,
                                   const char *key);
/*  Forgets the job `job_id` (past its retention, see
    shoal_scheduler_evict): its row, its tasks' rows and the idempotency
    keys that name it. Deletes are written after every other row of the
    batches written together, so a put of the same job in them is undone
    too.                                                                   */
void shoal_store_batch_delete_job (shoal_store_batch_t *self,
                                   const char *job_id);

/*  Writes `count` batches, in order, in one transaction. A row of a job
    or task that a later row of the same job or task in these batches
    replaces is left out. Returns 0, or an error when any row failed:
    then nothing of them is stored, and the caller must write everything
    again (shoal_store_batch_put_all).                                    */
int shoal_store_write (shoal_store_t *self,
                       shoal_store_batch_t *const *batches, size_t count,
                       shoal_error_t *err);

/*  Rewrites the database without its free pages (those of jobs forgotten
    past their retention: SQLite reuses them, but the file does not shrink
    by itself), on the calling thread, before any load or write. Takes
    time and free disk space in proportion to what the database holds.
    Returns 0 with the sizes in bytes, or an error.                       */
typedef struct {
    uint64_t before, free_before; /* the file, and its free pages         */
    uint64_t after;
} shoal_store_sizes_t;
int shoal_store_compact (shoal_store_t *self, shoal_store_sizes_t *sizes,
                         shoal_error_t *err);

/*  Since the store was opened: rows of committed writes, those written
    and those left out because a later row of the same job or task in the
    same write replaced them; checkpoints of the write-ahead log into the
    database; and how often the log's new pages were handed to the disk
    ahead of a checkpoint (store.c, s_wal_hook).                           */
typedef struct {
    uint64_t written, replaced;
    uint64_t checkpoints, writebacks;
} shoal_store_counts_t;
void shoal_store_counts (const shoal_store_t *self,
                         shoal_store_counts_t *counts);

#endif
