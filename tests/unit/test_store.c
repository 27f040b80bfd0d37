/*  test_store.c: the state store keeps what the scheduler knows.

    Each test drives a scheduler, saves it into a SQLite file in a temp
    directory, reads it back into a fresh scheduler over the same
    definitions, and compares what the two report.                        */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/defs.h"
#include "shoal/scheduler.h"
#include "shoal/store.h"
#include "store_fixture.h"

static const char *s_yaml =
    "tasks:\n"
    "  work:\n"
    "    input: {item: {source: parameter, default: none}}\n"
    "    exec_command: /bin/true\n"
    "    exec_args: ['{item}']\n"
    "    retries: 1\n"
    "  fan:\n"
    "    exec_command: /bin/true\n"
    "jobs:\n"
    "  fanout:\n"
    "    input: {token: {source: http-header, key: Authorization}}\n"
    "    stages:\n"
    "      - {name: spread, task_class: work, spawn_task: fan}\n"
    "      - {name: finish, task_class: work}\n";

static int
s_setup (void **state)
{
    *state = s_fixture_new (s_yaml, "store");
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_destroy (*state);
    return 0;
}

static void
s_save (s_fixture_t *fx)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    if (!store)
        fail_msg ("%s", err.message);
    assert_int_equal (shoal_store_save (store, fx->sched, NULL, 0, NULL, &err),
                      0);
    shoal_store_destroy (&store);
    assert_null (store);
}

static shoal_scheduler_t *
s_load (s_fixture_t *fx, int64_t now)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    shoal_scheduler_t *sched = shoal_scheduler_new (fx->defs);
    size_t jobs = 0;
    if (shoal_store_load (store, sched, now, 10000, NULL, NULL, &jobs, &err))
        fail_msg ("load: %s", err.message);
    shoal_store_destroy (&store);
    return sched;
}

static shoal_action_t
s_next_dispatch (shoal_scheduler_t *sched)
{
    shoal_action_t action;
    while (shoal_scheduler_next_action (sched, &action))
        if (action.type == SHOAL_ACTION_DISPATCH)
            return action;
    fail_msg ("no dispatch");
    return action;
}

static void
s_drain (shoal_scheduler_t *sched)
{
    shoal_action_t action;
    while (shoal_scheduler_next_action (sched, &action))
        ;
}

static int
s_exit (shoal_scheduler_t *sched, const char *worker, shoal_action_t *action,
        int code, json_t *spawn, int64_t now)
{
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .exit_code = code, .spawn = spawn };
    return shoal_scheduler_result (sched, worker, shoal_job_id (action->job),
                                   shoal_task_id (action->task),
                                   action->attempt, &result, now, NULL);
}

/*  Asserts both schedulers show `id` the same way (job and tasks).       */
static void
s_assert_same_job (shoal_scheduler_t *a, shoal_scheduler_t *b, const char *id)
{
    json_t *views[2][2];
    shoal_scheduler_t *scheds[2] = { a, b };
    for (int i = 0; i < 2; i++) {
        shoal_job_t *job = shoal_scheduler_job (scheds[i], id);
        assert_non_null (job);
        views[i][0] = shoal_job_to_json (job);
        views[i][1] = shoal_job_tasks_to_json (job);
    }
    for (int v = 0; v < 2; v++) {
        char *x = json_dumps (views[0][v], JSON_SORT_KEYS);
        char *y = json_dumps (views[1][v], JSON_SORT_KEYS);
        if (strcmp (x, y))
            fail_msg ("differs:\n  saved  %s\n  loaded %s", x, y);
        free (x);
        free (y);
        json_decref (views[0][v]);
        json_decref (views[1][v]);
    }
}

static void
test_jobs_in_every_state_read_back_the_same (void **state)
{
    s_fixture_t *fx = *state;
    json_t *params = json_pack ("{s:s}", "token", "Basic secret");
    shoal_scheduler_submit (fx->sched, "created", shoal_defs_job_class (
                                fx->defs, "fanout"), json_deep_copy (params),
                            false, 1000, NULL);
    shoal_scheduler_submit (fx->sched, "done", shoal_defs_job_class (
                                fx->defs, "fanout"), json_deep_copy (params),
                            true, 1000, NULL);
    shoal_scheduler_submit (fx->sched, "canceled", shoal_defs_job_class (
                                fx->defs, "fanout"), params, true, 1000, NULL);
    shoal_scheduler_cancel (fx->sched, "canceled", 1100, NULL);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    shoal_action_t spawn = s_next_dispatch (fx->sched);
    json_t *list = json_pack ("[{s:s}, {s:i}]", "item", "a", "item", 7);
    s_exit (fx->sched, "w1", &spawn, 0, list, 1200);
    json_decref (list);
    for (int i = 0; i < 3; i++) {
        shoal_action_t task = s_next_dispatch (fx->sched);
        s_exit (fx->sched, "w1", &task, 0, NULL, 1300);
    }
    s_drain (fx->sched);
    assert_int_equal (shoal_job_state (shoal_scheduler_job (fx->sched, "done")),
                      SHOAL_JOB_SUCCEEDED);
    s_save (fx);
    shoal_scheduler_t *loaded = s_load (fx, 5000);
    assert_int_equal (shoal_scheduler_job_count (loaded), 3);
    const char *ids[] = { "created", "done", "canceled" };
    for (int i = 0; i < 3; i++)
        s_assert_same_job (fx->sched, loaded, ids[i]);
    /* Order and the cursor survive too. */
    assert_string_equal (shoal_job_id (shoal_scheduler_job_at (loaded, 2)),
                         "canceled");
    /* A created job can still be started, and runs. */
    assert_int_equal (shoal_scheduler_start (loaded, "created", 6000, NULL), 0);
    shoal_scheduler_worker_hello (loaded, "w9", "w9", "h", 1, 0, 6000);
    shoal_action_t first = s_next_dispatch (loaded);
    assert_string_equal (shoal_job_id (first.job), "created");
    assert_true (shoal_task_is_spawn (first.task));
    shoal_scheduler_destroy (&loaded);
}

static void
test_running_task_is_adopted_by_its_worker_after_a_restart (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), true, 1000,
                            NULL);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    shoal_action_t spawn = s_next_dispatch (fx->sched);
    s_save (fx);
    shoal_scheduler_t *loaded = s_load (fx, 5000);
    json_t *view = shoal_job_tasks_to_json (shoal_scheduler_job (loaded, "j1"));
    assert_string_equal (json_string_value (json_object_get (json_array_get (
                             json_object_get (view, "tasks"), 0), "state")),
                         "running");
    json_decref (view);
    /* The worker reconnects under a new identity, holding the attempt. */
    shoal_scheduler_worker_hello (loaded, "w1-new", "w1", "h", 2, 1, 5500);
    assert_false (shoal_scheduler_adopt (loaded, "w1-new", "j1", 0,
                                         spawn.attempt + 1, 5500));
    assert_true (shoal_scheduler_adopt (loaded, "w1-new", "j1", 0,
                                        spawn.attempt, 5500));
    shoal_scheduler_worker_seen (loaded, "w1-new", 20000);
    shoal_scheduler_tick (loaded, 20000);     /* past the lease: no effect */
    json_t *list = json_pack ("[{s:s}]", "item", "x");
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED, .spawn = list };
    assert_int_equal (shoal_scheduler_result (loaded, "w1-new", "j1", 0,
                                              spawn.attempt, &result, 20000,
                                              NULL), 0);
    json_decref (list);
    shoal_action_t next = s_next_dispatch (loaded);
    assert_int_equal (shoal_task_id (next.task), 1);
    assert_int_equal (shoal_task_attempt (shoal_job_task (
                          shoal_scheduler_job (loaded, "j1"), 0)), 1);
    shoal_scheduler_destroy (&loaded);
}

static void
test_unclaimed_running_task_runs_again_after_the_lease (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), true, 1000,
                            NULL);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    s_next_dispatch (fx->sched);
    s_save (fx);
    shoal_scheduler_t *loaded = s_load (fx, 5000);
    shoal_scheduler_worker_hello (loaded, "w2", "w2", "h", 2, 0, 5000);
    shoal_action_t action;
    while (shoal_scheduler_next_action (loaded, &action))
        assert_int_not_equal (action.type, SHOAL_ACTION_DISPATCH);
    shoal_scheduler_worker_seen (loaded, "w2", 14000);
    shoal_scheduler_tick (loaded, 14000);     /* lease not over */
    while (shoal_scheduler_next_action (loaded, &action))
        assert_int_not_equal (action.type, SHOAL_ACTION_DISPATCH);
    shoal_scheduler_worker_seen (loaded, "w2", 15001);
    shoal_scheduler_tick (loaded, 15001);
    shoal_action_t again = s_next_dispatch (loaded);
    assert_int_equal (again.attempt, 2);
    assert_string_equal (shoal_worker_key (again.worker), "w2");
    shoal_scheduler_destroy (&loaded);
}

static void
test_only_changes_are_written_and_secrets_are_kept (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "Basic s3cret"),
                            false, 1000, NULL);
    assert_true (shoal_scheduler_changed (fx->sched));
    s_save (fx);
    assert_false (shoal_scheduler_changed (fx->sched));
    shoal_scheduler_t *loaded = s_load (fx, 2000);
    assert_false (shoal_scheduler_changed (loaded));
    /* The params keep the secret's value (a task needs it), the views
       mask it. */
    shoal_scheduler_start (loaded, "j1", 2100, NULL);
    shoal_scheduler_worker_hello (loaded, "w", "w", "h", 1, 0, 2100);
    shoal_action_t run = s_next_dispatch (loaded);
    json_t *params = shoal_task_params (run.task);
    assert_string_equal (json_string_value (json_object_get (params, "token")),
                         "Basic s3cret");
    json_decref (params);
    shoal_scheduler_destroy (&loaded);
}

static void
test_a_file_that_is_not_a_database_is_refused (void **state)
{
    s_fixture_t *fx = *state;
    FILE *file = fopen (fx->path, "w");
    fputs ("this is not a database, just some text that is long enough\n",
           file);
    fclose (file);
    shoal_error_t err = { 0 };
    assert_null (shoal_store_open (fx->path, &err));
    assert_int_not_equal (err.code, 0);
    assert_non_null (strstr (err.message, "state store"));
}

/*  Key rows read back, for the batch tests.                               */
static void
s_collect_key (const char *key, uint64_t fingerprint, const char *job_id,
               void *arg)
{
    json_t *keys = arg;
    json_object_set_new (keys, key, json_pack ("{s:I, s:s}", "fingerprint",
                                               (json_int_t) fingerprint,
                                               "job", job_id));
}

static void
s_put_job (const shoal_job_t *job, void *arg)
{
    shoal_store_batch_put_job (arg, job);
}

static void
s_put_task (const shoal_task_t *task, void *arg)
{
    shoal_store_batch_put_task (arg, task);
}

static void
test_a_batch_is_a_copy_taken_when_put (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), false, 1000,
                            NULL);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batch);
    assert_int_equal (shoal_store_batch_rows (batch), 1);   /* the job */
    /* The scheduler moves on; the batch keeps the job as it was. */
    shoal_scheduler_start (fx->sched, "j1", 1100, NULL);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1100);
    s_next_dispatch (fx->sched);
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    assert_int_equal (shoal_store_write (store, &batch, 1, &err), 0);
    shoal_store_destroy (&store);
    shoal_store_batch_destroy (&batch);
    assert_null (batch);
    shoal_scheduler_t *loaded = s_load (fx, 2000);
    assert_int_equal (shoal_job_state (shoal_scheduler_job (loaded, "j1")),
                      SHOAL_JOB_CREATED);
    shoal_scheduler_destroy (&loaded);
}

static void
test_batches_write_in_order_and_the_latest_row_wins (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), true, 1000,
                            NULL);
    shoal_store_batch_t *batches[2] = { shoal_store_batch_new (),
                                        shoal_store_batch_new () };
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[0]);
    shoal_store_batch_put_key (batches[0], "k-old", 7, "j1");
    shoal_store_batch_put_key (batches[0], "k-new", 8, "j1");
    /* The spawn task runs and fans out: its row changes, new rows come. */
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    shoal_action_t spawn = s_next_dispatch (fx->sched);
    json_t *list = json_pack ("[{s:s}, {s:s}]", "item", "a", "item", "b");
    s_exit (fx->sched, "w1", &spawn, 0, list, 1200);
    json_decref (list);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[1]);
    shoal_store_batch_forget_key (batches[1], "k-old");
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    assert_int_equal (shoal_store_write (store, batches, 2, &err), 0);
    shoal_store_destroy (&store);
    for (int i = 0; i < 2; i++)
        shoal_store_batch_destroy (&batches[i]);

    store = shoal_store_open (fx->path, &err);
    shoal_scheduler_t *loaded = shoal_scheduler_new (fx->defs);
    json_t *keys = json_object ();
    size_t jobs = 0;
    assert_int_equal (shoal_store_load (store, loaded, 3000, 10000,
                                        s_collect_key, keys, &jobs, &err), 0);
    shoal_store_destroy (&store);
    s_assert_same_job (fx->sched, loaded, "j1");
    assert_int_equal (json_object_size (keys), 1);
    json_t *kept = json_object_get (keys, "k-new");
    assert_non_null (kept);
    assert_int_equal (json_integer_value (json_object_get (kept,
                                                           "fingerprint")),
                      8);
    json_decref (keys);
    shoal_scheduler_destroy (&loaded);
}

/*  A fanned-out job's first steps in four batches, as four rounds of the
    loop would hand them over, on a worker of one slot (11 rows):
      0: the job submitted, no worker yet: its row, the spawn task new;
      1: the worker comes: the job, the spawn task running;
      2: it fans out: the job, the spawn task done, task a running (the
         slot is free again), task b new;
      3: a ends: the job, a done, b running.
    Written in one transaction (`together`) or one each; returns the
    store's counts.                                                       */
static shoal_store_counts_t
s_write_a_life (s_fixture_t *fx, bool together)
{
    shoal_store_batch_t *batches[4];
    for (int i = 0; i < 4; i++)
        batches[i] = shoal_store_batch_new ();
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), true, 1000,
                            NULL);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[0]);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    shoal_action_t spawn = s_next_dispatch (fx->sched);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[1]);
    json_t *list = json_pack ("[{s:s}, {s:s}]", "item", "a", "item", "b");
    s_exit (fx->sched, "w1", &spawn, 0, list, 1200);
    json_decref (list);
    shoal_action_t task_a = s_next_dispatch (fx->sched);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[2]);
    s_exit (fx->sched, "w1", &task_a, 0, NULL, 1300);
    s_drain (fx->sched);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batches[3]);
    const size_t expected[4] = { 2, 2, 4, 3 };
    for (int i = 0; i < 4; i++)
        assert_int_equal (shoal_store_batch_rows (batches[i]), expected[i]);

    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    if (together)
        assert_int_equal (shoal_store_write (store, batches, 4, &err), 0);
    else
        for (int i = 0; i < 4; i++)
            assert_int_equal (shoal_store_write (store, &batches[i], 1, &err),
                              0);
    shoal_store_counts_t counts;
    shoal_store_counts (store, &counts);
    shoal_store_destroy (&store);
    for (int i = 0; i < 4; i++)
        shoal_store_batch_destroy (&batches[i]);
    shoal_scheduler_t *loaded = s_load (fx, 3000);
    s_assert_same_job (fx->sched, loaded, "j1");
    shoal_scheduler_destroy (&loaded);
    return counts;
}

static void
test_rows_a_later_row_replaces_in_one_write_are_left_out (void **state)
{
    shoal_store_counts_t counts = s_write_a_life (*state, true);
    /* Three older job rows; the spawn task's new and running rows; task
       a's running row; task b's new row. */
    assert_int_equal (counts.replaced, 7);
    assert_int_equal (counts.written, 4);
}

static void
test_rows_of_separate_writes_are_all_written (void **state)
{
    shoal_store_counts_t counts = s_write_a_life (*state, false);
    assert_int_equal (counts.replaced, 0);
    assert_int_equal (counts.written, 11);
}

static void
test_a_failed_write_stores_nothing_of_it (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), false, 1000,
                            NULL);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batch);
    /* A key without its text breaks a NOT NULL constraint. */
    shoal_store_batch_put_key (batch, NULL, 1, "j1");
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    assert_int_equal (shoal_store_write (store, &batch, 1, &err), SHOAL_EIO);
    assert_non_null (strstr (err.message, "state store"));
    shoal_store_destroy (&store);
    shoal_store_batch_destroy (&batch);
    shoal_scheduler_t *loaded = s_load (fx, 2000);
    assert_int_equal (shoal_scheduler_job_count (loaded), 0);
    shoal_scheduler_destroy (&loaded);
}

/*  The integer `sql` gives (a count, a setting), read straight from the
    file; `job_id` is bound to ?1 when not NULL, `seq` to ?2.            */
static int64_t
s_query (s_fixture_t *fx, const char *sql, const char *job_id, uint64_t seq)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg ("%s: %s", sql, sqlite3_errmsg (db));
    if (job_id)
        sqlite3_bind_text (stmt, 1, job_id, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count (stmt) >= 2)
        sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) seq);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return value;
}

/*  Rows of `table` for the job `job_id` (held by fx->sched), read
    straight from the file: task rows by the job's seq in their key, so
    that rows left behind by a deleted job row are counted too.          */
static int
s_rows (s_fixture_t *fx, const char *table, const char *job_id)
{
    if (strcmp (table, "tasks") == 0)
        return (int) s_query (fx, "SELECT count(*) FROM tasks"
                              " WHERE key >> 32 = ?2", NULL,
                              shoal_job_seq (shoal_scheduler_job (fx->sched,
                                                                  job_id)));
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = ?1",
              table, strcmp (table, "jobs") == 0 ? "id" : "job");
    return (int) s_query (fx, sql, job_id, 0);
}

/*  Writes `batch` alone into the fixture's file.                         */
static void
s_write (s_fixture_t *fx, shoal_store_batch_t *batch)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    if (shoal_store_write (store, &batch, 1, &err))
        fail_msg ("write: %s", err.message);
    shoal_store_destroy (&store);
}

/*  Two jobs with tasks (j1 fanned out, j2 waiting) and a key each.       */
static void
s_two_jobs (s_fixture_t *fx, shoal_store_batch_t *batch)
{
    for (int i = 1; i <= 2; i++) {
        char id[4];
        snprintf (id, sizeof id, "j%d", i);
        shoal_scheduler_submit (fx->sched, id, shoal_defs_job_class (
                                    fx->defs, "fanout"),
                                json_pack ("{s:s}", "token", "t"), true,
                                1000, NULL);
    }
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    shoal_action_t spawn = s_next_dispatch (fx->sched);
    assert_string_equal (shoal_job_id (spawn.job), "j1");
    json_t *list = json_pack ("[{s:s}, {s:s}]", "item", "a", "item", "b");
    s_exit (fx->sched, "w1", &spawn, 0, list, 1200);
    json_decref (list);
    s_drain (fx->sched);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batch);
    shoal_store_batch_put_key (batch, "k1", 1, "j1");
    shoal_store_batch_put_key (batch, "k2", 2, "j2");
}

static void
test_a_delete_row_removes_the_job_its_tasks_and_keys (void **state)
{
    s_fixture_t *fx = *state;
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    s_two_jobs (fx, batch);
    s_write (fx, batch);
    assert_int_equal (s_rows (fx, "tasks", "j1"), 3);
    assert_int_equal (s_rows (fx, "idempotency", "j1"), 1);
    shoal_store_batch_clear (batch);
    shoal_store_batch_delete_job (batch, "j1");
    assert_int_equal (shoal_store_batch_rows (batch), 1);
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);
    assert_int_equal (s_rows (fx, "jobs", "j1"), 0);
    assert_int_equal (s_rows (fx, "tasks", "j1"), 0);
    assert_int_equal (s_rows (fx, "idempotency", "j1"), 0);
    /* The other job is whole. */
    assert_int_equal (s_rows (fx, "jobs", "j2"), 1);
    assert_int_equal (s_rows (fx, "tasks", "j2"), 1);
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    shoal_scheduler_t *loaded = shoal_scheduler_new (fx->defs);
    json_t *keys = json_object ();
    size_t jobs = 0;
    assert_int_equal (shoal_store_load (store, loaded, 3000, 10000,
                                        s_collect_key, keys, &jobs, &err), 0);
    shoal_store_destroy (&store);
    assert_int_equal (jobs, 1);
    assert_null (shoal_scheduler_job (loaded, "j1"));
    s_assert_same_job (fx->sched, loaded, "j2");
    /* j2 keeps its sequence number: renumbered, it would be 1, and its
       tasks' keys would name j1. */
    assert_int_equal (shoal_job_seq (shoal_scheduler_job (loaded, "j2")), 2);
    shoal_job_t *next = shoal_scheduler_submit (
        loaded, "j3", shoal_defs_job_class (fx->defs, "fanout"),
        json_pack ("{s:s}", "token", "t"), false, 3000, NULL);
    assert_int_equal (shoal_job_seq (next), 3);
    assert_int_equal (json_object_size (keys), 1);
    assert_non_null (json_object_get (keys, "k2"));
    json_decref (keys);
    shoal_scheduler_destroy (&loaded);
}

static void
test_a_put_then_a_delete_in_one_batch_leaves_nothing (void **state)
{
    s_fixture_t *fx = *state;
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    s_two_jobs (fx, batch);
    /* Put before the delete in the batch; the delete still wins. */
    shoal_store_batch_delete_job (batch, "j1");
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);
    assert_int_equal (s_rows (fx, "jobs", "j1"), 0);
    assert_int_equal (s_rows (fx, "tasks", "j1"), 0);
    assert_int_equal (s_rows (fx, "idempotency", "j1"), 0);
    assert_int_equal (s_rows (fx, "jobs", "j2"), 1);
    assert_int_equal (s_rows (fx, "idempotency", "j2"), 1);
}

static void
test_a_restored_job_canceled_before_its_worker_returns_is_forgotten (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "j1", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), true, 1000,
                            NULL);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    s_next_dispatch (fx->sched);
    s_save (fx);
    /* Read back with its task running and no worker yet: an orphan. */
    shoal_scheduler_t *loaded = s_load (fx, 5000);
    assert_int_equal (shoal_scheduler_cancel (loaded, "j1", 5100, NULL), 0);
    s_drain (loaded);
    shoal_scheduler_flush (loaded, NULL, NULL, NULL);
    assert_int_equal (shoal_scheduler_evict (loaded, 6000, 100, NULL, NULL),
                      1);
    assert_null (shoal_scheduler_job (loaded, "j1"));
    /* The lease runs out over the orphan list the job's task was on. */
    shoal_scheduler_tick (loaded, 20000);
    s_drain (loaded);
    shoal_scheduler_worker_hello (loaded, "w1-new", "w1", "h", 2, 1, 20000);
    assert_false (shoal_scheduler_adopt (loaded, "w1-new", "j1", 0, 1,
                                         20000));
    shoal_scheduler_destroy (&loaded);
}

static void
test_a_job_that_ended_long_ago_is_forgotten_after_a_restart (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_submit (fx->sched, "old", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), false, 1000,
                            NULL);
    shoal_scheduler_cancel (fx->sched, "old", 1500, NULL);
    shoal_scheduler_submit (fx->sched, "new", shoal_defs_job_class (
                                fx->defs, "fanout"),
                            json_pack ("{s:s}", "token", "t"), false, 1000,
                            NULL);
    s_drain (fx->sched);
    s_save (fx);
    /* Read back, nothing of it changed: it goes at the first call. */
    shoal_scheduler_t *loaded = s_load (fx, 9000);
    assert_int_equal (shoal_scheduler_evict (loaded, 5000, 100, NULL, NULL),
                      1);
    assert_null (shoal_scheduler_job (loaded, "old"));
    assert_non_null (shoal_scheduler_job (loaded, "new"));
    shoal_scheduler_destroy (&loaded);
}


/* ---- definitions: a job keeps those it was submitted under ----------- */

/*  Two versions of the definitions: what both start with, `work` running
    `command`, and `fanout`'s first stage.                                */
#define S_YAML_HEAD(command) \
    "tasks:\n" \
    "  work:\n" \
    "    input: {item: {source: parameter, default: none}}\n" \
    "    exec_command: " command "\n" \
    "    exec_args: ['{item}']\n" \
    "  fan:\n" \
    "    exec_command: /bin/true\n" \
    "jobs:\n" \
    "  fanout:\n" \
    "    input: {token: {source: http-header, key: Authorization}}\n" \
    "    stages:\n" \
    "      - {name: spread, task_class: work, spawn_task: fan}\n"

/*  A first run's: `fanout` of 2 stages, and a class `gone`.              */
static const char *s_yaml_first =
    S_YAML_HEAD ("/bin/true")
    "      - {name: finish, task_class: work}\n"
    "  gone:\n"
    "    stages:\n"
    "      - {task_class: work}\n";

/*  A later run's: `fanout` has a stage more and `work` another command,
    `gone` is no more, `added` is new.                                     */
static const char *s_yaml_next =
    S_YAML_HEAD ("/bin/echo")
    "      - {name: check, task_class: work}\n"
    "      - {name: finish, task_class: work}\n"
    "  added:\n"
    "    stages:\n"
    "      - {task_class: work}\n";

static shoal_defs_t *
s_defs (const char *yaml, const char *name)
{
    shoal_error_t err = { 0 };
    shoal_defs_t *defs = shoal_defs_parse (yaml, strlen (yaml), name, &err);
    if (!defs)
        fail_msg ("%s", err.message);
    return defs;
}

/*  Opens the store as a controller does: its definitions stored first,
    their version given to `sched`, then everything read back into it.
    Returns the version; `load_err` (may be NULL) gets the load's error,
    and a load that fails is a test failure only without it.              */
static uint32_t
s_open_as_controller (s_fixture_t *fx, shoal_scheduler_t *sched,
                      const shoal_defs_t *defs, shoal_error_t *load_err)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    if (!store)
        fail_msg ("%s", err.message);
    size_t len = 0;
    const char *text = shoal_defs_source (defs, &len);
    uint32_t version = 0;
    assert_int_equal (shoal_store_put_definitions (store, text, len,
                                                   &version, &err), 0);
    assert_true (version > 0);
    shoal_scheduler_set_definitions_version (sched, version);
    size_t jobs = 0;
    int rc = shoal_store_load (store, sched, 2000, 10000, NULL, NULL, &jobs,
                               load_err ? load_err : &err);
    if (rc && !load_err)
        fail_msg ("load: %s", err.message);
    shoal_store_destroy (&store);
    return rc ? 0 : version;
}

/*  Jobs of `sched` written to the store.                                 */
static void
s_write_changes (s_fixture_t *fx, shoal_scheduler_t *sched)
{
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    shoal_scheduler_flush (sched, s_put_job, s_put_task, batch);
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);
}

static uint32_t
s_version_of (shoal_scheduler_t *sched, const char *id)
{
    shoal_job_record_t record;
    shoal_job_record (shoal_scheduler_job (sched, id), &record);
    return record.definitions;
}

/*  A first run over s_yaml_first: job `f` of class `fanout` submitted
    (started or not). Returns the version its definitions got.           */
static uint32_t
s_first_run (s_fixture_t *fx, shoal_defs_t **first,
             shoal_scheduler_t **before, bool start)
{
    *first = s_defs (s_yaml_first, "first.yaml");
    *before = shoal_scheduler_new (*first);
    uint32_t version = s_open_as_controller (fx, *before, *first, NULL);
    assert_non_null (shoal_scheduler_submit (
        *before, "f", shoal_defs_job_class (*first, "fanout"),
        json_pack ("{s:s}", "token", "t"), start, 1000, NULL));
    return version;
}

static void
test_jobs_keep_the_definitions_they_were_submitted_under (void **state)
{
    s_fixture_t *fx = *state;
    shoal_defs_t *first = NULL;
    shoal_scheduler_t *before = NULL;
    uint32_t v1 = s_first_run (fx, &first, &before, false);
    shoal_scheduler_submit (before, "g", shoal_defs_job_class (first, "gone"),
                            json_object (), true, 1000, NULL);
    assert_int_equal (s_version_of (before, "f"), v1);
    s_write_changes (fx, before);

    /* The next run's definitions lack `gone`, and `fanout` has 3 stages:
       both jobs are read back with the definitions they came with. */
    shoal_defs_t *next = s_defs (s_yaml_next, "next.yaml");
    shoal_scheduler_t *after = shoal_scheduler_new (next);
    uint32_t v2 = s_open_as_controller (fx, after, next, NULL);
    assert_int_not_equal (v1, v2);
    assert_int_equal (shoal_scheduler_job_count (after), 2);
    s_assert_same_job (before, after, "f");
    s_assert_same_job (before, after, "g");
    const shoal_job_class_t *f_class
        = shoal_job_class (shoal_scheduler_job (after, "f"));
    assert_int_equal (f_class->stage_count, 2);
    assert_ptr_equal (f_class, shoal_defs_job_class (
                                   shoal_scheduler_definitions (after, v1),
                                   "fanout"));
    assert_int_equal (s_version_of (after, "f"), v1);
    /* Its tasks run the commands of its own definitions. */
    assert_string_equal (f_class->stages[0].task_class->exec_command,
                         "/bin/true");
    assert_int_equal (shoal_scheduler_start (after, "f", 2100, NULL), 0);
    shoal_scheduler_worker_hello (after, "w1", "w1", "h", 4, 0, 2100);
    shoal_action_t task = s_next_dispatch (after);
    assert_string_equal (shoal_job_id (task.job), "g");
    assert_int_equal (s_exit (after, "w1", &task, 0, NULL, 2200), 0);
    assert_int_equal (shoal_job_state (shoal_scheduler_job (after, "g")),
                      SHOAL_JOB_SUCCEEDED);
    /* A job submitted now takes the new definitions. */
    assert_non_null (shoal_scheduler_submit (
        after, "n", shoal_defs_job_class (next, "fanout"),
        json_pack ("{s:s}", "token", "t"), true, 2300, NULL));
    assert_int_equal (s_version_of (after, "n"), v2);
    assert_string_equal (shoal_job_class (shoal_scheduler_job (after, "n"))
                             ->stages[0].task_class->exec_command,
                         "/bin/echo");
    s_write_changes (fx, after);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM definitions", NULL,
                               0), 2);

    /* The same text is the same version. */
    shoal_scheduler_t *again = shoal_scheduler_new (first);
    assert_int_equal (s_open_as_controller (fx, again, first, NULL), v1);
    assert_int_equal (shoal_job_class (shoal_scheduler_job (again, "n"))
                          ->stage_count, 3);
    shoal_scheduler_destroy (&again);

    /* Once no job names them, definitions are dropped at the next open:
       here the first ones, after their jobs went. */
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "DELETE FROM jobs WHERE id <> 'n'",
                                    NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    shoal_scheduler_t *last = shoal_scheduler_new (next);
    assert_int_equal (s_open_as_controller (fx, last, next, NULL), v2);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM definitions", NULL,
                               0), 1);
    assert_int_equal (s_query (fx, "SELECT version FROM definitions", NULL,
                               0), v2);
    shoal_scheduler_destroy (&last);
    shoal_scheduler_destroy (&after);
    shoal_scheduler_destroy (&before);
    shoal_defs_destroy (&next);
    shoal_defs_destroy (&first);
}

/*  Definitions that cannot be read back (here damaged in the file): their
    jobs are read back with the current ones when those fit, and refused,
    naming the job and its class, when they do not.                       */
static void
test_unreadable_definitions_fall_back_to_the_current_ones (void **state)
{
    s_fixture_t *fx = *state;
    shoal_defs_t *first = NULL;
    shoal_scheduler_t *before = NULL;
    uint32_t v1 = s_first_run (fx, &first, &before, true);
    s_write_changes (fx, before);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "UPDATE definitions SET text ="
                                    " 'tasks: [' WHERE version = 1", NULL,
                                    NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    assert_int_equal (v1, 1);

    /* The fixture's definitions have `fanout` with 2 stages: it fits. */
    shoal_scheduler_t *fits = shoal_scheduler_new (fx->defs);
    uint32_t current = s_open_as_controller (fx, fits, fx->defs, NULL);
    assert_int_equal (shoal_scheduler_job_count (fits), 1);
    assert_ptr_equal (shoal_job_class (shoal_scheduler_job (fits, "f")),
                      shoal_defs_job_class (fx->defs, "fanout"));
    assert_int_equal (s_version_of (fits, "f"), current);
    shoal_scheduler_destroy (&fits);

    /* With 3 stages it does not: the load fails and says why. */
    shoal_defs_t *next = s_defs (s_yaml_next, "next.yaml");
    shoal_scheduler_t *refused = shoal_scheduler_new (next);
    shoal_error_t err = { 0 };
    assert_int_equal (s_open_as_controller (fx, refused, next, &err), 0);
    assert_non_null (strstr (err.message, "job f has 2 stages stored"));
    assert_non_null (strstr (err.message, "Changing the definitions"));
    shoal_scheduler_destroy (&refused);
    shoal_scheduler_destroy (&before);
    shoal_defs_destroy (&next);
    shoal_defs_destroy (&first);
}

/*  A store of schema 2 kept no definitions: its jobs are read back with
    the current ones, and from then on are stored as theirs.             */
static void
test_jobs_of_schema_2_take_the_definitions_they_are_read_back_with (
    void **state)
{
    s_fixture_t *fx = *state;
    /* The views compare equal once read back: the jobs are read back
       with the version the new store gives the fixture's definitions,
       its first, 1; their rows will hold none. */
    shoal_scheduler_set_definitions_version (fx->sched, 1);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    s_two_jobs (fx, batch);
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db,
                                    "DROP TABLE definitions;"
                                    "ALTER TABLE jobs DROP COLUMN definitions;"
                                    "PRAGMA user_version = 2;",
                                    NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    assert_int_equal (s_query (fx, "PRAGMA user_version", NULL, 0), 2);
    shoal_scheduler_t *loaded = shoal_scheduler_new (fx->defs);
    uint32_t version = s_open_as_controller (fx, loaded, fx->defs, NULL);
    assert_int_equal (version, 1);
    assert_int_equal (s_query (fx, "PRAGMA user_version", NULL, 0), 3);
    s_assert_same_job (fx->sched, loaded, "j1");
    s_assert_same_job (fx->sched, loaded, "j2");
    assert_int_equal (s_version_of (loaded, "j1"), version);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM jobs"
                               " WHERE definitions = ?2", NULL, version), 2);
    shoal_scheduler_destroy (&loaded);
}

/*  Jobs forgotten leave free pages, which compacting gives back; what is
    kept reads back the same.                                             */
static void
test_compacting_gives_back_the_pages_of_forgotten_jobs (void **state)
{
    s_fixture_t *fx = *state;
    enum { S_JOBS = 400 };
    const shoal_job_class_t *cls = shoal_defs_job_class (fx->defs, "fanout");
    for (int i = 0; i < S_JOBS; i++) {
        char id[16];
        snprintf (id, sizeof id, "j%d", i);
        assert_non_null (shoal_scheduler_submit (
            fx->sched, id, cls, json_pack ("{s:s}", "token", "t"), true,
            1000 + i, NULL));
    }
    s_write_changes (fx, fx->sched);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    for (int i = 1; i < S_JOBS; i++) {
        char id[16];
        snprintf (id, sizeof id, "j%d", i);
        shoal_store_batch_delete_job (batch, id);
    }
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);

    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    shoal_store_sizes_t sizes;
    if (shoal_store_compact (store, &sizes, &err))
        fail_msg ("compact: %s", err.message);
    shoal_store_destroy (&store);
    assert_true (sizes.free_before > 0);
    assert_true (sizes.free_before < sizes.before);
    assert_true (sizes.after <= sizes.before - sizes.free_before);
    /* The file itself is that small now, its log empty. */
    struct stat file;
    assert_int_equal (stat (fx->path, &file), 0);
    assert_int_equal ((uint64_t) file.st_size, sizes.after);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM jobs", NULL, 0), 1);
    shoal_scheduler_t *loaded = s_load (fx, 5000);
    assert_int_equal (shoal_scheduler_job_count (loaded), 1);
    s_assert_same_job (fx->sched, loaded, "j0");
    shoal_scheduler_destroy (&loaded);
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

static void
test_a_store_of_schema_1_is_moved_to_schema_3 (void **state)
{
    s_fixture_t *fx = *state;
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    s_two_jobs (fx, batch);
    s_write (fx, batch);
    shoal_store_batch_destroy (&batch);
    /* Turn the file into what a controller of schema 1 left: tasks keyed
       by job id and task id, jobs numbered by SQLite (here 41 and 42),
       and a task whose job row is gone. */
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    char *message = NULL;
    int rc = sqlite3_exec (
        db,
        "BEGIN;"
        "CREATE TABLE tasks_v1 (job TEXT NOT NULL, id INTEGER NOT NULL,"
        "  stage INTEGER NOT NULL, idx INTEGER NOT NULL,"
        "  state INTEGER NOT NULL, attempt INTEGER NOT NULL,"
        "  losses INTEGER NOT NULL, failures INTEGER NOT NULL,"
        "  exit_code INTEGER NOT NULL, signal INTEGER NOT NULL, error TEXT,"
        "  worker TEXT, entry TEXT, started_at INTEGER NOT NULL,"
        "  finished_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
        "  wake_at INTEGER NOT NULL, PRIMARY KEY (job, id)) WITHOUT ROWID;"
        "INSERT INTO tasks_v1 SELECT jobs.id, tasks.key & 4294967295,"
        "  tasks.stage, idx, tasks.state, attempt, losses, failures,"
        "  exit_code, signal, tasks.error, worker, entry, tasks.started_at,"
        "  tasks.finished_at, duration_ms, wake_at"
        "  FROM tasks JOIN jobs ON tasks.key >> 32 = jobs.seq;"
        "INSERT INTO tasks_v1 SELECT 'gone-' || job, id, stage, idx, state,"
        "  attempt, losses, failures, exit_code, signal, error, worker,"
        "  entry, started_at, finished_at, duration_ms, wake_at"
        "  FROM tasks_v1;"
        "DROP TABLE tasks;"
        "ALTER TABLE tasks_v1 RENAME TO tasks;"
        "UPDATE jobs SET seq = seq + 40;"
        "DROP TABLE definitions;"
        "ALTER TABLE jobs DROP COLUMN definitions;"
        "PRAGMA user_version = 1;"
        "COMMIT;",
        NULL, NULL, &message);
    if (rc != SQLITE_OK)
        fail_msg ("%s", message);
    sqlite3_close (db);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM tasks", NULL, 0), 8);

    shoal_scheduler_t *loaded = s_load (fx, 3000);
    assert_int_equal (s_query (fx, "PRAGMA user_version", NULL, 0), 3);
    assert_int_equal (shoal_scheduler_job_count (loaded), 2);
    s_assert_same_job (fx->sched, loaded, "j1");
    s_assert_same_job (fx->sched, loaded, "j2");
    assert_int_equal (shoal_job_seq (shoal_scheduler_job (loaded, "j1")), 41);
    assert_int_equal (shoal_job_seq (shoal_scheduler_job (loaded, "j2")), 42);
    /* Each task is under its job's seq; the orphans are left out. */
    assert_int_equal (s_query (fx, "SELECT count(*) FROM tasks", NULL, 0), 4);
    assert_int_equal (s_query (fx, "SELECT count(*) FROM tasks"
                               " WHERE key >> 32 = 41", NULL, 0), 3);
    /* The moved store is written and read again like a new one. */
    assert_int_equal (shoal_scheduler_cancel (loaded, "j2", 3100, NULL), 0);
    shoal_store_t *store = shoal_store_open (fx->path, NULL);
    assert_non_null (store);
    shoal_error_t err = { 0 };
    assert_int_equal (shoal_store_save (store, loaded, NULL, 0, NULL, &err),
                      0);
    shoal_store_destroy (&store);
    shoal_scheduler_t *again = s_load (fx, 3200);
    s_assert_same_job (loaded, again, "j2");
    shoal_scheduler_destroy (&again);
    shoal_scheduler_destroy (&loaded);
}

static void
test_a_store_of_a_newer_schema_is_refused (void **state)
{
    s_fixture_t *fx = *state;
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "PRAGMA user_version = 4", NULL,
                                    NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    shoal_error_t err = { 0 };
    assert_null (shoal_store_open (fx->path, &err));
    assert_non_null (strstr (err.message, "schema version 4"));
    assert_non_null (strstr (err.message, "reads version 3"));
}

/*  The store checkpoints its log itself (SQLite's automatic checkpoint
    is replaced by store.c's hook), and hands the log's pages to the disk
    between checkpoints. Many small transactions, as a stream of REST
    submissions makes: the log stays bounded, every job reads back.       */
static void
test_the_log_is_checkpointed_and_stays_bounded (void **state)
{
    s_fixture_t *fx = *state;
    enum { S_JOBS = 2000 };
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    assert_non_null (batch);
    const shoal_job_class_t *cls = shoal_defs_job_class (fx->defs, "fanout");
    struct stat wal;
    off_t largest = 0;
    char wal_path[128];
    snprintf (wal_path, sizeof wal_path, "%s-wal", fx->path);
    for (int i = 0; i < S_JOBS; i++) {
        char id[16];
        snprintf (id, sizeof id, "j%d", i);
        assert_non_null (shoal_scheduler_submit (
            fx->sched, id, cls, json_pack ("{s:s}", "token", "t"), true,
            1000 + i, NULL));
        shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, batch);
        assert_int_equal (shoal_store_write (store, &batch, 1, &err), 0);
        shoal_store_batch_clear (batch);
        if (stat (wal_path, &wal) == 0 && wal.st_size > largest)
            largest = wal.st_size;
    }
    shoal_store_counts_t counts;
    shoal_store_counts (store, &counts);
    shoal_store_batch_destroy (&batch);
    shoal_store_destroy (&store);
    /* Each transaction appends a frame per page it changed, at least 2
       (the job's row, the spawn task's row): over 4,000 frames in all. */
    assert_true (counts.checkpoints >= 3);
    assert_true (counts.writebacks >= counts.checkpoints);
    /* 1,000 frames of 4 KiB pages, and the last transaction's few. */
    assert_true (largest > 0);
    assert_true (largest < 1100 * (4096 + 24));

    shoal_scheduler_t *loaded = s_load (fx, 5000);
    for (int i = 0; i < S_JOBS; i += 199) {
        char id[16];
        snprintf (id, sizeof id, "j%d", i);
        s_assert_same_job (fx->sched, loaded, id);
    }
    s_assert_same_job (fx->sched, loaded, "j1999");
    shoal_scheduler_destroy (&loaded);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_jobs_in_every_state_read_back_the_same),
        T (test_running_task_is_adopted_by_its_worker_after_a_restart),
        T (test_unclaimed_running_task_runs_again_after_the_lease),
        T (test_only_changes_are_written_and_secrets_are_kept),
        T (test_a_file_that_is_not_a_database_is_refused),
        T (test_a_batch_is_a_copy_taken_when_put),
        T (test_batches_write_in_order_and_the_latest_row_wins),
        T (test_a_failed_write_stores_nothing_of_it),
        T (test_rows_a_later_row_replaces_in_one_write_are_left_out),
        T (test_rows_of_separate_writes_are_all_written),
        T (test_a_delete_row_removes_the_job_its_tasks_and_keys),
        T (test_a_put_then_a_delete_in_one_batch_leaves_nothing),
        T (test_a_job_that_ended_long_ago_is_forgotten_after_a_restart),
        T (test_a_restored_job_canceled_before_its_worker_returns_is_forgotten),
        T (test_a_store_of_schema_1_is_moved_to_schema_3),
        T (test_a_store_of_a_newer_schema_is_refused),
        T (test_jobs_keep_the_definitions_they_were_submitted_under),
        T (test_unreadable_definitions_fall_back_to_the_current_ones),
        T (test_jobs_of_schema_2_take_the_definitions_they_are_read_back_with),
        T (test_the_log_is_checkpointed_and_stays_bounded),
        T (test_compacting_gives_back_the_pages_of_forgotten_jobs),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
