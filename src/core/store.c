/*  store.c: SQLite persistence of the scheduler's state.

    One row per job (its stages as a small JSON array), one row per task,
    one row per remembered idempotency key. A task row is keyed by one
    integer made of its job's seq and its id, so that writing it is one
    search of the table's own B-tree by rowid, not of a text index. Rows
    are written with upserts from prepared statements inside one
    transaction per save, so a batch of events costs one commit; in WAL
    mode with synchronous=NORMAL a commit is an append to the log, and
    survives the process dying at any moment. Of the rows of one
    transaction, those a later row of the same job or task replaces are
    left out.

    A save that fails is rolled back, and the next save writes every job
    and task again, so nothing the scheduler changed is left out.

    Each text of the definitions is kept once, numbered; a job row names
    the one it was submitted under, and is read back with it.              */
#include "shoal/store.h"

#include "shoal/defs.h"
#include "shoal/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*  The schema this code reads and writes (PRAGMA user_version). Version
    1 keyed tasks by (job id text, task id); version 2 kept no definitions.
    Both are moved to 3 on open.                                          */
#define S_SCHEMA_VERSION 3

/*  A task's key: the low 32 bits of its job's seq (unique among the jobs
    held, see shoal_job_seq), then its id. The keys of one job are one
    range of rowids, of one sign, whichever seq it has.                   */
#define S_KEY_SQL(seq) "((" seq " & 4294967295) << 32)"

static sqlite3_int64
s_task_key (uint32_t job_key, uint32_t id)
{
    return (sqlite3_int64) (((uint64_t) job_key << 32) | id);
}

/*  The tasks table, named `name` (the migration builds a copy first).   */
#define S_TASK_TABLE(name) \
    "CREATE TABLE " name " (" \
    "  key INTEGER PRIMARY KEY,"  /* see S_KEY_SQL                       */ \
    "  stage INTEGER NOT NULL," \
    "  idx INTEGER NOT NULL," \
    "  state INTEGER NOT NULL," \
    "  attempt INTEGER NOT NULL," \
    "  losses INTEGER NOT NULL," \
    "  failures INTEGER NOT NULL," \
    "  exit_code INTEGER NOT NULL," \
    "  signal INTEGER NOT NULL," \
    "  error TEXT," \
    "  worker TEXT," \
    "  entry TEXT,"               /* spawn entry JSON                    */ \
    "  started_at INTEGER NOT NULL," \
    "  finished_at INTEGER NOT NULL," \
    "  duration_ms INTEGER NOT NULL," \
    "  wake_at INTEGER NOT NULL);"

/*  Each text of the definitions a job was submitted under, once: a job
    row names its version, and is read back with them whatever the
    definitions are by then.                                               */
#define S_DEFINITIONS_TABLE \
    "CREATE TABLE definitions (" \
    "  version INTEGER PRIMARY KEY," \
    "  text BLOB NOT NULL);"

/*  Its columns after the key.                                             */
#define S_TASK_COLUMNS \
    "stage, idx, state, attempt, losses, failures, exit_code, signal," \
    " error, worker, entry, started_at, finished_at, duration_ms, wake_at"

static const char *s_schema =
    "CREATE TABLE jobs ("
    "  seq INTEGER PRIMARY KEY,"            /* the scheduler's seq       */
    "  id TEXT NOT NULL UNIQUE,"
    "  class TEXT NOT NULL,"
    "  params TEXT NOT NULL,"               /* JSON object of strings    */
    "  state INTEGER NOT NULL,"
    "  stage INTEGER NOT NULL,"
    "  retries INTEGER NOT NULL,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  finished_at INTEGER NOT NULL,"
    "  stages TEXT NOT NULL,"               /* [[state, first, count,
                                               spawn_pending], ...]      */
    "  definitions INTEGER);"               /* S_DEFINITIONS_TABLE's
                                               version; NULL: unknown    */
    S_DEFINITIONS_TABLE
    S_TASK_TABLE ("tasks")
    "CREATE TABLE idempotency ("
    "  seq INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  fingerprint INTEGER NOT NULL,"
    "  job TEXT NOT NULL);"
    /* A job past its retention drops its keys by job: without this index
       each such delete would scan every remembered key. */
    "CREATE INDEX idempotency_job ON idempotency (job);"
    "PRAGMA user_version = 3;";

/*  From version 1: the same rows, each task keyed by its job's seq. A
    task whose job row is missing was never read back; it is left out.   */
static const char *s_migrate_from_1 =
    S_TASK_TABLE ("tasks_v2")
    "INSERT INTO tasks_v2 (key, " S_TASK_COLUMNS ")"
    " SELECT new_key, " S_TASK_COLUMNS " FROM"
    " (SELECT " S_KEY_SQL ("jobs.seq") " | tasks.id AS new_key, tasks.*"
    "  FROM tasks JOIN jobs ON jobs.id = tasks.job);"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks_v2 RENAME TO tasks;"
    "PRAGMA user_version = 2;";

/*  From version 2: jobs stored before it have no definitions (NULL); the
    first load that reads them back with the current ones records those
    (shoal_store_load).                                                   */
static const char *s_migrate_from_2 =
    S_DEFINITIONS_TABLE
    "ALTER TABLE jobs ADD COLUMN definitions INTEGER;"
    "PRAGMA user_version = 3;";

enum { S_PUT_JOB, S_SET_JOB, S_PUT_TASK, S_PUT_KEY, S_DEL_KEY,
       S_DEL_JOB, S_DEL_JOB_TASKS, S_DEL_JOB_KEYS, S_BEGIN, S_COMMIT,
       S_ROLLBACK, S_STATEMENTS };

/*  A job row is written whole once (S_PUT_JOB), then only its changing
    columns are updated in place (S_SET_JOB), which binds no params: a
    job changes in almost every save while it runs. Both number their
    parameters alike, so one set of bindings serves either. A task row
    is small and changes ~3 times in its life: one INSERT OR REPLACE
    costs less than an UPDATE that misses before the first insert.        */
static const char *s_sql[S_STATEMENTS] = {
    [S_SET_JOB] =
        "UPDATE jobs SET state = ?4, stage = ?5, retries = ?6, error = ?7,"
        " started_at = ?9, finished_at = ?10, stages = ?11 WHERE seq = ?12",
    [S_PUT_JOB] =
        "INSERT INTO jobs (seq, id, class, params, state, stage, retries,"
        " error, created_at, started_at, finished_at, stages, definitions)"
        " VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13)"
        " ON CONFLICT (id) DO UPDATE SET state = ?4, stage = ?5,"
        " retries = ?6, error = ?7, started_at = ?9, finished_at = ?10,"
        " stages = ?11",
    [S_PUT_TASK] =
        "INSERT OR REPLACE INTO tasks (key, " S_TASK_COLUMNS ")"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15, ?16)",
    [S_PUT_KEY] =
        "INSERT OR REPLACE INTO idempotency (key, fingerprint, job)"
        " VALUES (?1, ?2, ?3)",
    [S_DEL_KEY] = "DELETE FROM idempotency WHERE key = ?1",
    /* A forgotten job (past its retention): each by an index. */
    [S_DEL_JOB] = "DELETE FROM jobs WHERE id = ?1",
    [S_DEL_JOB_TASKS] =
        "DELETE FROM tasks WHERE key BETWEEN"
        " (SELECT " S_KEY_SQL ("seq") " FROM jobs WHERE id = ?1) AND"
        " (SELECT " S_KEY_SQL ("seq") " | 4294967295 FROM jobs WHERE id = ?1)",
    [S_DEL_JOB_KEYS] = "DELETE FROM idempotency WHERE job = ?1",
    /* Prepared like the rest: a write under a steady load of small jobs
       carries a row or two, and parsing BEGIN and COMMIT again for each
       was 3 % of the controller's time (docs/benchmarks-history.md). */
    [S_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

/*  Where the last row of a job or a changed task is among the batches of
    one write (open addressing; `at` 0 marks a free slot).                */
typedef struct {
    uint64_t key;                /* a job's seq, or a task's key           */
    uint32_t at;                 /* 1 + its place among the job and
                                    changed-task rows, in write order     */
    bool task;
} s_last_row_t;

/*  The log is checkpointed into the database once it holds this many
    frames (SQLite's own default).                                         */
#define S_CHECKPOINT_FRAMES 1000

/*  Every this many frames appended to the log, its new pages are handed
    to the disk (s_wal_hook).                                              */
#define S_WRITEBACK_FRAMES 64

struct shoal_store {
    sqlite3 *db;
    char *wal_path;              /* the write-ahead log's file              */
    int wal_fd;                  /* opened on it after the first commit,
                                    for writeback only; -1: not (yet)      */
    int wal_handed;              /* frames of the log handed to the disk   */
    sqlite3_stmt *stmt[S_STATEMENTS];  /* prepared once                   */
    s_last_row_t *last;          /* kept from write to write              */
    size_t last_cap;             /* slots, a power of two                  */
    shoal_store_counts_t counts; /* of committed writes                   */
    int failed;                  /* SQLite code of the first error in a
                                    save, SQLITE_OK while all is well     */
    char failure[256];           /* its message                           */
    bool resync;                 /* a save failed: write everything next   */
    uint32_t *unreadable;        /* definitions versions that could not be
                                    read back (s_keep_definitions)        */
    size_t unreadable_count;
};

static int
s_fail (shoal_store_t *self, shoal_error_t *err, const char *what)
{
    return shoal_error_set (err, SHOAL_EIO, "store", "state store: %s: %s",
                            what, self && self->db ? sqlite3_errmsg (self->db)
                                                   : "cannot open");
}

static int
s_exec (shoal_store_t *self, const char *sql, shoal_error_t *err)
{
    char *message = NULL;
    if (sqlite3_exec (self->db, sql, NULL, NULL, &message) == SQLITE_OK)
        return 0;
    shoal_error_set (err, SHOAL_EIO, "store", "state store: %s",
                     message ? message : sqlite3_errmsg (self->db));
    sqlite3_free (message);
    return SHOAL_EIO;
}

/*  Runs one of the transaction statements (S_BEGIN, S_COMMIT,
    S_ROLLBACK); returns the SQLite code, its message kept in `failure`
    when it failed.                                                       */
static int
s_transaction (shoal_store_t *self, int which)
{
    sqlite3_stmt *stmt = self->stmt[which];
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    else
        snprintf (self->failure, sizeof self->failure, "%s",
                  sqlite3_errmsg (self->db));
    sqlite3_reset (stmt);
    return rc;
}

/*  Creates the tables of an empty store (`version` 0), or moves one of
    an older version to this one, in one transaction.                     */
static int
s_create (shoal_store_t *self, const char *path, int version,
          shoal_error_t *err)
{
    if (s_exec (self, "BEGIN", err))
        return SHOAL_EIO;
    if ((version == 0 && s_exec (self, s_schema, err))
        || (version == 1 && s_exec (self, s_migrate_from_1, err))
        || (version >= 1 && s_exec (self, s_migrate_from_2, err))
        || s_exec (self, "COMMIT", err)) {
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        return SHOAL_EIO;
    }
    if (version > 0)
        shoal_info ("state store %s: moved from schema %d to %d", path,
                    version, S_SCHEMA_VERSION);
    return 0;
}

/*  Before SQLite's first use: no statistics of its memory. Kept, they
    take a global mutex around every allocation SQLite makes (3 % of the
    writer's time at half peak, docs/benchmarks-history.md); nothing here
    reads them.                                                           */
static void
s_configure_sqlite (void)
{
    sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
}

/*  Called after each commit with the frames now in the log.

    A checkpoint copies the log into the database, and first makes the
    log durable: an fdatasync of every frame written since the last one,
    ~4 MiB for 1,000 frames. On a disk that took 3.5-4.5 ms, in the
    writer's thread, so every submission answered in those milliseconds
    waited for it: at 1,000 submissions/s, a stall every ~0.23 s, and the
    most of REST's 99th percentile (docs/benchmarks-history.md). So the
    log's new pages are handed to the disk as they come, 64 frames at a time
    (sync_file_range, which starts the writes and does not wait for
    them), and the checkpoint's fdatasync finds little left to write.
    Durability is unchanged: SQLite syncs what it synced before, when it
    did; only the work is spread out.

    The log's file is opened by its name for this, read-only. Closing that
    descriptor releases no lock of SQLite's: it locks the database file,
    never the log. Should it not open, the checkpoints sync as before.    */
static int
s_wal_hook (void *arg, sqlite3 *db, const char *name, int frames)
{
    shoal_store_t *self = arg;
    if (frames >= S_CHECKPOINT_FRAMES) {
        /* A checkpoint that cannot finish (SQLITE_BUSY) is tried again
           after the next commit. */
        if (sqlite3_wal_checkpoint_v2 (db, name, SQLITE_CHECKPOINT_PASSIVE,
                                       NULL, NULL) == SQLITE_OK)
            self->counts.checkpoints++;
        self->wal_handed = 0;   /* the next commit starts the log again */
        return SQLITE_OK;
    }
    if (frames < self->wal_handed)
        self->wal_handed = 0;   /* the log started again */
    if (frames - self->wal_handed < S_WRITEBACK_FRAMES)
        return SQLITE_OK;
    if (self->wal_fd < 0)
        self->wal_fd = open (self->wal_path, O_RDONLY | O_CLOEXEC);
    if (self->wal_fd >= 0
        && sync_file_range (self->wal_fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0)
        self->counts.writebacks++;
    self->wal_handed = frames;
    return SQLITE_OK;
}

shoal_store_t *
shoal_store_open (const char *path, shoal_error_t *err)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once (&configured, s_configure_sqlite);
    shoal_store_t *self = calloc (1, sizeof *self);
    if (self) {
        self->wal_fd = -1;
        if (asprintf (&self->wal_path, "%s-wal", path) < 0)
            self->wal_path = NULL;
    }
    if (!self || !self->wal_path) {
        free (self);
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    /* The database holds job params, secrets among them: owner only. */
    mode_t old_mask = umask (077);
    int rc = sqlite3_open_v2 (path, &self->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                  | SQLITE_OPEN_NOMUTEX, NULL);
    umask (old_mask);
    if (rc != SQLITE_OK) {
        shoal_error_set (err, SHOAL_EIO, "state-dir",
                         "cannot open state store %s: %s", path,
                         self->db ? sqlite3_errmsg (self->db) : "no memory");
        shoal_store_destroy (&self);
        return NULL;
    }
    sqlite3_busy_timeout (self->db, 5000);
    /* One controller at a time: the store is opened in exclusive locking
       mode (WAL without a shared-memory index, no fcntl lock per
       transaction), so the lock taken by the first read below is held
       until the controller exits, and a second controller on the same
       state directory gives up after the busy timeout. */
    if (s_exec (self, "PRAGMA locking_mode = EXCLUSIVE", err)) {
        shoal_store_destroy (&self);
        return NULL;
    }
    sqlite3_stmt *version_stmt = NULL;
    int version = -1;
    int step = SQLITE_ERROR;
    if (sqlite3_prepare_v2 (self->db, "PRAGMA user_version", -1,
                            &version_stmt, NULL) == SQLITE_OK
        && (step = sqlite3_step (version_stmt)) == SQLITE_ROW)
        version = sqlite3_column_int (version_stmt, 0);
    sqlite3_finalize (version_stmt);
    if (step == SQLITE_BUSY) {
        shoal_error_set (err, SHOAL_EIO, "state-dir",
                         "state store %s is in use by another controller",
                         path);
        shoal_store_destroy (&self);
        return NULL;
    }
    if (version > S_SCHEMA_VERSION) {
        shoal_error_set (err, SHOAL_EINVAL, "state-dir",
                         "state store %s has schema version %d; this "
                         "controller reads version %d", path, version,
                         S_SCHEMA_VERSION);
        shoal_store_destroy (&self);
        return NULL;
    }
    if (version < 0 || s_exec (self, "PRAGMA journal_mode = WAL", err)
        || s_exec (self, "PRAGMA synchronous = NORMAL", err)
        || (version < S_SCHEMA_VERSION && s_create (self, path, version,
                                                    err))) {
        if (version < 0)
            s_fail (self, err, "not a database");
        shoal_store_destroy (&self);
        return NULL;
    }
    for (int i = 0; i < S_STATEMENTS; i++)
        if (sqlite3_prepare_v3 (self->db, s_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &self->stmt[i],
                                NULL) != SQLITE_OK) {
            s_fail (self, err, "prepare");
            shoal_store_destroy (&self);
            return NULL;
        }
    /* In place of SQLite's automatic checkpoint (which is this hook). */
    sqlite3_wal_hook (self->db, s_wal_hook, self);
    return self;
}

void
shoal_store_destroy (shoal_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_store_t *self = *self_p;
    for (int i = 0; i < S_STATEMENTS; i++)
        sqlite3_finalize (self->stmt[i]);
    sqlite3_close (self->db);
    if (self->wal_fd >= 0)
        close (self->wal_fd);
    free (self->wal_path);
    free (self->last);
    free (self->unreadable);
    free (self);
    *self_p = NULL;
}

int
shoal_store_put_definitions (shoal_store_t *self, const char *text,
                             size_t len, uint32_t *version,
                             shoal_error_t *err)
{
    *version = 0;
    sqlite3_stmt *find = NULL, *add = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2 (self->db, "SELECT version FROM definitions"
                            " WHERE text = ?1", -1, &find, NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (self->db, "INSERT INTO definitions (text)"
                               " VALUES (?1)", -1, &add, NULL) != SQLITE_OK)
        rc = s_fail (self, err, "prepare");
    else {
        /* The same text (not merely alike) is the same version. */
        sqlite3_bind_blob64 (find, 1, text, len, SQLITE_STATIC);
        sqlite3_bind_blob64 (add, 1, text, len, SQLITE_STATIC);
        int step = sqlite3_step (find);
        if (step == SQLITE_ROW)
            *version = (uint32_t) sqlite3_column_int64 (find, 0);
        else if (step != SQLITE_DONE || sqlite3_step (add) != SQLITE_DONE)
            rc = s_fail (self, err, "storing the definitions");
        else
            *version = (uint32_t) sqlite3_last_insert_rowid (self->db);
    }
    sqlite3_finalize (find);
    sqlite3_finalize (add);
    return rc;
}

/*  The database's size in bytes, and how much of it is free pages.       */
static int
s_sizes (shoal_store_t *self, uint64_t *bytes, uint64_t *free_bytes,
         shoal_error_t *err)
{
    static const char *const pragmas[] = {
        "PRAGMA page_size", "PRAGMA page_count", "PRAGMA freelist_count",
    };
    int64_t values[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2 (self->db, pragmas[i], -1, &stmt, NULL)
                != SQLITE_OK
            || sqlite3_step (stmt) != SQLITE_ROW) {
            sqlite3_finalize (stmt);
            return s_fail (self, err, pragmas[i]);
        }
        values[i] = sqlite3_column_int64 (stmt, 0);
        sqlite3_finalize (stmt);
    }
    *bytes = (uint64_t) (values[0] * values[1]);
    *free_bytes = (uint64_t) (values[0] * values[2]);
    return 0;
}

int
shoal_store_compact (shoal_store_t *self, shoal_store_sizes_t *sizes,
                     shoal_error_t *err)
{
    *sizes = (shoal_store_sizes_t) { 0 };
    if (s_sizes (self, &sizes->before, &sizes->free_before, err)
        || s_exec (self, "VACUUM", err))
        return SHOAL_EIO;
    /* VACUUM wrote the new file through the log: copy it in, and empty
       the log, so that the space is back on the disk when this returns. */
    if (sqlite3_wal_checkpoint_v2 (self->db, NULL,
                                   SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL)
        != SQLITE_OK)
        return s_fail (self, err, "checkpoint");
    uint64_t free_after = 0;
    return s_sizes (self, &sizes->after, &free_after, err) ? SHOAL_EIO : 0;
}

/* ---- writing --------------------------------------------------------- */

/*  Runs a bound statement to completion; the first failure of a save is
    remembered and later steps are skipped. Returns the rows it changed.
    Bindings are kept: every statement binds all its parameters before
    each step.                                                             */
static int
s_step (shoal_store_t *self, sqlite3_stmt *stmt)
{
    int changed = 0;
    if (self->failed == SQLITE_OK) {
        int rc = sqlite3_step (stmt);
        if (rc != SQLITE_DONE) {
            self->failed = rc;
            snprintf (self->failure, sizeof self->failure, "%s",
                      sqlite3_errmsg (self->db));
        }
        else
            changed = sqlite3_changes (self->db);
    }
    sqlite3_reset (stmt);
    return changed;
}

/*  Updates a row in place with `set`, or inserts it whole with `put`
    when it is not there yet; both are bound alike (see s_sql).           */
static void
s_upsert (shoal_store_t *self, int set, int put,
          void (*bind) (sqlite3_stmt *, const void *), const void *arg)
{
    sqlite3_stmt *stmt = self->stmt[set];
    bind (stmt, arg);
    if (s_step (self, stmt) > 0 || self->failed != SQLITE_OK)
        return;
    stmt = self->stmt[put];
    bind (stmt, arg);
    s_step (self, stmt);
}

/*  Binds `text` (borrowed, unchanged until the step) or NULL.             */
static void
s_bind_static (sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null (stmt, index);
}

/* ---- batches: what changed, copied out of the scheduler ------------- */

/*  Where a string of a row is in the batch's text arena (an offset, as
    the arena moves when it grows); S_NO_TEXT for NULL. A batch stays far
    below 4 GiB of text: the loop hands one over every 65,536 rows.       */
typedef uint32_t s_text_t;
#define S_NO_TEXT UINT32_MAX

/*  A job row: the record (its own string and JSON pointers unused) and
    its strings in the arena.                                             */
typedef struct {
    shoal_job_record_t record;
    s_text_t id, job_class, params, error, stages;
} s_job_row_t;

/*  A task row, kept small: a fan-out puts one per task. `job_key` is the
    low 32 bits of its job's seq (see S_KEY_SQL).                         */
typedef struct {
    uint32_t job_key, id, stage, attempt, losses, failures;
    int32_t index, exit_code, signal;
    int32_t state;
    s_text_t error, worker, entry;
    int64_t started_at, finished_at, duration_ms, wake_at;
} s_task_row_t;

/*  A task as it is created: pending, never run, nothing but its place
    and its spawn entry. A fan-out puts one per task, so it is the
    smallest row there is (20 bytes and the entry's text).                */
typedef struct {
    uint32_t job_key, id, stage;
    int32_t index;
    s_text_t entry;
} s_new_task_row_t;

/*  An idempotency key to remember (job set) or to forget (job unset).    */
typedef struct {
    uint64_t fingerprint;
    s_text_t key, job;
} s_key_row_t;

/*  A job to forget with its tasks and keys.                               */
typedef struct {
    s_text_t job;
} s_delete_row_t;

/*  Rows of one kind, in the order they were put.                          */
#define S_ROWS(type) struct { type *rows; size_t count, cap; }

struct shoal_store_batch {
    S_ROWS (s_job_row_t) jobs;
    S_ROWS (s_new_task_row_t) new_tasks;
    S_ROWS (s_task_row_t) tasks;
    S_ROWS (s_key_row_t) keys;
    S_ROWS (s_delete_row_t) deletes; /* written after every other kind    */
    char *text;                  /* the strings of every row, each ending
                                    with a NUL                             */
    size_t used, size;
    bool broken;                 /* out of memory while copying: the batch
                                    is incomplete and must not be written  */
};

shoal_store_batch_t *
shoal_store_batch_new (void)
{
    return calloc (1, sizeof (shoal_store_batch_t));
}

void
shoal_store_batch_destroy (shoal_store_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->jobs.rows);
    free ((*self_p)->new_tasks.rows);
    free ((*self_p)->tasks.rows);
    free ((*self_p)->keys.rows);
    free ((*self_p)->deletes.rows);
    free ((*self_p)->text);
    free (*self_p);
    *self_p = NULL;
}

void
shoal_store_batch_clear (shoal_store_batch_t *self)
{
    self->jobs.count = self->new_tasks.count = self->tasks.count = 0;
    self->keys.count = self->deletes.count = 0;
    self->used = 0;
    self->broken = false;
}

size_t
shoal_store_batch_rows (const shoal_store_batch_t *self)
{
    return self->jobs.count + self->new_tasks.count + self->tasks.count
           + self->keys.count + self->deletes.count;
}

size_t
shoal_store_batch_bytes (const shoal_store_batch_t *self)
{
    return self->jobs.cap * sizeof *self->jobs.rows
           + self->new_tasks.cap * sizeof *self->new_tasks.rows
           + self->tasks.cap * sizeof *self->tasks.rows
           + self->keys.cap * sizeof *self->keys.rows
           + self->deletes.cap * sizeof *self->deletes.rows + self->size;
}

/*  A new row at the end of `*rows` (`count`, `cap` beside it), or NULL
    when memory ran out (then the batch is broken).                       */
static void *
s_batch_grow (shoal_store_batch_t *self, void **rows, size_t *count,
              size_t *cap, size_t size)
{
    if (self->broken)
        return NULL;
    if (*count == *cap) {
        size_t want = *cap ? *cap * 2 : 64;
        void *grown = realloc (*rows, want * size);
        if (!grown) {
            self->broken = true;
            return NULL;
        }
        *rows = grown;
        *cap = want;
    }
    return (char *) *rows + (*count)++ * size;
}

#define S_BATCH_ROW(self, set) \
    s_batch_grow ((self), (void **) &(self)->set.rows, &(self)->set.count, \
                  &(self)->set.cap, sizeof *(self)->set.rows)

/*  Makes room for `size` bytes at the end of the arena; returns their
    offset (not yet counted as used), or S_NO_TEXT when memory ran out
    (the batch is then broken).                                           */
static s_text_t
s_batch_reserve (shoal_store_batch_t *self, size_t size)
{
    if (self->broken)
        return S_NO_TEXT;
    if (self->used + size >= S_NO_TEXT) {
        self->broken = true;
        return S_NO_TEXT;
    }
    if (self->used + size > self->size) {
        size_t want = self->size ? self->size : 4096;
        while (want < self->used + size)
            want *= 2;
        char *grown = realloc (self->text, want);
        if (!grown) {
            self->broken = true;
            return S_NO_TEXT;
        }
        self->text = grown;
        self->size = want;
    }
    return (s_text_t) self->used;
}

/*  Appends `size` bytes of `text` and a NUL; returns the offset, or
    S_NO_TEXT when `text` is NULL or memory ran out.                      */
static s_text_t
s_batch_text (shoal_store_batch_t *self, const char *text, size_t size)
{
    if (!text)
        return S_NO_TEXT;
    s_text_t at = s_batch_reserve (self, size + 1);
    if (at == S_NO_TEXT)
        return S_NO_TEXT;
    memcpy (self->text + at, text, size);
    self->text[at + size] = '\0';
    self->used += size + 1;
    return at;
}

static s_text_t
s_batch_string (shoal_store_batch_t *self, const char *text)
{
    return text ? s_batch_text (self, text, strlen (text)) : S_NO_TEXT;
}

static const char *
s_batch_at (const shoal_store_batch_t *self, s_text_t offset)
{
    return offset == S_NO_TEXT ? NULL : self->text + offset;
}

/*  Longest text of one stage in the stages column.                       */
#define S_STAGE_TEXT_MAX 48

void
shoal_store_batch_put_job (shoal_store_batch_t *self, const shoal_job_t *job)
{
    s_job_row_t *row = S_BATCH_ROW (self, jobs);
    if (!row)
        return;
    shoal_job_record (job, &row->record);
    const shoal_job_record_t *record = &row->record;
    row->id = s_batch_string (self, record->id);
    row->job_class = s_batch_string (self, record->job_class);
    row->error = s_batch_string (self, record->error);
    /* Params are only read when the row is inserted, but whether it is
       is known only when written: the scheduler keeps them printed. */
    if (record->params_text)
        row->params = s_batch_string (self, record->params_text);
    else {
        char *params = record->params ? json_dumps (record->params,
                                                    JSON_COMPACT)
                                      : NULL;
        if (record->params && !params)
            self->broken = true;
        row->params = s_batch_string (self, params);
        free (params);
    }
    //  The same text json_dumps gave, without building a tree each time.
    size_t count = shoal_job_class (job)->stage_count;
    row->stages = S_NO_TEXT;
    size_t size = count * S_STAGE_TEXT_MAX + 3;
    s_text_t at = s_batch_reserve (self, size);
    if (at == S_NO_TEXT)
        return;
    char *text = self->text + at;
    size_t used = 0;
    text[used++] = '[';
    for (uint32_t i = 0; i < count; i++) {
        shoal_stage_record_t stage;
        shoal_job_stage_record (job, i, &stage);
        used += (size_t) snprintf (text + used, size - used,
                                   "%s[%d,%u,%u,%s]", i ? "," : "",
                                   (int) stage.state, stage.first_task,
                                   stage.task_count,
                                   stage.spawn_pending ? "true" : "false");
    }
    text[used++] = ']';
    text[used] = '\0';
    self->used = at + used + 1;
    row->stages = at;
}

/*  The first half of `task`'s key in the store.                          */
static uint32_t
s_job_key (const shoal_task_t *task)
{
    return (uint32_t) shoal_job_seq (shoal_task_job (task));
}

/*  The spawn entry of `record` as text in the arena, or S_NO_TEXT.       */
static s_text_t
s_batch_entry (shoal_store_batch_t *self, const shoal_task_record_t *record)
{
    if (record->entry_text)   /* the scheduler keeps entries as text */
        return s_batch_text (self, record->entry_text, record->entry_size);
    if (!record->entry)
        return S_NO_TEXT;
    char *text = json_dumps (record->entry, JSON_COMPACT);
    if (!text)
        self->broken = true;
    s_text_t at = s_batch_string (self, text);
    free (text);
    return at;
}

/*  Whether `record` is a task as the scheduler creates it.                */
static bool
s_task_is_new (const shoal_task_record_t *record)
{
    return record->state == SHOAL_TASK_PENDING && record->attempt == 0
           && record->losses == 0 && record->failures == 0
           && record->exit_code == -1 && record->signal == 0
           && !record->error && !record->worker && record->started_at == 0
           && record->finished_at == 0 && record->duration_ms == 0
           && record->wake_at == 0;
}

void
shoal_store_batch_put_task (shoal_store_batch_t *self,
                            const shoal_task_t *task)
{
    shoal_task_record_t record;
    shoal_task_record (task, &record);
    if (s_task_is_new (&record)) {
        s_new_task_row_t *row = S_BATCH_ROW (self, new_tasks);
        if (!row)
            return;
        row->job_key = s_job_key (task);
        row->id = record.id;
        row->stage = record.stage;
        row->index = record.index;
        row->entry = s_batch_entry (self, &record);
        return;
    }
    s_task_row_t *row = S_BATCH_ROW (self, tasks);
    if (!row)
        return;
    *row = (s_task_row_t) {
        .job_key = s_job_key (task),
        .id = record.id, .stage = record.stage, .attempt = record.attempt,
        .losses = record.losses, .failures = record.failures,
        .index = record.index, .exit_code = record.exit_code,
        .signal = record.signal, .state = (int32_t) record.state,
        .started_at = record.started_at, .finished_at = record.finished_at,
        .duration_ms = record.duration_ms, .wake_at = record.wake_at,
    };
    row->error = s_batch_string (self, record.error);
    row->worker = s_batch_string (self, record.worker);
    row->entry = s_batch_entry (self, &record);
}

void
shoal_store_batch_put_all (shoal_store_batch_t *self,
                           const shoal_scheduler_t *scheduler)
{
    for (size_t i = 0; i < shoal_scheduler_job_count (scheduler); i++) {
        shoal_job_t *job = shoal_scheduler_job_at (scheduler, i);
        shoal_store_batch_put_job (self, job);
        for (uint32_t t = 0; t < shoal_job_task_count (job); t++)
            shoal_store_batch_put_task (self, shoal_job_task (job, t));
    }
}

void
shoal_store_batch_put_key (shoal_store_batch_t *self, const char *key,
                           uint64_t fingerprint, const char *job_id)
{
    s_key_row_t *row = S_BATCH_ROW (self, keys);
    if (!row)
        return;
    row->fingerprint = fingerprint;
    row->key = s_batch_string (self, key);
    row->job = s_batch_string (self, job_id ? job_id : "");
}

void
shoal_store_batch_forget_key (shoal_store_batch_t *self, const char *key)
{
    s_key_row_t *row = S_BATCH_ROW (self, keys);
    if (!row)
        return;
    row->fingerprint = 0;
    row->key = s_batch_string (self, key);
    row->job = S_NO_TEXT;
}

void
shoal_store_batch_delete_job (shoal_store_batch_t *self, const char *job_id)
{
    s_delete_row_t *row = S_BATCH_ROW (self, deletes);
    if (!row)
        return;
    row->job = s_batch_string (self, job_id);
}

/* ---- writing a batch ------------------------------------------------- */

/*  What s_bind_job binds: the record, its params and stages as text.    */
typedef struct {
    const shoal_job_record_t *record;
    const char *id, *job_class, *params, *error, *stages;
} s_job_bind_t;

/*  Binds every parameter of S_PUT_JOB / S_SET_JOB. Only an insert reads
    ?1, ?2, ?3 and ?8.                                                    */
static void
s_bind_job (sqlite3_stmt *stmt, const void *arg)
{
    const s_job_bind_t *row = arg;
    const shoal_job_record_t *record = row->record;
    sqlite3_bind_int64 (stmt, 12, (sqlite3_int64) record->seq);
    s_bind_static (stmt, 1, row->id);
    if (sqlite3_bind_parameter_name (stmt, 2)) {
        s_bind_static (stmt, 2, row->job_class);
        s_bind_static (stmt, 3, row->params ? row->params : "{}");
        sqlite3_bind_int64 (stmt, 8, record->created_at);
        if (record->definitions)
            sqlite3_bind_int64 (stmt, 13, record->definitions);
        else
            sqlite3_bind_null (stmt, 13);
    }
    sqlite3_bind_int (stmt, 4, (int) record->state);
    sqlite3_bind_int64 (stmt, 5, record->stage);
    sqlite3_bind_int64 (stmt, 6, record->retries);
    s_bind_static (stmt, 7, row->error);
    sqlite3_bind_int64 (stmt, 9, record->started_at);
    sqlite3_bind_int64 (stmt, 10, record->finished_at);
    s_bind_static (stmt, 11, row->stages);
}

static void
s_write_job (shoal_store_t *self, const shoal_store_batch_t *batch,
             const s_job_row_t *row)
{
    s_job_bind_t job = {
        .record = &row->record,
        .id = s_batch_at (batch, row->id),
        .job_class = s_batch_at (batch, row->job_class),
        .params = s_batch_at (batch, row->params),
        .error = s_batch_at (batch, row->error),
        .stages = s_batch_at (batch, row->stages),
    };
    s_upsert (self, S_SET_JOB, S_PUT_JOB, s_bind_job, &job);
}

static void
s_write_task (shoal_store_t *self, const shoal_store_batch_t *batch,
              const s_task_row_t *row)
{
    sqlite3_stmt *stmt = self->stmt[S_PUT_TASK];
    sqlite3_bind_int64 (stmt, 1, s_task_key (row->job_key, row->id));
    sqlite3_bind_int64 (stmt, 2, row->stage);
    sqlite3_bind_int64 (stmt, 3, row->index);
    sqlite3_bind_int (stmt, 4, row->state);
    sqlite3_bind_int64 (stmt, 5, row->attempt);
    sqlite3_bind_int64 (stmt, 6, row->losses);
    sqlite3_bind_int64 (stmt, 7, row->failures);
    sqlite3_bind_int (stmt, 8, row->exit_code);
    sqlite3_bind_int (stmt, 9, row->signal);
    s_bind_static (stmt, 10, s_batch_at (batch, row->error));
    s_bind_static (stmt, 11, s_batch_at (batch, row->worker));
    s_bind_static (stmt, 12, s_batch_at (batch, row->entry));
    sqlite3_bind_int64 (stmt, 13, row->started_at);
    sqlite3_bind_int64 (stmt, 14, row->finished_at);
    sqlite3_bind_int64 (stmt, 15, row->duration_ms);
    sqlite3_bind_int64 (stmt, 16, row->wake_at);
    s_step (self, stmt);
}

static void
s_write_new_task (shoal_store_t *self, const shoal_store_batch_t *batch,
                  const s_new_task_row_t *row)
{
    s_task_row_t full = {
        .job_key = row->job_key, .id = row->id, .stage = row->stage,
        .index = row->index, .state = SHOAL_TASK_PENDING, .exit_code = -1,
        .error = S_NO_TEXT, .worker = S_NO_TEXT,
        .entry = row->entry,
    };
    s_write_task (self, batch, &full);
}

static void
s_write_key (shoal_store_t *self, const shoal_store_batch_t *batch,
             const s_key_row_t *row)
{
    sqlite3_stmt *stmt;
    if (row->job != S_NO_TEXT) {
        stmt = self->stmt[S_PUT_KEY];
        s_bind_static (stmt, 1, s_batch_at (batch, row->key));
        sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) row->fingerprint);
        s_bind_static (stmt, 3, s_batch_at (batch, row->job));
    }
    else {
        stmt = self->stmt[S_DEL_KEY];
        s_bind_static (stmt, 1, s_batch_at (batch, row->key));
    }
    s_step (self, stmt);
}

static void
s_write_delete (shoal_store_t *self, const shoal_store_batch_t *batch,
                const s_delete_row_t *row)
{
    static const int statements[] = { S_DEL_JOB_TASKS, S_DEL_JOB_KEYS,
                                       S_DEL_JOB };
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        sqlite3_stmt *stmt = self->stmt[statements[i]];
        s_bind_static (stmt, 1, s_batch_at (batch, row->job));
        s_step (self, stmt);
    }
}

/* ---- rows a later one replaces ---------------------------------------- */

/*  Past this many job and changed-task rows in one write, every row is
    written: the table would cost more memory than the rows it saves.     */
#define S_LAST_ROWS_MAX (1u << 22)

static size_t
s_last_slot (const shoal_store_t *self, uint64_t key, bool task)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull + task;
    h ^= h >> 29;
    return (size_t) h & (self->last_cap - 1);
}

/*  The place (1 + its index) of the last row of `key`, 0 when it has no
    job or changed-task row in this write.                               */
static uint32_t
s_last_get (const shoal_store_t *self, uint64_t key, bool task)
{
    for (size_t i = s_last_slot (self, key, task);;
         i = (i + 1) & (self->last_cap - 1)) {
        const s_last_row_t *slot = &self->last[i];
        if (!slot->at || (slot->key == key && slot->task == task))
            return slot->at;
    }
}

static void
s_last_put (shoal_store_t *self, uint64_t key, bool task, uint32_t at)
{
    for (size_t i = s_last_slot (self, key, task);;
         i = (i + 1) & (self->last_cap - 1)) {
        s_last_row_t *slot = &self->last[i];
        if (!slot->at || (slot->key == key && slot->task == task)) {
            *slot = (s_last_row_t) { .key = key, .at = at, .task = task };
            return;
        }
    }
}

/*  Finds the last row of every job and changed task among `batches`, so
    that the rows before it are not written: under load one write carries
    many rounds of the loop, and a short task's "running" row is replaced
    by its final one in the same transaction. Returns false (write every
    row) for a single batch, which repeats nothing, or without memory.    */
static bool
s_find_last_rows (shoal_store_t *self, shoal_store_batch_t *const *batches,
                  size_t count)
{
    size_t rows = 0;
    for (size_t b = 0; b < count; b++)
        rows += batches[b]->jobs.count + batches[b]->tasks.count;
    if (count < 2 || rows > S_LAST_ROWS_MAX)
        return false;
    size_t want = 64;
    while (want < 2 * rows)
        want *= 2;
    if (want > self->last_cap) {
        free (self->last);
        self->last = malloc (want * sizeof *self->last);
        self->last_cap = self->last ? want : 0;
        if (!self->last)
            return false;
    }
    memset (self->last, 0, self->last_cap * sizeof *self->last);
    uint32_t at = 0;
    for (size_t b = 0; b < count; b++) {
        const shoal_store_batch_t *batch = batches[b];
        for (size_t i = 0; i < batch->jobs.count; i++)
            s_last_put (self, batch->jobs.rows[i].record.seq, false, ++at);
        for (size_t i = 0; i < batch->tasks.count; i++) {
            const s_task_row_t *row = &batch->tasks.rows[i];
            s_last_put (self, (uint64_t) s_task_key (row->job_key, row->id),
                        true, ++at);
        }
    }
    return true;
}

int
shoal_store_write (shoal_store_t *self, shoal_store_batch_t *const *batches,
                   size_t count, shoal_error_t *err)
{
    for (size_t b = 0; b < count; b++)
        if (batches[b]->broken)
            return shoal_error_set (err, SHOAL_ENOMEM, "store",
                                    "state store: out of memory copying "
                                    "the changes");
    if (s_transaction (self, S_BEGIN) != SQLITE_OK)
        return shoal_error_set (err, SHOAL_EIO, "store", "state store: %s",
                                self->failure);
    self->failed = SQLITE_OK;
    uint64_t replaced = 0;
    bool skip = s_find_last_rows (self, batches, count);
    uint32_t at = 0;             /* place of the job or changed-task row  */
    /* Rows of a kind go in the order they were put, so the latest state
       of a job or task is the one kept; a row that a later one of the
       same job or task replaces is left out. A task put new and then
       changed in the same batch cannot happen (the scheduler reports a
       task once per flush), so new rows go before changed ones, and a
       new row is left out when the task has a changed row (a whole row)
       in this write. A job is forgotten only once nothing of it changes
       any more: deletes go after every other row of all the batches,
       undoing whatever of it they put. */
    for (size_t b = 0; b < count && self->failed == SQLITE_OK; b++) {
        const shoal_store_batch_t *batch = batches[b];
        for (size_t i = 0; i < batch->jobs.count; i++) {
            const s_job_row_t *row = &batch->jobs.rows[i];
            ++at;
            if (skip && s_last_get (self, row->record.seq, false) != at)
                replaced++;
            else
                s_write_job (self, batch, row);
        }
        for (size_t i = 0; i < batch->new_tasks.count; i++) {
            const s_new_task_row_t *row = &batch->new_tasks.rows[i];
            if (skip && s_last_get (self, (uint64_t) s_task_key (
                                        row->job_key, row->id), true))
                replaced++;
            else
                s_write_new_task (self, batch, row);
        }
        for (size_t i = 0; i < batch->tasks.count; i++) {
            const s_task_row_t *row = &batch->tasks.rows[i];
            ++at;
            if (skip && s_last_get (self, (uint64_t) s_task_key (
                                        row->job_key, row->id), true) != at)
                replaced++;
            else
                s_write_task (self, batch, row);
        }
        for (size_t i = 0; i < batch->keys.count; i++)
            s_write_key (self, batch, &batch->keys.rows[i]);
    }
    for (size_t b = 0; b < count && self->failed == SQLITE_OK; b++)
        for (size_t i = 0; i < batches[b]->deletes.count; i++)
            s_write_delete (self, batches[b], &batches[b]->deletes.rows[i]);
    if (self->failed == SQLITE_OK
        && s_transaction (self, S_COMMIT) == SQLITE_OK) {
        size_t rows = 0;
        for (size_t b = 0; b < count; b++)
            rows += shoal_store_batch_rows (batches[b]);
        self->counts.written += rows - replaced;
        self->counts.replaced += replaced;
        return 0;
    }
    /* `failure` says why (a row's step or the COMMIT). A failed COMMIT
       may have rolled back already; the ROLLBACK's own error is of no
       interest then. */
    sqlite3_step (self->stmt[S_ROLLBACK]);
    sqlite3_reset (self->stmt[S_ROLLBACK]);
    return shoal_error_set (err, SHOAL_EIO, "store", "state store: %s",
                            self->failure);
}

void
shoal_store_counts (const shoal_store_t *self, shoal_store_counts_t *counts)
{
    *counts = self->counts;
}

/*  The scheduler's changes for shoal_store_save.                         */
static void
s_save_job (const shoal_job_t *job, void *arg)
{
    shoal_store_batch_put_job (arg, job);
}

static void
s_save_task (const shoal_task_t *task, void *arg)
{
    shoal_store_batch_put_task (arg, task);
}

int
shoal_store_save (shoal_store_t *self, shoal_scheduler_t *scheduler,
                  const char *key, uint64_t fingerprint, const char *key_job,
                  shoal_error_t *err)
{
    if (!key && !self->resync && !shoal_scheduler_changed (scheduler))
        return 0;
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    if (!batch) {
        shoal_scheduler_flush (scheduler, NULL, NULL, NULL);
        self->resync = true;
        return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    }
    if (self->resync) {
        /* The last save failed: its changes are gone from the scheduler's
           list, so write everything. O(jobs + tasks), only after an error.
           What the flush adds next is written twice, harmlessly. */
        shoal_store_batch_put_all (batch, scheduler);
    }
    shoal_scheduler_flush (scheduler, s_save_job, s_save_task, batch);
    if (key)
        shoal_store_batch_put_key (batch, key, fingerprint, key_job);
    int rc = shoal_store_write (self, &batch, 1, err);
    self->resync = rc != 0;
    shoal_store_batch_destroy (&batch);
    return rc;
}

/* ---- reading back -------------------------------------------------- */

static const char *
s_column_text (sqlite3_stmt *stmt, int column)
{
    return (const char *) sqlite3_column_text (stmt, column);
}

static json_t *
s_column_json (sqlite3_stmt *stmt, int column)
{
    const char *text = s_column_text (stmt, column);
    return text ? json_loads (text, 0, NULL) : NULL;
}

static int
s_load_tasks (shoal_store_t *self, sqlite3_stmt *stmt, shoal_scheduler_t *sch,
              shoal_job_t *job, shoal_error_t *err)
{
    uint32_t job_key = (uint32_t) shoal_job_seq (job);
    sqlite3_bind_int64 (stmt, 1, s_task_key (job_key, 0));
    sqlite3_bind_int64 (stmt, 2, s_task_key (job_key, UINT32_MAX));
    int rc = 0;
    int step;
    while (!rc && (step = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *entry = s_column_text (stmt, 11);
        shoal_task_record_t record = {
            .id = (uint32_t) sqlite3_column_int64 (stmt, 0),
            .stage = (uint32_t) sqlite3_column_int64 (stmt, 1),
            .index = (int32_t) sqlite3_column_int64 (stmt, 2),
            .state = (shoal_task_state_t) sqlite3_column_int (stmt, 3),
            .attempt = (uint32_t) sqlite3_column_int64 (stmt, 4),
            .losses = (uint32_t) sqlite3_column_int64 (stmt, 5),
            .failures = (uint32_t) sqlite3_column_int64 (stmt, 6),
            .exit_code = sqlite3_column_int (stmt, 7),
            .signal = sqlite3_column_int (stmt, 8),
            .error = s_column_text (stmt, 9),
            .worker = s_column_text (stmt, 10),
            .entry_text = entry,
            .entry_size = entry ? (size_t) sqlite3_column_bytes (stmt, 11)
                                : 0,
            .started_at = sqlite3_column_int64 (stmt, 12),
            .finished_at = sqlite3_column_int64 (stmt, 13),
            .duration_ms = sqlite3_column_int64 (stmt, 14),
            .wake_at = sqlite3_column_int64 (stmt, 15),
        };
        rc = shoal_scheduler_restore_task (sch, job, &record, err);
    }
    if (!rc && step != SQLITE_DONE)
        rc = s_fail (self, err, "reading tasks");
    sqlite3_reset (stmt);
    return rc;
}

/*  Before a job of definitions `version` is read back: gives the
    scheduler those definitions, read from the store, unless they are its
    own or it has them. Definitions that cannot be read back (damaged, or
    refused by this controller's checks) are logged, once: their jobs are
    read back with the current ones, which then must fit them.            */
static void
s_keep_definitions (shoal_store_t *self, shoal_scheduler_t *scheduler,
                    uint32_t version)
{
    if (!version || shoal_scheduler_definitions (scheduler, version))
        return;
    for (size_t i = 0; i < self->unreadable_count; i++)
        if (self->unreadable[i] == version)
            return;
    sqlite3_stmt *stmt = NULL;
    shoal_error_t err;
    shoal_error_clear (&err);
    shoal_defs_t *defs = NULL;
    char name[64];
    snprintf (name, sizeof name, "definitions version %" PRIu32, version);
    if (sqlite3_prepare_v2 (self->db, "SELECT text FROM definitions"
                            " WHERE version = ?1", -1, &stmt, NULL)
        != SQLITE_OK)
        s_fail (self, &err, "prepare");
    else {
        sqlite3_bind_int64 (stmt, 1, version);
        if (sqlite3_step (stmt) == SQLITE_ROW)
            defs = shoal_defs_parse (sqlite3_column_blob (stmt, 0),
                                     (size_t) sqlite3_column_bytes (stmt, 0),
                                     name, &err);
        else
            shoal_error_set (&err, SHOAL_ENOTFOUND, "store",
                             "%s is not in the state store", name);
    }
    sqlite3_finalize (stmt);
    if (defs && shoal_scheduler_keep_definitions (scheduler, version, &defs,
                                                  &err) == 0)
        return;
    shoal_warn ("state store: %s; the jobs submitted under them are read "
                "back with the current definitions", err.message);
    uint32_t *grown = realloc (self->unreadable, (self->unreadable_count + 1)
                                                     * sizeof *grown);
    if (grown) {
        self->unreadable = grown;
        self->unreadable[self->unreadable_count++] = version;
    }
}

/*  After a load: jobs stored without their definitions (by a controller
    before schema 3) were read back with the current ones, so those are
    theirs from now on; texts no job names any more are dropped.          */
static int
s_settle_definitions (shoal_store_t *self, shoal_scheduler_t *scheduler,
                      shoal_error_t *err)
{
    uint32_t current = shoal_scheduler_definitions_version (scheduler);
    sqlite3_stmt *name = NULL, *drop = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2 (self->db, "UPDATE jobs SET definitions = ?1"
                            " WHERE definitions IS NULL", -1, &name, NULL)
            != SQLITE_OK
        || sqlite3_prepare_v2 (self->db, "DELETE FROM definitions"
                               " WHERE version IS NOT ?1 AND version NOT IN"
                               " (SELECT definitions FROM jobs"
                               "  WHERE definitions IS NOT NULL)", -1, &drop,
                               NULL) != SQLITE_OK)
        rc = s_fail (self, err, "prepare");
    else {
        /* Without definitions of its own (0) the scheduler names none. */
        sqlite3_bind_int64 (name, 1, current);
        sqlite3_bind_int64 (drop, 1, current);
        if ((current && sqlite3_step (name) != SQLITE_DONE)
            || sqlite3_step (drop) != SQLITE_DONE)
            rc = s_fail (self, err, "settling the stored definitions");
    }
    sqlite3_finalize (name);
    sqlite3_finalize (drop);
    return rc;
}

int
shoal_store_load (shoal_store_t *self, shoal_scheduler_t *scheduler,
                  int64_t now, int64_t lease_ms, shoal_store_key_fn *key_fn,
                  void *arg, size_t *jobs, shoal_error_t *err)
{
    *jobs = 0;
    sqlite3_stmt *job_stmt = NULL, *task_stmt = NULL, *key_stmt = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2 (self->db,
                            "SELECT id, class, params, state, stage, retries,"
                            " error, created_at, started_at, finished_at,"
                            " stages, seq, definitions FROM jobs"
                            " ORDER BY seq", -1, &job_stmt, NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (self->db,
                               "SELECT key & 4294967295, " S_TASK_COLUMNS
                               " FROM tasks WHERE key BETWEEN ?1 AND ?2"
                               " ORDER BY key", -1, &task_stmt,
                               NULL) != SQLITE_OK
        || sqlite3_prepare_v2 (self->db,
                               "SELECT key, fingerprint, job FROM idempotency"
                               " ORDER BY seq", -1, &key_stmt,
                               NULL) != SQLITE_OK) {
        rc = s_fail (self, err, "prepare");
        goto done;
    }
    int step;
    while (!rc && (step = sqlite3_step (job_stmt)) == SQLITE_ROW) {
        json_t *params = s_column_json (job_stmt, 2);
        json_t *stages = s_column_json (job_stmt, 10);
        shoal_job_record_t record = {
            .id = s_column_text (job_stmt, 0),
            .seq = (uint64_t) sqlite3_column_int64 (job_stmt, 11),
            .job_class = s_column_text (job_stmt, 1),
            .params = params,
            .state = (shoal_job_state_t) sqlite3_column_int (job_stmt, 3),
            .stage = (uint32_t) sqlite3_column_int64 (job_stmt, 4),
            .retries = (uint32_t) sqlite3_column_int64 (job_stmt, 5),
            .error = s_column_text (job_stmt, 6),
            .created_at = sqlite3_column_int64 (job_stmt, 7),
            .started_at = sqlite3_column_int64 (job_stmt, 8),
            .finished_at = sqlite3_column_int64 (job_stmt, 9),
            .definitions = (uint32_t) sqlite3_column_int64 (job_stmt, 12),
        };
        s_keep_definitions (self, scheduler, record.definitions);
        size_t count = json_array_size (stages);
        shoal_stage_record_t *stage_records
            = calloc (count ? count : 1, sizeof *stage_records);
        for (size_t i = 0; stage_records && i < count; i++) {
            json_t *item = json_array_get (stages, i);
            stage_records[i] = (shoal_stage_record_t) {
                .state = (shoal_stage_state_t) json_integer_value (
                    json_array_get (item, 0)),
                .first_task = (uint32_t) json_integer_value (
                    json_array_get (item, 1)),
                .task_count = (uint32_t) json_integer_value (
                    json_array_get (item, 2)),
                .spawn_pending = json_is_true (json_array_get (item, 3)),
            };
        }
        shoal_job_t *job = NULL;
        if (!params || !json_is_object (params) || !stage_records)
            rc = shoal_error_set (err, SHOAL_EINVAL, "store",
                                  "state store: job %s is damaged",
                                  record.id ? record.id : "?");
        else if (!(job = shoal_scheduler_restore_job (
                       scheduler, &record, stage_records, count, err)))
            rc = err ? err->code : SHOAL_EINVAL;
        else
            rc = s_load_tasks (self, task_stmt, scheduler, job, err);
        if (!rc)
            (*jobs)++;
        free (stage_records);
        json_decref (params);
        json_decref (stages);
    }
    if (!rc && step != SQLITE_DONE)
        rc = s_fail (self, err, "reading jobs");
    while (!rc && key_fn && sqlite3_step (key_stmt) == SQLITE_ROW)
        key_fn (s_column_text (key_stmt, 0),
                (uint64_t) sqlite3_column_int64 (key_stmt, 1),
                s_column_text (key_stmt, 2), arg);
    if (!rc)
        shoal_scheduler_restore_done (scheduler, now, lease_ms);
    if (!rc)
        rc = s_settle_definitions (self, scheduler, err);
done:
    sqlite3_finalize (job_stmt);
    sqlite3_finalize (task_stmt);
    sqlite3_finalize (key_stmt);
    return rc;
}
