/*  test_scheduler.c: the job model, driven without sockets or clocks.

    Each test builds definitions from inline YAML, plays events into the
    scheduler (time passed in by hand) and checks the actions that come
    out and the state it reports.                                         */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <string.h>

#include "shoal/defs.h"
#include "shoal/protocol.h"
#include "shoal/scheduler.h"

static const char *s_yaml =
    "tasks:\n"
    "  work:\n"
    "    input:\n"
    "      item: {source: parameter, default: none}\n"
    "      token: {source: parameter}\n"
    "    exec_command: /bin/true\n"
    "    exec_args: ['{item}']\n"
    "  fan:\n"
    "    exec_command: /bin/true\n"
    "  flaky:\n"
    "    exec_command: /bin/false\n"
    "    timeout: 2.5\n"
    "    retries: 2\n"
    "jobs:\n"
    "  one:\n"
    "    input:\n"
    "      token: {source: http-header, key: Authorization}\n"
    "    stages:\n"
    "      - {name: only, task_class: work}\n"
    "  two:\n"
    "    stages:\n"
    "      - {name: first, task_class: work}\n"
    "      - {name: second, task_class: work}\n"
    "  fanout:\n"
    "    stages:\n"
    "      - {name: prepare, task_class: work}\n"
    "      - {name: spread, task_class: work, spawn_task: fan, "
    "job_failed_on_error: true}\n"
    "      - {name: finish, task_class: work}\n"
    "  flaky:\n"
    "    stages:\n"
    "      - {name: only, task_class: flaky}\n"
    "  tolerant:\n"
    "    stages:\n"
    "      - {name: spread, task_class: work, spawn_task: fan, "
    "job_failed_on_error: false}\n"
    "      - {name: after, task_class: work}\n";

typedef struct {
    shoal_defs_t *defs;
    shoal_scheduler_t *sched;
    shoal_action_t actions[4096];
    size_t count;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof *fx);
    shoal_error_t err = { 0 };
    fx->defs = shoal_defs_parse (s_yaml, strlen (s_yaml), "test.yaml", &err);
    if (!fx->defs)
        fail_msg ("definitions: %s", err.message);
    fx->sched = shoal_scheduler_new (fx->defs);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_destroy (&fx->sched);
    assert_null (fx->sched);
    shoal_defs_destroy (&fx->defs);
    free (fx);
    return 0;
}

/*  Takes every pending action into fx->actions (replacing the last batch). */
static size_t
s_drain (s_fixture_t *fx)
{
    fx->count = 0;
    while (fx->count < 4096
           && shoal_scheduler_next_action (fx->sched, &fx->actions[fx->count]))
        fx->count++;
    return fx->count;
}

static size_t
s_count_type (s_fixture_t *fx, shoal_action_type_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->count; i++)
        n += fx->actions[i].type == type;
    return n;
}

static shoal_action_t *
s_find (s_fixture_t *fx, shoal_action_type_t type, size_t nth)
{
    for (size_t i = 0; i < fx->count; i++)
        if (fx->actions[i].type == type && nth-- == 0)
            return &fx->actions[i];
    fail_msg ("no action of type %d number %zu in %zu actions", type, nth,
              fx->count);
    return NULL;
}

static shoal_job_t *
s_submit (s_fixture_t *fx, const char *id, const char *cls, bool start)
{
    json_t *params = json_pack ("{s:s}", "token", "secret-value");
    shoal_error_t err = { 0 };
    shoal_job_t *job = shoal_scheduler_submit (
        fx->sched, id, shoal_defs_job_class (fx->defs, cls), params, start,
        1000, &err);
    if (!job)
        fail_msg ("submit: %s", err.message);
    return job;
}

static int
s_exit (s_fixture_t *fx, const char *worker, shoal_action_t *action, int code,
        json_t *spawn)
{
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .exit_code = code, .spawn = spawn };
    return shoal_scheduler_result (fx->sched, worker,
                                   shoal_job_id (action->job),
                                   shoal_task_id (action->task),
                                   action->attempt, &result, 2000, NULL);
}

static const char *
s_stage_state (shoal_job_t *job, size_t stage)
{
    json_t *view = shoal_job_to_json (job);
    static char state[32];
    snprintf (state, sizeof state, "%s",
              json_string_value (json_object_get (
                  json_array_get (json_object_get (view, "stages"), stage),
                  "state")));
    json_decref (view);
    return state;
}

/* ---- tests ----------------------------------------------------------- */

static void
test_job_without_workers_waits (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    assert_int_equal (s_drain (fx), 0);
    assert_string_equal (shoal_job_state_name (shoal_job_state (job)),
                         "running");
}

static void
test_single_stage_job_succeeds (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    assert_int_equal (s_drain (fx), 1);
    shoal_action_t dispatch = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_int_equal (dispatch.attempt, 1);
    assert_int_equal (s_exit (fx, "w1", &dispatch, 0, NULL), 0);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_JOB_ENDED), 1);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
    assert_string_equal (s_stage_state (job, 0), "succeeded");
}

static void
test_created_job_waits_for_start (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    shoal_job_t *job = s_submit (fx, "j1", "one", false);
    assert_int_equal (s_drain (fx), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_CREATED);
    assert_int_equal (shoal_scheduler_start (fx->sched, "j1", 1500, NULL), 0);
    assert_int_equal (s_drain (fx), 1);
    assert_int_equal (shoal_scheduler_start (fx->sched, "j1", 1500, NULL),
                      SHOAL_ESTATE);
    assert_int_equal (shoal_scheduler_start (fx->sched, "nope", 1500, NULL),
                      SHOAL_ENOTFOUND);
}

static void
test_stages_run_in_order (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "two", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    assert_int_equal (s_drain (fx), 1);
    shoal_action_t first = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_int_equal (shoal_task_stage (first.task), 0);
    assert_string_equal (s_stage_state (job, 1), "pending");
    s_exit (fx, "w1", &first, 0, NULL);
    assert_int_equal (s_drain (fx), 1);
    shoal_action_t second = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_int_equal (shoal_task_stage (second.task), 1);
    assert_string_equal (s_stage_state (job, 0), "succeeded");
    assert_string_equal (s_stage_state (job, 1), "running");
}

/*  Runs the "prepare" stage of a fanout job and returns its spawn task.  */
static shoal_action_t
s_reach_spawn (s_fixture_t *fx, const char *job_id)
{
    s_drain (fx);
    shoal_action_t prepare = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &prepare, 0, NULL);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_true (shoal_task_is_spawn (spawn.task));
    return spawn;
}

static void
test_spawn_fans_stage_out_one_task_per_entry (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    json_t *list = json_pack ("[{s:s}, {s:i}, {s:s, s:s}]", "item", "a",
                              "item", 2, "item", "c", "token", "override");
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    assert_int_equal (s_drain (fx), 3);
    const char *want[] = { "a", "2", "c" };
    for (size_t i = 0; i < 3; i++) {
        shoal_task_t *task = s_find (fx, SHOAL_ACTION_DISPATCH, i)->task;
        json_t *params = shoal_task_params (task);
        assert_string_equal (json_string_value (json_object_get (params,
                                                                 "item")),
                             want[i]);
        json_decref (params);
    }
    json_t *body = shoal_task_wire_body (s_find (fx, SHOAL_ACTION_DISPATCH,
                                                 2)->task);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (body, "params"), "token")),
                         "override");
    assert_string_equal (json_string_value (json_object_get (body, "kind")),
                         "task");
    json_decref (body);
}

/*  The TASK body written directly as text says what the jansson-built
    body says, for every kind of spawn entry value, and the list may come
    as JSON text (as the controller receives it).                          */
static void
test_wire_text_matches_wire_body (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 16, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    const char *list = "[{\"item\": \"a \\\"q\\\" \\u00e9\\n\"}, {\"item\": -7}, {\"item\": -0},"
                       " {\"item\": 2.5e3}, {\"item\": true, \"x\": false},"
                       " {\"token\": \"override\"}, {}, {\"\\u0069tem\": \"esc\"},"
                       " {\"item\": 12345678901234567890123456789012345678901234"
                       "5678901234567890.5}]";
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .spawn_text = list,
                              .spawn_size = strlen (list) };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1",
                                              shoal_task_id (spawn.task),
                                              spawn.attempt, &result, 1000,
                                              NULL), 0);
    assert_int_equal (s_drain (fx), 9);
    char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i <= 9; i++) {
        shoal_task_t *task = i < 9 ? s_find (fx, SHOAL_ACTION_DISPATCH,
                                             i)->task
                                   : spawn.task;
        json_t *want = shoal_task_wire_body (task);
        size_t size = shoal_task_wire_text (task, &buf, &cap);
        assert_true (size > 0);
        json_error_t json_err;
        json_t *got = json_loadb (buf, size, JSON_REJECT_DUPLICATES,
                                  &json_err);
        if (!got)
            fail_msg ("task %zu: not JSON: %s: %.*s", i, json_err.text,
                      (int) size, buf);
        if (!json_equal (got, want)) {
            char *a = json_dumps (want, JSON_SORT_KEYS);
            char *b = json_dumps (got, JSON_SORT_KEYS);
            fail_msg ("task %zu:\n  body %s\n  text %s", i, a, b);
        }
        json_decref (got);
        json_decref (want);
    }
    free (buf);
}

/*  A spawn list over the scheduler's bound fails the spawn task, naming
    the bound and the option that sets it, and makes no task.            */
static void
test_spawn_list_over_the_bound_fails_the_spawn_task (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_set_max_spawn_entries (fx->sched, 2);
    shoal_job_t *job = s_submit (fx, "j1", "tolerant", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    const char *list = "[{}, {}, {}]";
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .spawn_text = list,
                              .spawn_size = strlen (list) };
    shoal_scheduler_result (fx->sched, "w1", "j1", shoal_task_id (spawn.task),
                            spawn.attempt, &result, 1000, NULL);
    assert_int_equal (shoal_task_state (spawn.task), SHOAL_TASK_FAILED);
    json_t *view = shoal_task_to_json (spawn.task);
    const char *error = json_string_value (json_object_get (view, "error"));
    assert_non_null (strstr (error, "over the limit of 2"));
    assert_non_null (strstr (error, "--max-spawn-entries"));
    json_decref (view);
    /* The spawn task, then the next stage's task: nothing fanned out. */
    assert_int_equal (shoal_job_task_count (job), 2);
}

static void
test_empty_spawn_list_completes_stage (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    json_t *list = json_array ();
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    assert_int_equal (s_drain (fx), 1);
    assert_int_equal (shoal_task_stage (s_find (fx, SHOAL_ACTION_DISPATCH,
                                                0)->task), 2);
    assert_string_equal (s_stage_state (job, 1), "succeeded");
}

static void
test_fail_policy_true_fails_job_and_cancels_the_rest (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    json_t *list = json_pack ("[{s:s}, {s:s}, {s:s}, {s:s}]", "item", "a",
                              "item", "b", "item", "c", "item", "d");
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    assert_int_equal (s_drain (fx), 2);     /* two slots: two running */
    shoal_action_t failing = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_action_t other = *s_find (fx, SHOAL_ACTION_DISPATCH, 1);
    s_exit (fx, "w1", &failing, 3, NULL);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 0);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_CANCEL), 1);
    assert_ptr_equal (s_find (fx, SHOAL_ACTION_CANCEL, 0)->task, other.task);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_JOB_ENDED), 1);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    assert_string_equal (s_stage_state (job, 1), "failed");
    assert_string_equal (s_stage_state (job, 2), "pending");
    json_t *view = shoal_job_to_json (job);
    assert_non_null (strstr (json_string_value (json_object_get (view,
                                                                 "error")),
                             "exited with code 3"));
    json_t *counts = json_object_get (
        json_array_get (json_object_get (view, "stages"), 1), "tasks");
    assert_int_equal (json_integer_value (json_object_get (counts, "failed")),
                      1);
    assert_int_equal (json_integer_value (json_object_get (counts,
                                                           "canceled")), 3);
    json_decref (view);
    /* The canceled attempt's result still returns its slot. */
    shoal_result_t canceled = { .status = SHOAL_RESULT_CANCELED };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1",
                                              shoal_task_id (other.task),
                                              other.attempt, &canceled, 3000,
                                              NULL), 0);
    assert_int_equal (shoal_task_state (other.task), SHOAL_TASK_CANCELED);
}

static void
test_fail_policy_false_records_failures_and_goes_on (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "tolerant", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    json_t *list = json_pack ("[{s:s}, {s:s}, {s:s}]", "item", "a", "item",
                              "b", "item", "c");
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    assert_int_equal (s_drain (fx), 3);
    shoal_action_t tasks[3];
    for (size_t i = 0; i < 3; i++)
        tasks[i] = *s_find (fx, SHOAL_ACTION_DISPATCH, i);
    s_exit (fx, "w1", &tasks[0], 1, NULL);
    s_exit (fx, "w1", &tasks[1], 0, NULL);
    assert_int_equal (s_drain (fx), 0);
    s_exit (fx, "w1", &tasks[2], 2, NULL);
    assert_int_equal (s_drain (fx), 1);     /* the next stage starts */
    assert_string_equal (s_stage_state (job, 0), "failed");
    shoal_action_t after = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &after, 0, NULL);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
}

static void
test_spawn_failure_fails_its_stage (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    s_exit (fx, "w1", &spawn, 1, NULL);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    assert_string_equal (s_stage_state (job, 1), "failed");
    json_t *view = shoal_job_to_json (job);
    assert_non_null (strstr (json_string_value (json_object_get (view,
                                                                 "error")),
                             "spawn task"));
    json_decref (view);
}

static void
test_invalid_spawn_list_fails_spawn_task (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    json_t *list = json_pack ("[{s:{s:i}}]", "item", "nested", 1);
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    assert_int_equal (shoal_task_state (spawn.task), SHOAL_TASK_FAILED);
}

static void
test_credit_never_exceeds_slots (void **state)
{
    s_fixture_t *fx = *state;
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf (id, sizeof id, "j%d", i);
        s_submit (fx, id, "one", true);
    }
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 3, 0, 1000);
    assert_int_equal (s_drain (fx), 3);
    shoal_action_t done = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &done, 0, NULL);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
}

static void
test_queue_adds_to_a_workers_credit (void **state)
{
    s_fixture_t *fx = *state;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf (id, sizeof id, "j%d", i);
        s_submit (fx, id, "one", true);
    }
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    assert_int_equal (s_drain (fx), 2);
    shoal_scheduler_worker_queue (fx->sched, "w1", 2);
    assert_int_equal (s_drain (fx), 2);
    json_t *view = shoal_scheduler_workers_to_json (fx->sched);
    json_t *worker = json_array_get (json_object_get (view, "workers"), 0);
    assert_int_equal (json_integer_value (json_object_get (worker, "slots")),
                      2);
    assert_int_equal (json_integer_value (json_object_get (worker, "queue")),
                      2);
    assert_int_equal (json_integer_value (json_object_get (worker, "busy")),
                      4);
    json_decref (view);
}

static void
test_tasks_spread_over_workers (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 4, 0, 1000);
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf (id, sizeof id, "j%d", i);
        s_submit (fx, id, "one", true);
    }
    s_drain (fx);
    size_t on_w1 = 0;
    for (size_t i = 0; i < fx->count; i++)
        on_w1 += strcmp (shoal_worker_key (fx->actions[i].worker), "w1") == 0;
    assert_int_equal (fx->count, 4);
    assert_int_equal (on_w1, 2);
}

static void
test_round_robin_between_jobs (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_submit (fx, "big", "tolerant", true);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    json_t *list = json_array ();
    for (int i = 0; i < 50; i++)
        json_array_append_new (list, json_pack ("{s:i}", "item", i));
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    s_drain (fx);                           /* big's first task runs */
    shoal_action_t running = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_submit (fx, "small", "one", true);
    /* Within one round of the ring the small job gets the slot, not after
       the big job's 49 other tasks. */
    bool small_ran = false;
    for (int round = 0; round < 2 && !small_ran; round++) {
        s_exit (fx, "w1", &running, 0, NULL);
        s_drain (fx);
        running = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
        small_ran = strcmp (shoal_job_id (running.job), "small") == 0;
    }
    assert_true (small_ran);
}

static void
test_lost_worker_task_runs_again_and_old_attempt_is_fenced (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t first = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 1, 0, 1000);
    shoal_scheduler_worker_seen (fx->sched, "w2", 4500);
    shoal_scheduler_tick (fx->sched, 4500); /* w1 silent for 3.5 s */
    s_drain (fx);
    shoal_action_t second = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_ptr_equal (second.task, first.task);
    assert_int_equal (second.attempt, 2);
    assert_string_equal (shoal_worker_key (second.worker), "w2");
    /* The old worker comes back: it must say hello, its result is stale. */
    assert_int_equal (s_exit (fx, "w1", &first, 0, NULL), SHOAL_ENOTFOUND);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 4600);
    assert_int_equal (s_exit (fx, "w1", &first, 0, NULL), SHOAL_ESTATE);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_RUNNING);
    assert_int_equal (s_exit (fx, "w2", &second, 0, NULL), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
}

static void
test_task_fails_after_three_lost_workers (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    int64_t now = 1000;
    for (int i = 0; i < SHOAL_MAX_WORKER_LOSSES; i++) {
        char key[8];
        snprintf (key, sizeof key, "w%d", i);
        shoal_scheduler_worker_hello (fx->sched, key, key, "h", 1, 0, now);
        s_drain (fx);
        assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
        now += 4000;
        shoal_scheduler_tick (fx->sched, now);
    }
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    json_t *tasks = shoal_job_tasks_to_json (job);
    json_t *task = json_array_get (json_object_get (tasks, "tasks"), 0);
    assert_non_null (strstr (json_string_value (json_object_get (task,
                                                                 "error")),
                             "worker lost"));
    assert_int_equal (json_integer_value (json_object_get (task, "attempts")),
                      3);
    json_decref (tasks);
}

static void
test_task_that_could_not_be_sent_counts_no_loss (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf (key, sizeof key, "d%d", i);
        shoal_scheduler_worker_hello (fx->sched, key, key, "h", 1, 0, 1000);
        s_drain (fx);
        shoal_action_t sent = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
        shoal_scheduler_unsent (fx->sched, sent.task, sent.attempt, 1000);
        shoal_scheduler_worker_gone (fx->sched, key, true, 1000);
        s_drain (fx);
        assert_int_equal (s_count_type (fx, SHOAL_ACTION_WORKER_LOST), 1);
    }
    shoal_task_t *task = shoal_job_task (job, 0);
    assert_int_equal (shoal_task_state (task), SHOAL_TASK_PENDING);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_RUNNING);
    shoal_scheduler_worker_hello (fx->sched, "live", "live", "h", 1, 0, 1000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
}

static void
test_reconnected_worker_process_keeps_its_tasks (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "c1", "w1", "h", 1, 0, 1000);
    assert_null (shoal_scheduler_worker_instance (fx->sched, "c1", "proc-A"));
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    /* Another process cannot take it. */
    shoal_scheduler_worker_hello (fx->sched, "x1", "x", "h", 1, 1, 1100);
    assert_null (shoal_scheduler_worker_instance (fx->sched, "x1", "proc-X"));
    assert_false (shoal_scheduler_adopt (fx->sched, "x1", "j1", 0,
                                         run.attempt, 1100));
    /* The same process on a new connection does. */
    shoal_scheduler_worker_hello (fx->sched, "c2", "w1", "h", 1, 1, 1200);
    const char *old = shoal_scheduler_worker_instance (fx->sched, "c2",
                                                       "proc-A");
    assert_non_null (old);
    assert_string_equal (old, "c1");
    assert_true (shoal_scheduler_adopt (fx->sched, "c2", "j1", 0, run.attempt,
                                        1200));
    shoal_scheduler_worker_gone (fx->sched, "c1", false, 1200);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 0);
    shoal_result_t ok = { .status = SHOAL_RESULT_EXITED };
    assert_int_equal (shoal_scheduler_result (fx->sched, "c2", "j1", 0,
                                              run.attempt, &ok, 1300, NULL),
                      0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
    assert_int_equal (shoal_task_attempt (shoal_job_task (job, 0)), 1);
}

static void
test_bye_requeues_without_counting_a_loss (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "one", true);
    for (int i = 0; i < 5; i++) {
        shoal_scheduler_worker_hello (fx->sched, "w", "w", "h", 1, 0, 1000);
        s_drain (fx);
        assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
        shoal_scheduler_worker_gone (fx->sched, "w", false, 1000);
    }
    shoal_job_t *job = shoal_scheduler_job (fx->sched, "j1");
    assert_int_equal (shoal_task_state (shoal_job_task (job, 0)),
                      SHOAL_TASK_PENDING);
}

static void
test_slots_running_at_hello_are_busy_until_their_results_come (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "one", true);
    s_submit (fx, "j2", "one", true);
    /* Two slots, one still taken by a task from before a reconnect. */
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 1, 1000);
    assert_int_equal (s_drain (fx), 1);
    shoal_result_t old = { .status = SHOAL_RESULT_EXITED };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "gone", 0, 1,
                                              &old, 1500, NULL),
                      SHOAL_ENOTFOUND);
    assert_int_equal (s_drain (fx), 1);     /* the freed slot is used */
}

static void
test_refused_task_runs_elsewhere_without_failing (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t first = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 1, 0, 1000);
    shoal_result_t refused = { .status = SHOAL_RESULT_REFUSED,
                               .error = "no free slot" };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1", 0,
                                              first.attempt, &refused, 1100,
                                              NULL), 0);
    s_drain (fx);
    shoal_action_t second = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_string_equal (shoal_worker_key (second.worker), "w2");
    assert_int_equal (second.attempt, 2);
    assert_int_equal (s_exit (fx, "w2", &second, 0, NULL), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
}

static void
test_cancel_stops_running_and_pending_tasks (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    json_t *list = json_pack ("[{s:s}, {s:s}, {s:s}]", "item", "a", "item",
                              "b", "item", "c");
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    assert_int_equal (s_drain (fx), 2);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 1500, NULL), 0);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_CANCEL), 2);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 0);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_JOB_ENDED), 1);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_CANCELED);
    json_t *view = shoal_job_to_json (job);
    json_t *counts = json_object_get (
        json_array_get (json_object_get (view, "stages"), 1), "tasks");
    assert_int_equal (json_integer_value (json_object_get (counts,
                                                           "canceled")), 3);
    json_decref (view);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 1500, NULL),
                      SHOAL_ESTATE);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "nope", 1500, NULL),
                      SHOAL_ENOTFOUND);
}

static void
test_cancel_of_created_job_never_runs_it (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", false);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 2, 0, 1000);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 1500, NULL), 0);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_CANCELED);
    assert_int_equal (shoal_scheduler_start (fx->sched, "j1", 1500, NULL),
                      SHOAL_ESTATE);
}

static void
test_retry_runs_the_failed_stage_again_and_keeps_earlier_ones (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    assert_int_equal (shoal_scheduler_retry (fx->sched, "j1", 1100, NULL),
                      SHOAL_ESTATE);
    shoal_action_t spawn = s_reach_spawn (fx, "j1");
    s_exit (fx, "w1", &spawn, 1, NULL);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    size_t tasks_before = shoal_job_task_count (job);
    assert_int_equal (shoal_scheduler_retry (fx->sched, "j1", 3000, NULL), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_RUNNING);
    assert_string_equal (s_stage_state (job, 0), "succeeded");
    assert_string_equal (s_stage_state (job, 1), "running");
    assert_int_equal (s_drain (fx), 1);
    shoal_action_t again = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_true (shoal_task_is_spawn (again.task));
    assert_int_equal (shoal_task_id (again.task), tasks_before);
    json_t *list = json_pack ("[{s:s}]", "item", "x");
    s_exit (fx, "w1", &again, 0, list);
    json_decref (list);
    s_drain (fx);
    shoal_action_t item = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &item, 0, NULL);
    s_drain (fx);
    shoal_action_t last = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &last, 0, NULL);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
    json_t *view = shoal_job_to_json (job);
    assert_true (json_is_null (json_object_get (view, "error")));
    assert_int_equal (json_integer_value (json_object_get (view, "retries")),
                      1);
    json_t *counts = json_object_get (
        json_array_get (json_object_get (view, "stages"), 1), "tasks");
    assert_int_equal (json_integer_value (json_object_get (counts, "total")),
                      2);
    json_decref (view);
}

static void
test_draining_worker_gets_no_new_task (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    s_submit (fx, "j1", "one", true);
    s_drain (fx);
    shoal_action_t running = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_scheduler_worker_drain (fx->sched, "w1");
    s_submit (fx, "j2", "one", true);
    assert_int_equal (s_drain (fx), 0);
    /* What it ran still counts. */
    assert_int_equal (s_exit (fx, "w1", &running, 0, NULL), 0);
    assert_int_equal (s_drain (fx), 1);     /* JOB_ENDED, no dispatch */
    assert_int_equal (fx->actions[0].type, SHOAL_ACTION_JOB_ENDED);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 1, 0, 1000);
    s_drain (fx);
    assert_string_equal (shoal_worker_key (s_find (fx, SHOAL_ACTION_DISPATCH,
                                                   0)->worker), "w2");
}

static void
test_failed_task_is_retried_after_a_growing_back_off (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "flaky", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    json_t *body = shoal_task_wire_body (run.task);
    assert_int_equal (json_integer_value (json_object_get (body,
                                                           "timeout_ms")),
                      2500);
    json_decref (body);
    int64_t delays[] = { 1000, 2000 };
    for (int i = 0; i < 2; i++) {
        assert_int_equal (s_exit (fx, "w1", &run, 1, NULL), 0);   /* at 2000 */
        assert_int_equal (s_drain (fx), 0);
        assert_int_equal (shoal_job_state (job), SHOAL_JOB_RUNNING);
        assert_int_equal (shoal_scheduler_next_wake (fx->sched),
                          2000 + delays[i]);
        shoal_scheduler_wake (fx->sched, 2000 + delays[i] - 1);
        assert_int_equal (s_drain (fx), 0);
        shoal_scheduler_wake (fx->sched, 2000 + delays[i]);
        assert_int_equal (s_drain (fx), 1);
        run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
        assert_int_equal (run.attempt, (uint32_t) i + 2);
    }
    shoal_result_t timeout = { .status = SHOAL_RESULT_TIMEOUT,
                               .error = "timed out after 2500 ms" };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1", 0,
                                              run.attempt, &timeout, 9000,
                                              NULL), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
    assert_int_equal (shoal_scheduler_next_wake (fx->sched), -1);
    json_t *view = shoal_job_to_json (job);
    assert_non_null (strstr (json_string_value (json_object_get (view,
                                                                 "error")),
                             "timed out after 2500 ms"));
    json_decref (view);
}

static void
test_task_that_could_not_start_is_not_retried (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "flaky", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_result_t error = { .status = SHOAL_RESULT_ERROR,
                             .error = "cannot run '/bin/false'" };
    shoal_scheduler_result (fx->sched, "w1", "j1", 0, run.attempt, &error,
                            1500, NULL);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_FAILED);
}

static void
test_cancel_during_back_off_never_runs_the_task_again (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "flaky", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &run, 1, NULL);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 2100, NULL), 0);
    shoal_scheduler_wake (fx->sched, 10000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 0);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_CANCELED);
    assert_int_equal (shoal_task_state (shoal_job_task (job, 0)),
                      SHOAL_TASK_CANCELED);
}

static void
test_heartbeats_go_to_live_workers (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    /* The tick sends none while the period stays. */
    shoal_scheduler_tick (fx->sched, 2000);
    assert_int_equal (s_drain (fx), 0);
    shoal_scheduler_heartbeats (fx->sched, 2000);
    assert_int_equal (s_drain (fx), 1);
    assert_int_equal (fx->actions[0].type, SHOAL_ACTION_HEARTBEAT);
    /* One worker: the next look a period later. */
    assert_int_equal (shoal_scheduler_heartbeat_due (fx->sched), 3000);
}

/*  The controller's heartbeats are spread over the period: 1,000 workers
    at a 1 s period, looked at one step each 25 ms, get 25 HEARTBEATs a
    step once due, never all at once.                                     */
static void
test_heartbeats_are_spread_over_the_period (void **state)
{
    s_fixture_t *fx = *state;
    assert_int_equal (shoal_scheduler_heartbeat_due (fx->sched), -1);
    char key[16];
    for (int i = 0; i < 1000; i++) {
        snprintf (key, sizeof key, "w%d", i);
        shoal_scheduler_worker_hello (fx->sched, key, key, "h", 1, 0, 0);
    }
    shoal_scheduler_heartbeats (fx->sched, 0);
    s_drain (fx);
    int counts[1000] = { 0 };
    int64_t now = 0;
    for (int step = 0; step < 80; step++) {
        now = shoal_scheduler_heartbeat_due (fx->sched);
        assert_int_equal (now, (step + 1) * 25);
        shoal_scheduler_heartbeats (fx->sched, now);
        size_t sent = s_drain (fx);
        /* Each step looks at 25; those looked at before half a period
           since their WELCOME are skipped until their next turn. */
        assert_int_equal (sent, step < 19 ? 0 : 25);
        for (size_t i = 0; i < sent; i++) {
            assert_int_equal (fx->actions[i].type, SHOAL_ACTION_HEARTBEAT);
            counts[atoi (shoal_worker_key (fx->actions[i].worker) + 1)]++;
        }
    }
    /* In 2 s each worker heard from us once or twice. */
    for (int i = 0; i < 1000; i++)
        assert_true (counts[i] >= 1 && counts[i] <= 2);
    /* A step late by more than a period looks at each worker once. */
    shoal_scheduler_heartbeats (fx->sched, now + 5000);
    assert_int_equal (s_drain (fx), 1000);
}

/*  A worker that leaves leaves the ring; the others keep their turns.   */
static void
test_heartbeat_ring_survives_workers_leaving (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 0);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 1, 0, 0);
    shoal_scheduler_worker_hello (fx->sched, "w3", "w3", "h", 1, 0, 0);
    shoal_scheduler_heartbeats (fx->sched, 0);
    s_drain (fx);
    shoal_scheduler_worker_gone (fx->sched, "w1", false, 100);
    shoal_scheduler_worker_gone (fx->sched, "w3", false, 100);
    s_drain (fx);
    assert_int_equal (shoal_scheduler_heartbeat_due (fx->sched), 1000);
    shoal_scheduler_heartbeats (fx->sched, 1000);
    assert_int_equal (s_drain (fx), 1);
    assert_string_equal (shoal_worker_key (fx->actions[0].worker), "w2");
    shoal_scheduler_worker_gone (fx->sched, "w2", false, 1100);
    s_drain (fx);
    assert_int_equal (shoal_scheduler_heartbeat_due (fx->sched), -1);
    shoal_scheduler_worker_hello (fx->sched, "w4", "w4", "h", 1, 0, 1200);
    shoal_scheduler_heartbeats (fx->sched, 2200);
    assert_int_equal (s_drain (fx), 1);
    assert_string_equal (shoal_worker_key (fx->actions[0].worker), "w4");
}

/*  A worker sent a TASK in the last half period has heard from us: the
    tick sends it no HEARTBEAT, and an idle one gets its HEARTBEAT.       */
static void
test_a_busy_worker_gets_no_heartbeat (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 0);
    shoal_scheduler_worker_hello (fx->sched, "w2", "w2", "h", 1, 0, 0);
    shoal_scheduler_heartbeats (fx->sched, 0);
    shoal_scheduler_heartbeats (fx->sched, 1000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_HEARTBEAT), 2);
    s_submit (fx, "j1", "one", false);
    shoal_error_t err = { 0 };
    assert_int_equal (shoal_scheduler_start (fx->sched, "j1", 1800, &err),
                      0);
    s_drain (fx);
    const shoal_worker_t *busy = s_find (fx, SHOAL_ACTION_DISPATCH,
                                         0)->worker;
    /* The TASK went 200 ms ago, the idle one heard us 1 s ago. */
    shoal_scheduler_heartbeats (fx->sched, 2000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_HEARTBEAT), 1);
    assert_ptr_not_equal (s_find (fx, SHOAL_ACTION_HEARTBEAT, 0)->worker,
                          busy);
    /* 1.2 s since the TASK: both. */
    shoal_scheduler_heartbeats (fx->sched, 3000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_HEARTBEAT), 2);
}

/*  A new period reaches a busy worker all the same.                     */
static void
test_a_new_period_is_told_to_a_busy_worker (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 0);
    s_submit (fx, "j1", "one", false);
    shoal_error_t err = { 0 };
    assert_int_equal (shoal_scheduler_start (fx->sched, "j1", 1800, &err),
                      0);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
    shoal_scheduler_set_heartbeat_ms (fx->sched, 3000);
    shoal_scheduler_tick (fx->sched, 2000);
    s_drain (fx);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 3000);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_HEARTBEAT), 1);
    /* Told 1 s ago, under half of the 3 s period: nothing more. */
    shoal_scheduler_tick (fx->sched, 3000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_HEARTBEAT), 0);
}

/*  With a longer heartbeat period, a worker is lost after three of those
    periods of silence, not three seconds.                                */
static void
test_liveness_follows_the_heartbeat_period (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_set_heartbeat_ms (fx->sched, 3000);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    shoal_scheduler_tick (fx->sched, 7000);     /* silent 6 s: alive */
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_WORKER_LOST), 0);
    assert_non_null (shoal_scheduler_worker_seen (fx->sched, "w1", 7000));
    shoal_scheduler_tick (fx->sched, 16500);    /* silent 9.5 s: lost */
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_WORKER_LOST), 1);
    assert_null (shoal_scheduler_worker_seen (fx->sched, "w1", 16500));
}

/*  The period grows with the workers (0.4 ms each, whole seconds), is
    never below the minimum and stops at the cap unless the minimum is
    above it.                                                             */
static void
test_heartbeat_period_follows_the_workers (void **state)
{
    (void) state;
    assert_int_equal (shoal_heartbeat_period_ms (0, 1000), 1000);
    assert_int_equal (shoal_heartbeat_period_ms (1, 1000), 1000);
    assert_int_equal (shoal_heartbeat_period_ms (2500, 1000), 1000);
    assert_int_equal (shoal_heartbeat_period_ms (2501, 1000), 2000);
    assert_int_equal (shoal_heartbeat_period_ms (10000, 1000), 4000);
    /* 2 x 10,000 messages per 4 s: the budget, no more. */
    assert_true (2 * 10000 * 1000 / shoal_heartbeat_period_ms (10000, 1000)
                 <= SHOAL_HEARTBEAT_BUDGET);
    assert_int_equal (shoal_heartbeat_period_ms (10000, 5000), 5000);
    assert_int_equal (shoal_heartbeat_period_ms (25000, 1000),
                      SHOAL_HEARTBEAT_CAP_MS);
    assert_int_equal (shoal_heartbeat_period_ms (1000000, 1000),
                      SHOAL_HEARTBEAT_CAP_MS);
    assert_int_equal (shoal_heartbeat_period_ms (1000000, 20000), 20000);
}

/*  Adds workers w0..w(n-1) seen at `now`.                                */
static void
s_hello_many (s_fixture_t *fx, size_t from, size_t to, int64_t now)
{
    for (size_t i = from; i < to; i++) {
        char key[32];
        snprintf (key, sizeof key, "w%zu", i);
        shoal_scheduler_worker_hello (fx->sched, key, key, "h", 1, 0, now);
    }
}

/*  Drains every action; returns how many workers were lost.              */
static size_t
s_drain_lost (s_fixture_t *fx)
{
    size_t lost = 0;
    while (s_drain (fx))
        lost += s_count_type (fx, SHOAL_ACTION_WORKER_LOST);
    return lost;
}

/*  The scheduler picks the period at each tick from the workers connected
    then; a heartbeat tells it (the loop reads it), and liveness follows. */
static void
test_heartbeat_period_adapts_at_tick (void **state)
{
    s_fixture_t *fx = *state;
    s_hello_many (fx, 0, 10000, 1000);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 1000);
    shoal_scheduler_tick (fx->sched, 1500);
    assert_int_equal (s_drain_lost (fx), 0);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 4000);
    assert_int_equal (shoal_scheduler_loss_ms (fx->sched, 1500), 12000);
    /* Silent 11 s under a 4 s period: alive; 12.5 s: lost. */
    shoal_scheduler_tick (fx->sched, 12000);
    assert_int_equal (s_drain_lost (fx), 0);
    shoal_scheduler_tick (fx->sched, 13500);
    assert_int_equal (s_drain_lost (fx), 10000);
    /* No workers left: back to the minimum at the next tick. */
    shoal_scheduler_tick (fx->sched, 14000);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 1000);
}

/*  The minimum set by --heartbeat-ms holds however few the workers.      */
static void
test_heartbeat_period_never_below_the_minimum (void **state)
{
    s_fixture_t *fx = *state;
    shoal_scheduler_set_heartbeat_ms (fx->sched, 3000);
    s_hello_many (fx, 0, 10, 1000);
    shoal_scheduler_tick (fx->sched, 2000);
    s_drain_lost (fx);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 3000);
}

/*  When the period shrinks, a worker still on the old, longer period is
    not lost before it can have heard the new one: the old deadline holds
    for one old deadline more, then the new one applies.                 */
static void
test_no_worker_lost_while_the_period_shrinks (void **state)
{
    s_fixture_t *fx = *state;
    s_hello_many (fx, 0, 10000, 1000);
    shoal_scheduler_tick (fx->sched, 1000);     /* 4 s period from here */
    s_drain_lost (fx);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 4000);
    /* Everyone heartbeats at 5 s, then 9,000 leave at 8 s; w0 keeps its
       4 s period, so its next heartbeat is due at 9 s. */
    for (size_t i = 0; i < 10000; i++) {
        char key[32];
        snprintf (key, sizeof key, "w%zu", i);
        if (i >= 1000)
            shoal_scheduler_worker_gone (fx->sched, key, false, 8000);
        else
            assert_non_null (shoal_scheduler_worker_seen (fx->sched, key,
                                                          5000));
    }
    s_drain_lost (fx);
    /* The tick at 9 s shrinks the period to 1 s: silent 4 s, more than
       3 x 1 s, but within the 12 s the workers were allowed. */
    shoal_scheduler_tick (fx->sched, 9000);
    assert_int_equal (shoal_scheduler_heartbeat_ms (fx->sched), 1000);
    assert_int_equal (s_drain_lost (fx), 0);
    assert_int_equal (shoal_scheduler_loss_ms (fx->sched, 9000), 12000);
    /* w1..w999 heard the 1 s period and heartbeat; w0 never does. */
    for (int64_t now = 10000; now <= 17000; now += 1000) {
        for (size_t i = 1; i < 1000; i++) {
            char key[32];
            snprintf (key, sizeof key, "w%zu", i);
            assert_non_null (shoal_scheduler_worker_seen (fx->sched, key,
                                                          now));
        }
        shoal_scheduler_tick (fx->sched, now);
        assert_int_equal (s_drain_lost (fx), 0);    /* w0 silent <= 12 s */
    }
    /* At 18 s w0 is silent 13 s: lost under either deadline. */
    shoal_scheduler_tick (fx->sched, 18000);
    assert_int_equal (s_drain_lost (fx), 1);
    assert_null (shoal_scheduler_worker_seen (fx->sched, "w0", 18000));
    /* The hold is over (9 s + 12 s): the 3 s deadline of the 1 s period. */
    assert_int_equal (shoal_scheduler_loss_ms (fx->sched, 21000), 3000);
    shoal_scheduler_tick (fx->sched, 21500);  /* the others silent 4.5 s */
    assert_int_equal (s_drain_lost (fx), 999);
}

static void
test_secrets_are_masked_in_views (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    json_t *view = shoal_job_to_json (job);
    char *text = json_dumps (view, 0);
    assert_null (strstr (text, "secret-value"));
    assert_non_null (strstr (text, "***"));
    free (text);
    json_decref (view);
    json_t *tasks = shoal_job_tasks_to_json (job);
    text = json_dumps (tasks, 0);
    assert_null (strstr (text, "secret-value"));
    free (text);
    json_decref (tasks);
    /* The wire keeps the value: the task needs it. */
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    json_t *body = shoal_task_wire_body (s_find (fx, SHOAL_ACTION_DISPATCH,
                                                 0)->task);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (body, "params"), "token")),
                         "secret-value");
    json_decref (body);
}

static void
test_secret_values_are_masked_in_error_messages (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_result_t result = { .status = SHOAL_RESULT_ERROR,
                              .error = "bad token secret-value, again "
                                       "secret-value" };
    shoal_scheduler_result (fx->sched, "w1", "j1", 0, run.attempt, &result,
                            1500, NULL);
    json_t *views[2] = { shoal_job_to_json (job),
                         shoal_job_tasks_to_json (job) };
    for (int i = 0; i < 2; i++) {
        char *text = json_dumps (views[i], 0);
        assert_null (strstr (text, "secret-value"));
        assert_non_null (strstr (text, "bad token ***, again ***"));
        free (text);
        json_decref (views[i]);
    }
}

/*  Asserts that the text view of `job` is compact JSON that reads back
    (shoal_job_to_json) and prints again to the same bytes.               */
static void
s_assert_view_text (shoal_job_t *job, char **buf, size_t *cap)
{
    json_t *view = shoal_job_to_json (job);
    char *expected = json_dumps (view, JSON_COMPACT);
    json_decref (view);
    size_t size = shoal_job_view_text (job, buf, cap);
    assert_true (size > 0);
    assert_int_equal (size, strlen (expected));
    assert_memory_equal (*buf, expected, size);
    free (expected);
}

/*  Times in views are ISO 8601 in UTC with milliseconds, digit by digit. */
static void
test_times_are_iso_8601_in_utc_with_milliseconds (void **state)
{
    (void) state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        { 1, "1970-01-01T00:00:00.001Z" },
        { 951782400999, "2000-02-29T00:00:00.999Z" },     /* leap day */
        { 1796074377123, "2026-11-30T21:32:57.123Z" },
        { 1798761599000, "2026-12-31T23:59:59.000Z" },
        { 253402300799999, "9999-12-31T23:59:59.999Z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *text = shoal_time_json (cases[i].ms);
        assert_string_equal (json_string_value (text), cases[i].text);
        json_decref (text);
    }
    json_t *never = shoal_time_json (0);
    assert_true (json_is_null (never));
    json_decref (never);
}

static void
test_the_text_view_is_the_tree_view_printed (void **state)
{
    s_fixture_t *fx = *state;
    char *buf = NULL;
    size_t cap = 0;
    /* Created, not started; a secret param among others that need
       escaping (quotes, a backslash, control characters, UTF-8). */
    json_t *params = json_pack ("{s:s, s:s, s:s}", "token", "secret-value",
                                "item", "a \"quoted\" \\ path\n\t\x01 \xc3\xa9",
                                "other", "");
    shoal_error_t err = { 0 };
    shoal_job_t *created = shoal_scheduler_submit (
        fx->sched, "j-created", shoal_defs_job_class (fx->defs, "one"),
        params, false, 1000, &err);
    assert_non_null (created);
    s_assert_view_text (created, &buf, &cap);

    /* Running a spawn stage of three, one failed with a secret in its
       error, the job then failed (job_failed_on_error). */
    shoal_job_t *fan = s_submit (fx, "j-fan", "fanout", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 8, 0, 1000);
    shoal_action_t spawn = s_reach_spawn (fx, "j-fan");
    s_assert_view_text (fan, &buf, &cap);
    json_t *list = json_pack ("[{s:s}, {s:s}, {s:s}]", "item", "a",
                              "item", "b", "item", "c");
    assert_int_equal (s_exit (fx, "w1", &spawn, 0, list), 0);
    json_decref (list);
    assert_int_equal (s_drain (fx), 3);
    s_assert_view_text (fan, &buf, &cap);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_result_t result = { .status = SHOAL_RESULT_ERROR,
                              .error = "bad token secret-value: \"x\"" };
    shoal_scheduler_result (fx->sched, "w1", shoal_job_id (run.job),
                            shoal_task_id (run.task), run.attempt, &result,
                            2500, NULL);
    s_drain (fx);
    assert_string_equal (shoal_job_state_name (shoal_job_state (fan)),
                         "failed");
    s_assert_view_text (fan, &buf, &cap);

    /* Succeeded: every time set. */
    shoal_job_t *one = s_submit (fx, "j-one", "one", true);
    s_drain (fx);
    shoal_action_t *task = NULL;
    for (size_t i = 0; i < fx->count; i++)
        if (fx->actions[i].type == SHOAL_ACTION_DISPATCH
            && fx->actions[i].job == one)
            task = &fx->actions[i];
    assert_non_null (task);
    assert_int_equal (s_exit (fx, "w1", task, 0, NULL), 0);
    assert_string_equal (shoal_job_state_name (shoal_job_state (one)),
                         "succeeded");
    s_assert_view_text (one, &buf, &cap);
    free (buf);
}

static void
test_jobs_list_newest_first_with_cursor (void **state)
{
    s_fixture_t *fx = *state;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf (id, sizeof id, "j%d", i);
        s_submit (fx, id, "one", i % 2 == 0);
    }
    json_t *page = shoal_scheduler_jobs_to_json (fx->sched, -1, 2, 0);
    json_t *jobs = json_object_get (page, "jobs");
    assert_int_equal (json_array_size (jobs), 2);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (jobs, 0), "id")), "j4");
    const char *next = json_string_value (json_object_get (page, "next"));
    assert_non_null (next);
    json_t *rest = shoal_scheduler_jobs_to_json (fx->sched, -1, 10,
                                                 strtoull (next, NULL, 10));
    json_t *more = json_object_get (rest, "jobs");
    assert_int_equal (json_array_size (more), 3);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (more, 0), "id")), "j2");
    assert_true (json_is_null (json_object_get (rest, "next")));
    json_t *created = shoal_scheduler_jobs_to_json (
        fx->sched, SHOAL_JOB_CREATED, 10, 0);
    assert_int_equal (json_array_size (json_object_get (created, "jobs")), 2);
    json_decref (page);
    json_decref (rest);
    json_decref (created);
}

/*  A "tolerant" job whose spawn list has `entries` tasks, every fifth
    of them failed, the rest succeeded, and its "after" stage started:
    task 0 is the spawn task, 1..entries the spawned ones, entries + 1
    the "after" task.                                                     */
static shoal_job_t *
s_fanned_out_job (s_fixture_t *fx, int entries)
{
    shoal_job_t *job = s_submit (fx, "j1", "tolerant", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 64, 0, 1000);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    json_t *list = json_array ();
    for (int i = 0; i < entries; i++)
        json_array_append_new (list, json_pack ("{s:i}", "item", i));
    s_exit (fx, "w1", &spawn, 0, list);
    json_decref (list);
    s_drain (fx);
    size_t count = fx->count;
    assert_int_equal (count, (size_t) entries);
    shoal_action_t runs[64];
    memcpy (runs, fx->actions, count * sizeof runs[0]);
    for (size_t i = 0; i < count; i++)
        s_exit (fx, "w1", &runs[i],
                (shoal_task_id (runs[i].task) - 1) % 5 == 0 ? 1 : 0, NULL);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_RUNNING);
    return job;
}

/*  Walks every page of the job's tasks with the filters and `limit`,
    appending the ids seen to `ids` (room for `size`). Returns how many;
    fails the test when a page breaks the contract.                       */
static size_t
s_walk_pages (shoal_job_t *job, int state, int stage, size_t limit,
              uint32_t *ids, size_t size)
{
    size_t seen = 0;
    uint32_t from = 0;
    for (int pages = 0; pages < 1000; pages++) {
        json_t *page = shoal_job_tasks_page_to_json (job, state, stage, from,
                                                     limit);
        json_t *tasks = json_object_get (page, "tasks");
        assert_true (json_array_size (tasks) <= limit);
        assert_int_equal (json_integer_value (json_object_get (page, "total")),
                          shoal_job_task_count (job));
        size_t i;
        json_t *task;
        json_array_foreach (tasks, i, task) {
            assert_true (seen < size);
            ids[seen++] = (uint32_t) json_integer_value (
                json_object_get (task, "id"));
        }
        json_t *next = json_object_get (page, "next");
        if (json_is_null (next)) {
            json_decref (page);
            return seen;
        }
        const char *text = json_string_value (next);
        assert_non_null (text);
        uint32_t after = (uint32_t) strtoul (text, NULL, 10);
        assert_true (after > from);
        from = after;
        json_decref (page);
    }
    fail_msg ("the pages never ended");
    return seen;
}

static void
test_task_pages_cover_every_task_once_in_order (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_fanned_out_job (fx, 25);
    assert_int_equal (shoal_job_task_count (job), 27);
    uint32_t ids[64];
    for (size_t limit = 1; limit <= 30; limit++) {
        size_t seen = s_walk_pages (job, -1, -1, limit, ids, 64);
        assert_int_equal (seen, 27);
        for (uint32_t i = 0; i < 27; i++)
            assert_int_equal (ids[i], i);
    }
    /* A page that ends exactly at the last task says there is no more. */
    json_t *page = shoal_job_tasks_page_to_json (job, -1, -1, 20, 7);
    assert_int_equal (json_array_size (json_object_get (page, "tasks")), 7);
    assert_true (json_is_null (json_object_get (page, "next")));
    json_decref (page);
    /* A cursor past the end is an empty last page. */
    page = shoal_job_tasks_page_to_json (job, -1, -1, 1000, 10);
    assert_int_equal (json_array_size (json_object_get (page, "tasks")), 0);
    assert_true (json_is_null (json_object_get (page, "next")));
    json_decref (page);
}

static void
test_task_pages_filter_by_state_and_stage (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_fanned_out_job (fx, 25);
    uint32_t ids[64];
    /* Spawned task k (index k - 1) failed when (k - 1) % 5 == 0. */
    size_t seen = s_walk_pages (job, SHOAL_TASK_FAILED, -1, 2, ids, 64);
    assert_int_equal (seen, 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal (ids[i], 1 + 5 * i);
    seen = s_walk_pages (job, -1, 1, 10, ids, 64);
    assert_int_equal (seen, 1);
    assert_int_equal (ids[0], 26);
    seen = s_walk_pages (job, SHOAL_TASK_SUCCEEDED, 0, 100, ids, 64);
    assert_int_equal (seen, 21);    /* the spawn task and 20 spawned */
    assert_int_equal (ids[0], 0);
    assert_int_equal (ids[20], 25);
    assert_int_equal (shoal_job_stage_parse (job, "after"), 1);
    assert_int_equal (shoal_job_stage_parse (job, "spread"), 0);
    assert_int_equal (shoal_job_stage_parse (job, "1"), 1);
    assert_int_equal (shoal_job_stage_parse (job, "2"), -1);
    assert_int_equal (shoal_job_stage_parse (job, "-1"), -1);
    assert_int_equal (shoal_job_stage_parse (job, ""), -1);
    assert_int_equal (shoal_job_stage_parse (job, "nope"), -1);
    assert_int_equal (shoal_task_state_parse ("failed"), SHOAL_TASK_FAILED);
    assert_int_equal (shoal_task_state_parse ("created"), -1);
}

/*  A filter that matches nothing must not walk the whole job in one page:
    the scan stops at its bound and hands back where it stopped.          */
static void
test_task_page_scan_is_bounded (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "tolerant", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t spawn = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    size_t entries = SHOAL_TASK_PAGE_SCAN + 10;
    char *list = malloc (entries * 3 + 2);
    size_t used = 0;
    list[used++] = '[';
    for (size_t i = 0; i < entries; i++) {
        memcpy (list + used, "{},", 3);
        used += 3;
    }
    list[used - 1] = ']';
    shoal_result_t result = { .status = SHOAL_RESULT_EXITED,
                              .spawn_text = list, .spawn_size = used };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1",
                                              shoal_task_id (spawn.task),
                                              spawn.attempt, &result, 2000,
                                              NULL), 0);
    free (list);
    assert_int_equal (shoal_job_task_count (job), entries + 1);
    json_t *page = shoal_job_tasks_page_to_json (job, SHOAL_TASK_FAILED, -1,
                                                 0, 10);
    assert_int_equal (json_array_size (json_object_get (page, "tasks")), 0);
    assert_string_equal (json_string_value (json_object_get (page, "next")),
                         "100000");
    json_decref (page);
    page = shoal_job_tasks_page_to_json (job, SHOAL_TASK_FAILED, -1,
                                         SHOAL_TASK_PAGE_SCAN, 10);
    assert_int_equal (json_array_size (json_object_get (page, "tasks")), 0);
    assert_true (json_is_null (json_object_get (page, "next")));
    json_decref (page);
}

/* ---- retention ---------------------------------------------------------- */

/*  Job ids shoal_scheduler_evict reported, joined with spaces.           */
static void
s_collect_evicted (const char *job_id, void *arg)
{
    char *ids = arg;
    if (*ids)
        strcat (ids, " ");
    strcat (ids, job_id);
}

/*  Flushes the change lists as the controller does once per round.     */
static void
s_flush (s_fixture_t *fx)
{
    shoal_scheduler_flush (fx->sched, NULL, NULL, NULL);
}

static void
test_evict_forgets_only_jobs_that_ended_before_the_cutoff (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "done", "one", true);
    s_submit (fx, "canceled", "one", false);
    s_submit (fx, "created", "one", false);
    s_submit (fx, "running", "one", true);
    s_submit (fx, "recent", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 4, 0, 1000);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 3);
    shoal_action_t done = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    shoal_action_t recent = *s_find (fx, SHOAL_ACTION_DISPATCH, 2);
    assert_string_equal (shoal_job_id (done.job), "done");
    assert_string_equal (shoal_job_id (recent.job), "recent");
    shoal_result_t ok = { .status = SHOAL_RESULT_EXITED };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "done", 0, 1,
                                              &ok, 2000, NULL), 0);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "canceled", 1500,
                                              NULL), 0);
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "recent", 0,
                                              1, &ok, 9000, NULL), 0);
    s_drain (fx);
    char ids[256] = "";
    /* Not flushed yet: their final rows are not stored, so they stay. */
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100,
                                             s_collect_evicted, ids), 0);
    assert_string_equal (ids, "");
    s_flush (fx);
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100,
                                             s_collect_evicted, ids), 2);
    assert_string_equal (ids, "done canceled");
    assert_null (shoal_scheduler_job (fx->sched, "done"));
    assert_null (shoal_scheduler_job (fx->sched, "canceled"));
    assert_non_null (shoal_scheduler_job (fx->sched, "created"));
    assert_non_null (shoal_scheduler_job (fx->sched, "running"));
    assert_non_null (shoal_scheduler_job (fx->sched, "recent"));
    assert_int_equal (shoal_scheduler_job_count (fx->sched), 3);
    assert_string_equal (shoal_job_id (shoal_scheduler_job_at (fx->sched, 0)),
                         "created");
    shoal_scheduler_stats_t stats;
    shoal_scheduler_stats (fx->sched, &stats);
    assert_int_equal (stats.jobs_active, 2);
    assert_int_equal (stats.jobs_evicted, 2);
    assert_int_equal (stats.jobs_submitted, 5);
    assert_int_equal (stats.jobs_finished[SHOAL_JOB_SUCCEEDED], 2);
    assert_int_equal (stats.jobs_finished[SHOAL_JOB_CANCELED], 1);
    assert_int_equal (stats.tasks_running, 1);
    assert_int_equal (stats.busy, 1);
    /* Nothing is forgotten twice; a later cutoff takes the recent one. */
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100, NULL,
                                             NULL), 0);
    assert_int_equal (shoal_scheduler_evict (fx->sched, 9001, 100, NULL,
                                             NULL), 1);
    assert_null (shoal_scheduler_job (fx->sched, "recent"));
    /* The running job goes on as if nothing happened. */
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "running", 0,
                                              1, &ok, 9500, NULL), 0);
    assert_int_equal (shoal_job_state (shoal_scheduler_job (fx->sched,
                                                            "running")),
                      SHOAL_JOB_SUCCEEDED);
    /* A result for a forgotten job is one for an unknown job. */
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "done", 0, 1,
                                              &ok, 9500, NULL),
                      SHOAL_ENOTFOUND);
}

static void
test_evict_keeps_a_job_a_queued_action_points_at (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "one", false);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 1500, NULL), 0);
    s_flush (fx);
    /* Its JOB_ENDED action is still queued. */
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100, NULL,
                                             NULL), 0);
    assert_non_null (shoal_scheduler_job (fx->sched, "j1"));
    assert_int_equal (s_drain (fx), 1);
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100, NULL,
                                             NULL), 1);
    assert_null (shoal_scheduler_job (fx->sched, "j1"));
}

static void
test_evict_waits_for_the_worker_holding_a_canceled_task (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "one", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 1500, NULL), 0);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_CANCEL), 1);
    s_flush (fx);
    /* The process may still run on w1: its result must find the task. */
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100, NULL,
                                             NULL), 0);
    assert_non_null (shoal_scheduler_job (fx->sched, "j1"));
    shoal_result_t canceled = { .status = SHOAL_RESULT_CANCELED };
    assert_int_equal (shoal_scheduler_result (fx->sched, "w1", "j1", 0,
                                              run.attempt, &canceled, 3000,
                                              NULL), 0);
    s_drain (fx);
    s_flush (fx);
    assert_int_equal (shoal_scheduler_evict (fx->sched, 5000, 100, NULL,
                                             NULL), 1);
    assert_null (shoal_scheduler_job (fx->sched, "j1"));
    /* The slot it took is free for the next job. */
    s_submit (fx, "j2", "one", true);
    s_drain (fx);
    assert_int_equal (s_count_type (fx, SHOAL_ACTION_DISPATCH), 1);
}

static void
test_evict_drops_a_canceled_task_waiting_out_its_back_off (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "flaky", true);
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t run = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    s_exit (fx, "w1", &run, 1, NULL);   /* back-off until 3000 */
    assert_int_equal (shoal_scheduler_next_wake (fx->sched), 3000);
    assert_int_equal (shoal_scheduler_cancel (fx->sched, "j1", 2100, NULL), 0);
    s_drain (fx);
    s_flush (fx);
    assert_int_equal (shoal_scheduler_evict (fx->sched, 2500, 100, NULL,
                                             NULL), 1);
    /* The back-off list no longer holds its task (valgrind would see the
       freed one read here). */
    assert_int_equal (shoal_scheduler_next_wake (fx->sched), -1);
    shoal_scheduler_wake (fx->sched, 10000);
    assert_int_equal (s_drain (fx), 0);
}

/*  Every job of the list, newest first, walked in pages of `limit`, as
    ids joined with spaces; fails when a job shows up twice.               */
static void
s_walk_job_pages (s_fixture_t *fx, size_t limit, char *out, size_t size)
{
    out[0] = '\0';
    uint64_t before = 0;
    size_t pages = 0;
    do {
        json_t *page = shoal_scheduler_jobs_to_json (fx->sched, -1, limit,
                                                     before);
        json_t *jobs = json_object_get (page, "jobs");
        assert_true (json_array_size (jobs) <= limit);
        for (size_t i = 0; i < json_array_size (jobs); i++) {
            const char *id = json_string_value (json_object_get (
                json_array_get (jobs, i), "id"));
            char word[40];
            snprintf (word, sizeof word, " %s ", id);
            char padded[1024];
            snprintf (padded, sizeof padded, " %s ", out);
            if (strstr (padded, word))
                fail_msg ("job %s listed twice: %s", id, out);
            if (*out)
                strncat (out, " ", size - strlen (out) - 1);
            strncat (out, id, size - strlen (out) - 1);
        }
        const char *next = json_string_value (json_object_get (page, "next"));
        before = next ? strtoull (next, NULL, 10) : 0;
        json_decref (page);
        assert_true (++pages < 100);
    } while (before);
}

static void
test_job_pages_cover_every_remaining_job_once_after_evictions (void **state)
{
    s_fixture_t *fx = *state;
    for (int i = 0; i < 20; i++) {
        char id[8];
        snprintf (id, sizeof id, "j%02d", i);
        s_submit (fx, id, "one", false);
        if (i % 2 == 0)
            shoal_scheduler_cancel (fx->sched, id, 2000, NULL);
    }
    s_drain (fx);
    s_flush (fx);
    /* A page cursor taken before the evictions. */
    json_t *first = shoal_scheduler_jobs_to_json (fx->sched, -1, 5, 0);
    const char *cursor = json_string_value (json_object_get (first, "next"));
    assert_non_null (cursor);
    uint64_t before = strtoull (cursor, NULL, 10);
    json_decref (first);
    /* At most `max` a call, oldest first. */
    char ids[512] = "";
    assert_int_equal (shoal_scheduler_evict (fx->sched, 3000, 4,
                                             s_collect_evicted, ids), 4);
    assert_string_equal (ids, "j00 j02 j04 j06");
    char walk[1024];
    s_walk_job_pages (fx, 3, walk, sizeof walk);
    assert_string_equal (walk, "j19 j18 j17 j16 j15 j14 j13 j12 j11 j10 "
                               "j09 j08 j07 j05 j03 j01");
    assert_int_equal (shoal_scheduler_evict (fx->sched, 3000, 100, NULL,
                                             NULL), 6);
    assert_int_equal (shoal_scheduler_job_count (fx->sched), 10);
    s_walk_job_pages (fx, 3, walk, sizeof walk);
    assert_string_equal (walk, "j19 j17 j15 j13 j11 j09 j07 j05 j03 j01");
    /* The old cursor still starts after the jobs its page showed. */
    json_t *rest = shoal_scheduler_jobs_to_json (fx->sched, -1, 2, before);
    json_t *jobs = json_object_get (rest, "jobs");
    assert_int_equal (json_array_size (jobs), 2);
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (jobs, 0), "id")), "j13");
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (jobs, 1), "id")), "j11");
    json_decref (rest);
    json_t *canceled = shoal_scheduler_jobs_to_json (
        fx->sched, SHOAL_JOB_CANCELED, 10, 0);
    assert_int_equal (json_array_size (json_object_get (canceled, "jobs")), 0);
    json_decref (canceled);
    /* A job submitted now is the newest; no sequence number is reused. */
    s_submit (fx, "late", "one", false);
    s_walk_job_pages (fx, 4, walk, sizeof walk);
    assert_string_equal (walk, "late j19 j17 j15 j13 j11 j09 j07 j05 j03 "
                               "j01");
}

static void
test_duplicate_job_id_is_refused (void **state)
{
    s_fixture_t *fx = *state;
    s_submit (fx, "j1", "one", true);
    shoal_error_t err = { 0 };
    assert_null (shoal_scheduler_submit (
        fx->sched, "j1", shoal_defs_job_class (fx->defs, "one"), json_object (),
        true, 1000, &err));
    assert_int_equal (err.code, SHOAL_EINVAL);
}

static void
s_note_record (const shoal_job_t *job, void *arg)
{
    *(int *) arg = shoal_job_record_changed (job) ? 1 : 0;
}

/*  Flushes; 1 or 0 for whether the one job reported had its record
    changed, -1 when no job was reported.                                 */
static int
s_record_changed_at_flush (s_fixture_t *fx)
{
    int changed = -1;
    shoal_scheduler_flush (fx->sched, s_note_record, NULL, &changed);
    return changed;
}

static void
test_a_job_record_changes_with_its_own_fields_not_its_tasks (void **state)
{
    s_fixture_t *fx = *state;
    shoal_job_t *job = s_submit (fx, "j1", "two", true);
    assert_int_equal (s_record_changed_at_flush (fx), 1);   /* new */
    shoal_scheduler_worker_hello (fx->sched, "w1", "w1", "h", 1, 0, 1000);
    s_drain (fx);
    shoal_action_t first = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    /* Its task runs: the job is reported, its record is the same. */
    assert_int_equal (s_record_changed_at_flush (fx), 0);
    assert_int_equal (s_record_changed_at_flush (fx), -1);
    /* The first stage ends and the second starts. */
    assert_int_equal (s_exit (fx, "w1", &first, 0, NULL), 0);
    s_drain (fx);
    shoal_action_t second = *s_find (fx, SHOAL_ACTION_DISPATCH, 0);
    assert_int_equal (s_record_changed_at_flush (fx), 1);
    assert_int_equal (s_exit (fx, "w1", &second, 0, NULL), 0);
    s_drain (fx);
    assert_int_equal (shoal_job_state (job), SHOAL_JOB_SUCCEEDED);
    assert_int_equal (s_record_changed_at_flush (fx), 1);
}

/*  Restores a created job of class "one" with sequence number `seq`.    */
static shoal_job_t *
s_restore (s_fixture_t *fx, const char *id, uint64_t seq, shoal_error_t *err)
{
    json_t *params = json_pack ("{s:s}", "token", "t");
    shoal_job_record_t record = {
        .id = id, .seq = seq, .job_class = "one", .params = params,
        .state = SHOAL_JOB_CREATED, .created_at = 1000,
    };
    shoal_stage_record_t stage = { .state = SHOAL_STAGE_PENDING };
    shoal_job_t *job = shoal_scheduler_restore_job (fx->sched, &record,
                                                    &stage, 1, err);
    json_decref (params);
    return job;
}

static void
test_restored_jobs_keep_their_seq_in_order (void **state)
{
    s_fixture_t *fx = *state;
    shoal_error_t err = { 0 };
    assert_int_equal (shoal_job_seq (s_restore (fx, "a", 7, &err)), 7);
    assert_int_equal (shoal_job_seq (s_restore (fx, "b", 12, &err)), 12);
    /* Not after the last one: the store is damaged. */
    assert_null (s_restore (fx, "c", 12, &err));
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_string_equal (err.field, "seq");
    assert_null (shoal_scheduler_job (fx->sched, "c"));
    /* A record without one gets the next, as does a new job. */
    assert_int_equal (shoal_job_seq (s_restore (fx, "d", 0, &err)), 13);
    shoal_scheduler_restore_done (fx->sched, 1000, 1000);
    assert_int_equal (shoal_job_seq (s_submit (fx, "e", "one", false)), 14);
}

static void
test_jobs_held_never_share_the_low_32_bits_of_their_seq (void **state)
{
    s_fixture_t *fx = *state;
    const uint64_t span = (uint64_t) 1 << 32;
    shoal_error_t err = { 0 };
    assert_non_null (s_restore (fx, "old", 5, &err));
    assert_non_null (s_restore (fx, "recent", span + 3, &err));
    shoal_scheduler_restore_done (fx->sched, 1000, 1000);
    assert_int_equal (shoal_job_seq (s_submit (fx, "n4", "one", false)),
                      span + 4);
    /* span + 5 would share "old"'s low bits: it is skipped. */
    assert_int_equal (shoal_job_seq (s_submit (fx, "n6", "one", false)),
                      span + 6);
    assert_int_equal (shoal_job_seq (s_submit (fx, "n7", "one", false)),
                      span + 7);
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests[] = {
        T (test_job_without_workers_waits),
        T (test_single_stage_job_succeeds),
        T (test_created_job_waits_for_start),
        T (test_stages_run_in_order),
        T (test_spawn_fans_stage_out_one_task_per_entry),
        T (test_empty_spawn_list_completes_stage),
        T (test_wire_text_matches_wire_body),
        T (test_spawn_list_over_the_bound_fails_the_spawn_task),
        T (test_fail_policy_true_fails_job_and_cancels_the_rest),
        T (test_fail_policy_false_records_failures_and_goes_on),
        T (test_spawn_failure_fails_its_stage),
        T (test_invalid_spawn_list_fails_spawn_task),
        T (test_credit_never_exceeds_slots),
        T (test_queue_adds_to_a_workers_credit),
        T (test_tasks_spread_over_workers),
        T (test_round_robin_between_jobs),
        T (test_lost_worker_task_runs_again_and_old_attempt_is_fenced),
        T (test_task_fails_after_three_lost_workers),
        T (test_task_that_could_not_be_sent_counts_no_loss),
        T (test_reconnected_worker_process_keeps_its_tasks),
        T (test_bye_requeues_without_counting_a_loss),
        T (test_slots_running_at_hello_are_busy_until_their_results_come),
        T (test_refused_task_runs_elsewhere_without_failing),
        T (test_cancel_stops_running_and_pending_tasks),
        T (test_cancel_of_created_job_never_runs_it),
        T (test_retry_runs_the_failed_stage_again_and_keeps_earlier_ones),
        T (test_draining_worker_gets_no_new_task),
        T (test_failed_task_is_retried_after_a_growing_back_off),
        T (test_task_that_could_not_start_is_not_retried),
        T (test_cancel_during_back_off_never_runs_the_task_again),
        T (test_heartbeats_go_to_live_workers),
        T (test_heartbeats_are_spread_over_the_period),
        T (test_heartbeat_ring_survives_workers_leaving),
        T (test_a_busy_worker_gets_no_heartbeat),
        T (test_a_new_period_is_told_to_a_busy_worker),
        T (test_liveness_follows_the_heartbeat_period),
        T (test_heartbeat_period_follows_the_workers),
        T (test_heartbeat_period_adapts_at_tick),
        T (test_heartbeat_period_never_below_the_minimum),
        T (test_no_worker_lost_while_the_period_shrinks),
        T (test_secrets_are_masked_in_views),
        T (test_times_are_iso_8601_in_utc_with_milliseconds),
        T (test_the_text_view_is_the_tree_view_printed),
        T (test_secret_values_are_masked_in_error_messages),
        T (test_jobs_list_newest_first_with_cursor),
        T (test_task_pages_cover_every_task_once_in_order),
        T (test_task_pages_filter_by_state_and_stage),
        T (test_task_page_scan_is_bounded),
        T (test_duplicate_job_id_is_refused),
        T (test_restored_jobs_keep_their_seq_in_order),
        T (test_a_job_record_changes_with_its_own_fields_not_its_tasks),
        T (test_jobs_held_never_share_the_low_32_bits_of_their_seq),
        T (test_evict_forgets_only_jobs_that_ended_before_the_cutoff),
        T (test_evict_keeps_a_job_a_queued_action_points_at),
        T (test_evict_waits_for_the_worker_holding_a_canceled_task),
        T (test_evict_drops_a_canceled_task_waiting_out_its_back_off),
        T (test_job_pages_cover_every_remaining_job_once_after_evictions),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
