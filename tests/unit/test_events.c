/*  test_events.c: the event hub's ring, numbering, replay and reset.

    No sockets: the hub is driven by hand, readers call it directly, and
    one test wakes a blocked reader from a second thread.                 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "events.h"

#include "shoal/defs.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BASE 1000

/*  Publishes `count` job events for job `job`, with text {"n": i}.       */
static uint64_t
s_publish (shoal_events_t *hub, const char *job, int count)
{
    shoal_event_t events[64];
    assert_true (count <= 64);
    memset (events, 0, sizeof events);
    for (int i = 0; i < count; i++) {
        events[i].type = SHOAL_EVENT_JOB;
        snprintf (events[i].job, sizeof events[i].job, "%s", job);
        char text[32];
        snprintf (text, sizeof text, "{\"n\":%d}", i);
        events[i].text = strdup (text);
    }
    uint64_t last = shoal_events_publish (hub, events, (size_t) count);
    /* The hub took the strings. */
    for (int i = 0; i < count; i++)
        assert_null (events[i].text);
    return last;
}

/*  Reads everything after *cursor without waiting; returns the count and
    frees what was read, keeping the ids in `ids`.                        */
static int
s_read_all (shoal_events_t *hub, uint64_t *cursor, const char *job,
            uint64_t *ids, int max, bool *reset)
{
    shoal_event_t batch[64];
    int total = 0;
    for (;;) {
        int got = shoal_events_read (hub, cursor, job, batch, 64, 0, reset);
        assert_true (got >= 0);
        for (int i = 0; i < got; i++) {
            if (total < max)
                ids[total] = batch[i].id;
            total++;
            shoal_event_clear (&batch[i]);
        }
        if (got == 0 && !*reset && *cursor >= shoal_events_last (hub))
            return total;
        if (got == 0 && *reset)
            return total;
    }
}

static void
test_ids_start_after_base_and_are_contiguous (void **state)
{
    shoal_events_t *hub = shoal_events_new (16, BASE);
    assert_non_null (hub);
    assert_int_equal (shoal_events_last (hub), BASE);
    assert_int_equal (s_publish (hub, "a", 3), BASE + 3);
    assert_int_equal (s_publish (hub, "a", 0), BASE + 3);
    uint64_t cursor = BASE;
    uint64_t ids[8];
    bool reset = false;
    assert_int_equal (s_read_all (hub, &cursor, NULL, ids, 8, &reset), 3);
    assert_false (reset);
    for (int i = 0; i < 3; i++)
        assert_int_equal (ids[i], BASE + 1 + (uint64_t) i);
    assert_int_equal (cursor, BASE + 3);
    shoal_events_destroy (&hub);
    assert_null (hub);
}

static void
test_resume_replays_exactly_the_missed_events (void **state)
{
    shoal_events_t *hub = shoal_events_new (16, BASE);
    s_publish (hub, "a", 10);
    uint64_t cursor = BASE + 4;          /* the client saw 1..4 */
    uint64_t ids[16];
    bool reset = false;
    assert_int_equal (s_read_all (hub, &cursor, NULL, ids, 16, &reset), 6);
    assert_false (reset);
    for (int i = 0; i < 6; i++)
        assert_int_equal (ids[i], BASE + 5 + (uint64_t) i);
    /* Nothing new: a read times out with nothing and no reset. */
    shoal_event_t batch[4];
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 4, 10,
                                         &reset), 0);
    assert_false (reset);
    assert_int_equal (cursor, BASE + 10);
    shoal_events_destroy (&hub);
}

static void
test_filter_keeps_one_job_and_moves_past_the_rest (void **state)
{
    shoal_events_t *hub = shoal_events_new (64, BASE);
    s_publish (hub, "a", 2);
    s_publish (hub, "b", 3);
    s_publish (hub, "a", 1);
    uint64_t cursor = BASE;
    uint64_t ids[8];
    bool reset = false;
    assert_int_equal (s_read_all (hub, &cursor, "a", ids, 8, &reset), 3);
    assert_int_equal (ids[0], BASE + 1);
    assert_int_equal (ids[1], BASE + 2);
    assert_int_equal (ids[2], BASE + 6);
    assert_int_equal (cursor, BASE + 6);
    cursor = BASE;
    assert_int_equal (s_read_all (hub, &cursor, "b", ids, 8, &reset), 3);
    assert_int_equal (ids[0], BASE + 3);
    assert_false (reset);
    shoal_events_destroy (&hub);
}

static void
test_ring_drops_the_oldest_and_a_late_reader_gets_a_reset (void **state)
{
    shoal_events_t *hub = shoal_events_new (4, BASE);
    s_publish (hub, "a", 10);            /* holds BASE+7 .. BASE+10 */
    uint64_t cursor = BASE + 2;
    bool reset = false;
    shoal_event_t batch[8];
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 8, 0,
                                         &reset), 0);
    assert_true (reset);
    assert_int_equal (cursor, BASE + 6);
    reset = false;
    uint64_t ids[8];
    assert_int_equal (s_read_all (hub, &cursor, NULL, ids, 8, &reset), 4);
    assert_false (reset);
    assert_int_equal (ids[0], BASE + 7);
    assert_int_equal (ids[3], BASE + 10);
    /* The reader just before the oldest held event needs no reset. */
    cursor = BASE + 6;
    assert_int_equal (s_read_all (hub, &cursor, NULL, ids, 8, &reset), 4);
    assert_false (reset);
    shoal_events_destroy (&hub);
}

static void
test_an_id_of_another_run_gets_a_reset (void **state)
{
    shoal_events_t *hub = shoal_events_new (8, BASE);
    s_publish (hub, "a", 2);
    bool reset = false;
    shoal_event_t batch[4];
    uint64_t cursor = BASE + 50;         /* ahead of this run */
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 4, 0,
                                         &reset), 0);
    assert_true (reset);
    assert_int_equal (cursor, BASE);
    reset = false;
    cursor = 3;                          /* an earlier run's id */
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 4, 0,
                                         &reset), 0);
    assert_true (reset);
    assert_int_equal (cursor, BASE);
    shoal_events_destroy (&hub);
}

static void
test_an_empty_hub_resumes_from_its_base_without_reset (void **state)
{
    shoal_events_t *hub = shoal_events_new (8, BASE);
    bool reset = false;
    shoal_event_t batch[4];
    uint64_t cursor = BASE;
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 4, 0,
                                         &reset), 0);
    assert_false (reset);
    assert_int_equal (cursor, BASE);
    shoal_events_destroy (&hub);
}

static void
test_copies_outlive_the_ring (void **state)
{
    shoal_events_t *hub = shoal_events_new (2, BASE);
    s_publish (hub, "a", 2);
    uint64_t cursor = BASE;
    bool reset = false;
    shoal_event_t batch[2];
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 2, 0,
                                         &reset), 2);
    s_publish (hub, "a", 2);             /* overwrites both slots */
    assert_string_equal (batch[0].text, "{\"n\":0}");
    assert_string_equal (batch[1].text, "{\"n\":1}");
    shoal_event_clear (&batch[0]);
    shoal_event_clear (&batch[1]);
    assert_null (batch[0].text);
    shoal_events_destroy (&hub);
}

static void *
s_blocked_reader (void *arg)
{
    shoal_events_t *hub = arg;
    uint64_t cursor = shoal_events_last (hub);
    bool reset = false;
    shoal_event_t batch[1];
    intptr_t rc = shoal_events_read (hub, &cursor, NULL, batch, 1, 60000,
                                     &reset);
    return (void *) rc;
}

static void
test_close_wakes_a_waiting_reader (void **state)
{
    shoal_events_t *hub = shoal_events_new (8, BASE);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_blocked_reader, hub),
                      0);
    shoal_events_close (hub);
    void *rc;
    pthread_join (thread, &rc);
    assert_int_equal ((intptr_t) rc, -1);
    uint64_t cursor = BASE;
    bool reset = false;
    shoal_event_t batch[1];
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, batch, 1, 0,
                                         &reset), -1);
    shoal_events_destroy (&hub);
}

static void
test_task_event_renders_the_rest_view (void **state)
{
    shoal_event_t event = {
        .id = 7,
        .type = SHOAL_EVENT_TASK,
        .job = "0123456789abcdef",
        .task = {
            .stage = "Download", .task_class = "fetch", .state = "failed",
            .id = 3, .stage_index = 1, .index = -1, .attempts = 2,
            .failures = 2, .exit_code = 1, .signal = 0,
            .started_at = 1000, .finished_at = 2500, .duration_ms = 1400,
        },
    };
    event.task.worker_long = strdup ("a-worker-name-longer-than-the-inline-room");
    event.task.error = strdup ("exit code 1");
    char *data = shoal_event_data (&event);
    assert_non_null (data);
    json_t *task = json_loads (data, 0, NULL);
    assert_non_null (task);
    assert_int_equal (json_integer_value (json_object_get (task, "id")), 3);
    assert_string_equal (json_string_value (json_object_get (task, "job")),
                         "0123456789abcdef");
    assert_string_equal (json_string_value (json_object_get (task, "kind")),
                         "spawn");
    assert_true (json_is_null (json_object_get (task, "index")));
    assert_true (json_is_null (json_object_get (task, "signal")));
    assert_int_equal (json_integer_value (json_object_get (task,
                                                           "exit_code")), 1);
    assert_string_equal (json_string_value (json_object_get (task, "worker")),
                         "a-worker-name-longer-than-the-inline-room");
    assert_string_equal (json_string_value (json_object_get (task,
                                                             "started_at")),
                         "1970-01-01T00:00:01.000Z");
    assert_int_equal (json_integer_value (json_object_get (task,
                                                           "duration_ms")),
                      1400);
    assert_null (json_object_get (task, "params"));
    json_decref (task);
    free (data);
    shoal_event_clear (&event);

    /* A task not started: no worker, no times, no exit code. */
    shoal_event_t pending = { .type = SHOAL_EVENT_TASK, .job = "j",
                              .task = { .stage = "s", .task_class = "c",
                                        .state = "pending", .exit_code = -1 } };
    data = shoal_event_data (&pending);
    task = json_loads (data, 0, NULL);
    assert_true (json_is_null (json_object_get (task, "worker")));
    assert_true (json_is_null (json_object_get (task, "exit_code")));
    assert_true (json_is_null (json_object_get (task, "started_at")));
    assert_true (json_is_null (json_object_get (task, "duration_ms")));
    assert_int_equal (json_integer_value (json_object_get (task, "index")), 0);
    json_decref (task);
    free (data);
}

static void
test_type_names (void **state)
{
    assert_string_equal (shoal_event_type_name (SHOAL_EVENT_JOB), "job");
    assert_string_equal (shoal_event_type_name (SHOAL_EVENT_STAGE), "stage");
    assert_string_equal (shoal_event_type_name (SHOAL_EVENT_TASK), "task");
    assert_string_equal (shoal_event_type_name (SHOAL_EVENT_WORKER),
                         "worker");
    assert_string_equal (shoal_event_type_name (SHOAL_EVENT_RESET), "reset");
}

static void
test_many_chunks_wrap_and_free (void **state)
{
    /* Past one chunk (1,024 records) and around the ring twice. */
    shoal_events_t *hub = shoal_events_new (1500, 0);
    for (int i = 0; i < 60; i++)
        s_publish (hub, i % 2 ? "a" : "b", 50);
    assert_int_equal (shoal_events_last (hub), 3000);
    uint64_t cursor = 1500;
    uint64_t ids[2];
    bool reset = false;
    assert_int_equal (s_read_all (hub, &cursor, NULL, ids, 2, &reset), 1500);
    assert_false (reset);
    assert_int_equal (ids[0], 1501);
    shoal_events_destroy (&hub);
}

/* ---- records from a real scheduler render as the REST views ---------- */

static const char *s_yaml =
    "tasks:\n"
    "  work:\n"
    "    input:\n"
    "      token: {source: parameter}\n"
    "    exec_command: /bin/true\n"
    "  fan:\n"
    "    exec_command: /bin/true\n"
    "jobs:\n"
    "  fanout:\n"
    "    input:\n"
    "      token: {source: http-header, key: Authorization}\n"
    "      who: {source: parameter, default: \"a \\\"quoted\\\" name\"}\n"
    "    stages:\n"
    "      - {name: prepare, task_class: work}\n"
    "      - {name: spread, task_class: work, spawn_task: fan, "
    "job_failed_on_error: false}\n";

/*  The text an event renders must be the REST view's, byte for byte.    */
static void
s_assert_job_renders_as_rest (const shoal_job_t *job)
{
    shoal_event_t event = { 0 };
    shoal_event_set_job (&event, job, NULL);
    char *data = shoal_event_data (&event);
    json_t *view = shoal_job_to_json (job);
    char *want = json_dumps (view, JSON_COMPACT);
    assert_string_equal (data, want);
    assert_int_equal (event.final, shoal_job_state (job) >= SHOAL_JOB_SUCCEEDED);
    /* The same with params handed in (the loop's cache). */
    char *params = shoal_event_job_params (job);
    shoal_event_t cached = { 0 };
    shoal_event_set_job (&cached, job, params);
    char *again = shoal_event_data (&cached);
    assert_string_equal (again, want);
    /* And after a reader's copy. */
    shoal_events_t *hub = shoal_events_new (4, 0);
    shoal_events_publish (hub, &cached, 1);
    uint64_t cursor = 0;
    bool reset = false;
    shoal_event_t copy;
    assert_int_equal (shoal_events_read (hub, &cursor, NULL, &copy, 1, 0,
                                         &reset), 1);
    char *copied = shoal_event_data (&copy);
    assert_string_equal (copied, want);
    /* Each stage: {"job", "index"} and the job view's stage. */
    json_t *stages = json_object_get (view, "stages");
    for (size_t i = 0; i < json_array_size (stages); i++) {
        shoal_event_t stage = { 0 };
        shoal_event_set_stage (&stage, job, (uint32_t) i);
        char *stage_data = shoal_event_data (&stage);
        json_t *expected = json_pack ("{s:s, s:I}", "job", shoal_job_id (job),
                                      "index", (json_int_t) i);
        json_object_update (expected, json_array_get (stages, i));
        char *stage_want = json_dumps (expected, JSON_COMPACT);
        assert_string_equal (stage_data, stage_want);
        free (stage_want);
        json_decref (expected);
        free (stage_data);
        shoal_event_clear (&stage);
    }
    /* Each task: the view without params, plus "job". */
    for (uint32_t t = 0; t < shoal_job_task_count (job); t++) {
        const shoal_task_t *task = shoal_job_task (job, t);
        shoal_event_t te = { 0 };
        shoal_event_set_task (&te, task);
        char *task_data = shoal_event_data (&te);
        json_t *expected = shoal_task_to_json (task);
        json_object_del (expected, "params");
        json_object_set_new (expected, "job", json_string (shoal_job_id (job)));
        char *task_want = json_dumps (expected, JSON_COMPACT);
        assert_string_equal (task_data, task_want);
        free (task_want);
        json_decref (expected);
        free (task_data);
        shoal_event_clear (&te);
    }
    free (copied);
    shoal_event_clear (&copy);
    shoal_events_destroy (&hub);
    free (again);
    free (params);
    free (want);
    json_decref (view);
    free (data);
    shoal_event_clear (&event);
}

/*  Dispatched attempts not yet answered, oldest first.                   */
static shoal_action_t s_dispatched[16];
static size_t s_dispatched_count;

/*  Answers the oldest dispatched attempt with exit `code` and `error`.   */
static void
s_finish (shoal_scheduler_t *sched, int64_t now, int code, const char *error,
          json_t *spawn)
{
    shoal_action_t action;
    while (shoal_scheduler_next_action (sched, &action))
        if (action.type == SHOAL_ACTION_DISPATCH) {
            assert_true (s_dispatched_count < 16);
            s_dispatched[s_dispatched_count++] = action;
        }
    assert_true (s_dispatched_count > 0);
    action = s_dispatched[0];
    memmove (s_dispatched, s_dispatched + 1,
             --s_dispatched_count * sizeof s_dispatched[0]);
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .exit_code = code, .error = error,
                              .duration_ms = 12, .spawn = spawn };
    shoal_error_t err;
    assert_int_equal (shoal_scheduler_result (
                          sched, "w1", shoal_job_id (action.job),
                          shoal_task_id (action.task), action.attempt,
                          &result, now, &err), 0);
}

static void
test_records_render_exactly_as_the_rest_views (void **state)
{
    shoal_error_t err = { 0 };
    shoal_defs_t *defs = shoal_defs_parse (s_yaml, strlen (s_yaml), "t.yaml",
                                           &err);
    assert_non_null (defs);
    shoal_scheduler_t *sched = shoal_scheduler_new (defs);
    json_t *params = json_pack ("{s:s, s:s}", "token", "secret-value",
                                "who", "a \"quoted\" name");
    shoal_job_t *job = shoal_scheduler_submit (
        sched, "0123456789abcdef", shoal_defs_job_class (defs, "fanout"),
        params, true, 1000, &err);
    assert_non_null (job);
    s_assert_job_renders_as_rest (job);          /* pending, no worker */
    shoal_scheduler_worker_hello (sched, "w1", "a-worker-with-a-long-name-1",
                                  "h", 2, 0, 1000);
    s_assert_job_renders_as_rest (job);          /* running */
    s_finish (sched, 1500, 0, NULL, NULL);
    json_t *spawn = json_pack ("[{s:s}, {s:s}]", "k", "1", "k", "2");
    s_finish (sched, 1600, 0, NULL, spawn);      /* the spawn task */
    json_decref (spawn);
    s_assert_job_renders_as_rest (job);          /* fanned out */
    s_finish (sched, 1700, 1, "failed with secret-value inside", NULL);
    s_finish (sched, 1800, 0, NULL, NULL);
    s_assert_job_renders_as_rest (job);          /* ended */
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
    shoal_scheduler_destroy (&sched);
    shoal_defs_destroy (&defs);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_ids_start_after_base_and_are_contiguous),
        cmocka_unit_test (test_resume_replays_exactly_the_missed_events),
        cmocka_unit_test (test_filter_keeps_one_job_and_moves_past_the_rest),
        cmocka_unit_test (
            test_ring_drops_the_oldest_and_a_late_reader_gets_a_reset),
        cmocka_unit_test (test_an_id_of_another_run_gets_a_reset),
        cmocka_unit_test (test_an_empty_hub_resumes_from_its_base_without_reset),
        cmocka_unit_test (test_copies_outlive_the_ring),
        cmocka_unit_test (test_close_wakes_a_waiting_reader),
        cmocka_unit_test (test_task_event_renders_the_rest_view),
        cmocka_unit_test (test_type_names),
        cmocka_unit_test (test_many_chunks_wrap_and_free),
        cmocka_unit_test (test_records_render_exactly_as_the_rest_views),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
