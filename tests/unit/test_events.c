/*  test_events.c: the event hub's ring, numbering, replay and reset.

    No sockets: the hub is driven by hand, readers call it directly, and
    one test wakes a blocked reader from a second thread.                 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "events.h"

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
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
