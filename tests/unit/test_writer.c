/*  test_writer.c: the state store's thread writes what it is handed, in
    order, says when (its descriptor) and says which watched batch failed.

    A real SQLite file in a temp directory; the writer's own thread. A
    batch fails on purpose with a key row that has no key (a NOT NULL
    column).                                                              */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal/defs.h"
#include "shoal/scheduler.h"
#include "shoal/store.h"
#include "store_fixture.h"
#include "writer.h"

static const char *s_yaml =
    "tasks:\n"
    "  work:\n"
    "    exec_command: /bin/true\n"
    "jobs:\n"
    "  one:\n"
    "    stages:\n"
    "      - {task_class: work}\n";

static int
s_setup (void **state)
{
    *state = s_fixture_new (s_yaml, "writer");
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_destroy (*state);
    return 0;
}

static shoal_writer_t *
s_writer (s_fixture_t *fx)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    shoal_writer_t *writer = shoal_writer_new (&store, &err);
    assert_non_null (writer);
    assert_null (store);   /* the writer's now */
    return writer;
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

/*  Submits job `id` and hands its rows over; returns the ticket.         */
static uint64_t
s_submit (s_fixture_t *fx, shoal_writer_t *writer, shoal_store_batch_t **batch,
          const char *id, bool watch)
{
    shoal_scheduler_submit (fx->sched, id,
                            shoal_defs_job_class (fx->defs, "one"),
                            json_object (), true, 1000, NULL);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, *batch);
    uint64_t ticket = shoal_writer_submit (writer, batch, watch);
    assert_non_null (*batch);   /* an empty one in its place */
    assert_int_equal (shoal_store_batch_rows (*batch), 0);
    return ticket;
}

/*  Submits job "bad" with a key row that has no key (a NOT NULL column):
    the batch's write fails. Returns its ticket.                          */
static uint64_t
s_submit_bad (s_fixture_t *fx, shoal_writer_t *writer,
              shoal_store_batch_t **batch, bool watch)
{
    shoal_scheduler_submit (fx->sched, "bad",
                            shoal_defs_job_class (fx->defs, "one"),
                            json_object (), true, 1000, NULL);
    shoal_scheduler_flush (fx->sched, s_put_job, s_put_task, *batch);
    shoal_store_batch_put_key (*batch, NULL, 1, "bad");
    return shoal_writer_submit (writer, batch, watch);
}

/*  Waits on the writer's descriptor until `ticket` is written, as the
    loop does: it hurries the writer, which then says when.               */
static void
s_wait_written (shoal_writer_t *writer, uint64_t ticket)
{
    shoal_writer_hurry (writer);
    while (shoal_writer_written (writer) < ticket) {
        struct pollfd ready = { shoal_writer_fd (writer), POLLIN, 0 };
        assert_true (poll (&ready, 1, 30000) >= 0);
        shoal_writer_ack (writer);
    }
}

static size_t
s_jobs_stored (s_fixture_t *fx)
{
    shoal_error_t err = { 0 };
    shoal_store_t *store = shoal_store_open (fx->path, &err);
    assert_non_null (store);
    shoal_scheduler_t *loaded = shoal_scheduler_new (fx->defs);
    size_t jobs = 0;
    assert_int_equal (shoal_store_load (store, loaded, 2000, 10000, NULL,
                                        NULL, &jobs, &err), 0);
    shoal_store_destroy (&store);
    shoal_scheduler_destroy (&loaded);
    return jobs;
}

static void
test_tickets_count_up_and_everything_is_written (void **state)
{
    s_fixture_t *fx = *state;
    shoal_writer_t *writer = s_writer (fx);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    assert_int_equal (shoal_writer_submitted (writer), 0);
    /* An empty batch is not handed over. */
    assert_int_equal (shoal_writer_submit (writer, &batch, false), 0);
    uint64_t first = s_submit (fx, writer, &batch, "a", false);
    uint64_t second = s_submit (fx, writer, &batch, "b", true);
    assert_int_equal (first, 1);
    assert_int_equal (second, 2);
    assert_int_equal (shoal_writer_submitted (writer), 2);
    s_wait_written (writer, second);
    assert_false (shoal_writer_failed (writer, second));
    assert_false (shoal_writer_take_resync (writer));
    assert_int_equal (shoal_writer_waiting_rows (writer), 0);
    /* Handed over and not waited for: written when the writer stops. */
    s_submit (fx, writer, &batch, "c", false);
    shoal_writer_destroy (&writer);
    assert_null (writer);
    shoal_store_batch_destroy (&batch);
    assert_int_equal (s_jobs_stored (fx), 3);
}

static void
test_a_watched_batch_that_fails_is_told_once (void **state)
{
    s_fixture_t *fx = *state;
    shoal_writer_t *writer = s_writer (fx);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    uint64_t good = s_submit (fx, writer, &batch, "good", true);
    s_wait_written (writer, good);
    uint64_t bad = s_submit_bad (fx, writer, &batch, true);
    s_wait_written (writer, bad);
    assert_true (shoal_writer_failed (writer, bad));
    assert_false (shoal_writer_failed (writer, bad));   /* told once */
    assert_false (shoal_writer_failed (writer, good));
    assert_true (shoal_writer_take_resync (writer));
    assert_false (shoal_writer_take_resync (writer));
    /* The writer goes on: the next batch is written. */
    uint64_t after = s_submit (fx, writer, &batch, "after", true);
    s_wait_written (writer, after);
    assert_false (shoal_writer_failed (writer, after));
    shoal_writer_destroy (&writer);
    shoal_store_batch_destroy (&batch);
    assert_int_equal (s_jobs_stored (fx), 2);   /* good, after */
}

/*  Waits for `ticket` without the descriptor: the writer's own group
    delay writes it in a few milliseconds.                                */
static void
s_spin_written (shoal_writer_t *writer, uint64_t ticket)
{
    while (shoal_writer_written (writer) < ticket)
        usleep (1000);
}

static bool
s_readable (shoal_writer_t *writer)
{
    struct pollfd ready = { shoal_writer_fd (writer), POLLIN, 0 };
    return poll (&ready, 1, 0) == 1;
}

static void
test_the_descriptor_wakes_only_who_waits (void **state)
{
    s_fixture_t *fx = *state;
    shoal_writer_t *writer = s_writer (fx);
    shoal_store_batch_t *batch = shoal_store_batch_new ();
    /* Written, but no one hurried the writer: the loop sleeps on. */
    uint64_t quiet = s_submit (fx, writer, &batch, "quiet", false);
    s_spin_written (writer, quiet);
    assert_false (s_readable (writer));
    /* Hurried after the write already happened: told at once, or the
       reply held for it would wait for a transaction that never comes. */
    shoal_writer_hurry (writer);
    assert_true (s_readable (writer));
    shoal_writer_ack (writer);
    assert_false (s_readable (writer));
    /* A failed write wakes it unasked: the loop must resync. */
    uint64_t bad = s_submit_bad (fx, writer, &batch, false);
    s_spin_written (writer, bad);
    assert_true (s_readable (writer));
    assert_true (shoal_writer_take_resync (writer));
    shoal_writer_destroy (&writer);
    shoal_store_batch_destroy (&batch);
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_tickets_count_up_and_everything_is_written),
        T (test_the_descriptor_wakes_only_who_waits),
        T (test_a_watched_batch_that_fails_is_told_once),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
