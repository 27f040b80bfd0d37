/*  test_defs.c: what a definitions file may say, and how a bad one is
    refused.

    The spec's own example must load exactly as written, YAML traps
    included (`- {url}` is a flow mapping, `- >` ends in a newline). Every
    refusal is checked for its code, its 1-based line and column and the
    name in err->field, since an operator fixes the file from those.       */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal/defs.h"

#define SPEC_EXAMPLE SHOAL_FIXTURES "/spec_example.yaml"

static shoal_defs_t *
s_parse (const char *yaml, shoal_error_t *err)
{
    return shoal_defs_parse (yaml, strlen (yaml), "defs.yaml", err);
}

/*  Parses `yaml`, asserting success.                                      */
static shoal_defs_t *
s_parse_ok (const char *yaml)
{
    shoal_error_t err;
    shoal_defs_t *defs = s_parse (yaml, &err);
    if (!defs)
        fail_msg ("refused: %s", err.message);
    assert_int_equal (err.code, SHOAL_OK);
    return defs;
}

/*  Asserts that `yaml` is refused with `code` at line:column, naming
    `field`, with a message holding `words` after the position.            */
static void
s_assert_refused (const char *yaml, int code, int line, int column,
                  const char *field, const char *words)
{
    shoal_error_t err;
    shoal_defs_t *defs = s_parse (yaml, &err);
    if (defs) {
        shoal_defs_destroy (&defs);
        fail_msg ("accepted, expected: %s", words);
    }
    if (!strstr (err.message, words))
        fail_msg ("message '%s' does not say '%s'", err.message, words);
    if (err.code != code || err.line != line || err.column != column
        || strcmp (err.field, field))
        fail_msg ("expected code %d at %d:%d, field '%s'; got code %d at "
                  "%d:%d, field '%s' (%s)", code, line, column, field,
                  err.code, err.line, err.column, err.field, err.message);
    char prefix[64];
    snprintf (prefix, sizeof prefix, "defs.yaml:%d:%d: ", line, column);
    assert_memory_equal (err.message, prefix, strlen (prefix));
}

/*  A task every job below can use. Lines 1 to 6.                          */
#define ECHO_TASK                                                          \
    "tasks:\n"                                                             \
    "  echo:\n"                                                            \
    "    exec_command: echo\n"                                             \
    "    input:\n"                                                         \
    "      word: {source: parameter}\n"                                    \
    "    exec_args: [\"{word}\"]\n"

/*  A job running it. Lines 7 to 10 after ECHO_TASK.                       */
#define SAY_JOB                                                            \
    "jobs:\n"                                                              \
    "  say:\n"                                                             \
    "    stages:\n"                                                        \
    "    - task_class: echo\n"

// ------------------------------------------------------- the spec example

static shoal_defs_t *
s_load_spec (void)
{
    shoal_error_t err;
    shoal_defs_t *defs = shoal_defs_load (SPEC_EXAMPLE, &err);
    if (!defs)
        fail_msg ("spec example refused: %s", err.message);
    return defs;
}

static void
test_spec_example_loads_tasks_in_file_order (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    assert_int_equal (shoal_defs_task_class_count (defs), 3);
    assert_string_equal (shoal_defs_task_class_at (defs, 0)->id,
                         "export-data");
    assert_string_equal (shoal_defs_task_class_at (defs, 1)->id,
                         "spawn_download_tasks");
    assert_string_equal (shoal_defs_task_class_at (defs, 2)->id, "download");
    assert_null (shoal_defs_task_class_at (defs, 3));
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_download_args_are_verbatim (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "download");
    assert_non_null (task);
    assert_string_equal (task->name, "Download file");
    assert_string_equal (task->exec_command, "wget");
    assert_int_equal (task->exec_argc, 5);
    assert_string_equal (task->exec_args[0], "-d");
    assert_string_equal (task->exec_args[1],
                         "\"--header=Authorization: {basic_auth}\"");
    assert_string_equal (task->exec_args[2], "{url}");
    assert_string_equal (task->exec_args[3], "-P");
    assert_string_equal (task->exec_args[4], "{output_path}");
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_export_task_inputs_and_sources (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    const shoal_task_class_t *task
        = shoal_defs_task_class (defs, "export-data");
    assert_non_null (task);
    assert_string_equal (task->exec_command, "serialize_data");
    assert_int_equal (task->exec_argc, 6);
    assert_string_equal (task->exec_args[5], "{LOG_LEVEL}");
    assert_int_equal (task->input_count, 3);
    assert_string_equal (task->inputs[0].name, "data_id");
    assert_int_equal (task->inputs[0].source, SHOAL_SOURCE_PARAMETER);
    assert_string_equal (task->inputs[0].description,
                         "The id of the data to be exported");
    assert_string_equal (task->inputs[1].name, "REST_ENDPOINT");
    assert_int_equal (task->inputs[1].source, SHOAL_SOURCE_ENVIRONMENT);
    assert_null (task->inputs[1].key);
    assert_null (task->inputs[1].default_value);
    assert_false (task->inputs[1].secret);
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_task_without_input_has_none (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    const shoal_task_class_t *task
        = shoal_defs_task_class (defs, "spawn_download_tasks");
    assert_non_null (task);
    assert_int_equal (task->input_count, 0);
    assert_int_equal (task->exec_argc, 1);
    assert_string_equal (task->exec_args[0], "create_download_tasks.py");
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_job_stages (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    assert_int_equal (shoal_defs_job_class_count (defs), 1);
    const shoal_job_class_t *job = shoal_defs_job_class (defs, "request-data");
    assert_non_null (job);
    assert_ptr_equal (job, shoal_defs_job_class_at (defs, 0));
    assert_string_equal (job->name, "Requests Data");
    assert_string_equal (job->description, "Requests data from the server");
    assert_int_equal (job->stage_count, 2);

    assert_string_equal (job->stages[0].name, "Request Data");
    assert_ptr_equal (job->stages[0].task_class,
                      shoal_defs_task_class (defs, "export-data"));
    assert_null (job->stages[0].spawn_task);
    assert_true (job->stages[0].job_failed_on_error);

    assert_string_equal (job->stages[1].name, "Download Data");
    assert_ptr_equal (job->stages[1].task_class,
                      shoal_defs_task_class (defs, "download"));
    assert_ptr_equal (job->stages[1].spawn_task,
                      shoal_defs_task_class (defs, "spawn_download_tasks"));
    assert_false (job->stages[1].job_failed_on_error);
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_http_header_input_is_secret (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    const shoal_job_class_t *job = shoal_defs_job_class (defs, "request-data");
    assert_int_equal (job->input_count, 2);
    const shoal_input_t *input
        = shoal_input_find (job->inputs, job->input_count, "basic_auth");
    assert_non_null (input);
    assert_int_equal (input->source, SHOAL_SOURCE_HTTP_HEADER);
    assert_string_equal (input->key, "Authorization");
    assert_true (input->secret);
    input = shoal_input_find (job->inputs, job->input_count, "data_id");
    assert_non_null (input);
    assert_int_equal (input->source, SHOAL_SOURCE_PARAMETER);
    assert_false (input->secret);
    shoal_defs_destroy (&defs);
}

static void
test_spec_example_as_json (void **state)
{
    shoal_defs_t *defs = s_load_spec ();
    json_t *json = shoal_defs_to_json (defs);
    assert_non_null (json);
    json_t *tasks = json_object_get (json, "tasks");
    assert_int_equal (json_array_size (tasks), 3);
    json_t *download = json_array_get (tasks, 2);
    assert_string_equal (json_string_value (json_object_get (download, "id")),
                         "download");
    assert_string_equal (
        json_string_value (json_object_get (download, "command")), "wget");
    json_t *args = json_object_get (download, "args");
    assert_int_equal (json_array_size (args), 5);
    assert_string_equal (json_string_value (json_array_get (args, 2)),
                         "{url}");

    json_t *job = json_array_get (json_object_get (json, "jobs"), 0);
    json_t *stages = json_object_get (job, "stages");
    assert_true (json_is_null (
        json_object_get (json_array_get (stages, 0), "spawn_task")));
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (stages, 1), "spawn_task")),
                         "spawn_download_tasks");
    assert_true (json_is_false (json_object_get (json_array_get (stages, 1),
                                                 "job_failed_on_error")));
    json_t *auth = json_array_get (json_object_get (job, "inputs"), 1);
    assert_string_equal (json_string_value (json_object_get (auth, "source")),
                         "http-header");
    assert_string_equal (json_string_value (json_object_get (auth, "key")),
                         "Authorization");
    assert_true (json_is_true (json_object_get (auth, "secret")));
    assert_null (json_object_get (auth, "default"));
    json_decref (json);
    shoal_defs_destroy (&defs);
}

// ------------------------------------------------------ what else loads

static void
test_absent_keys_take_their_defaults (void **state)
{
    shoal_defs_t *defs = s_parse_ok (ECHO_TASK SAY_JOB);
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "echo");
    assert_string_equal (task->name, "echo");
    assert_string_equal (task->description, "");
    assert_string_equal (task->inputs[0].description, "");
    assert_false (task->inputs[0].secret);
    const shoal_job_class_t *job = shoal_defs_job_class (defs, "say");
    assert_string_equal (job->name, "say");
    assert_string_equal (job->description, "");
    assert_int_equal (job->input_count, 0);
    assert_string_equal (job->stages[0].name, "stage 1");
    assert_null (job->stages[0].spawn_task);
    assert_true (job->stages[0].job_failed_on_error);
    shoal_defs_destroy (&defs);
}

static void
test_default_values_load (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  serve:\n"
        "    exec_command: serve\n"
        "    input:\n"
        "      port: {source: parameter, default: 8080}\n"
        "      mode: {source: environment, default: \"fast\"}\n"
        "      none: {source: parameter, default: \"\"}\n"
        "      plain: {source: parameter}\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: serve}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "serve");
    assert_string_equal (task->inputs[0].default_value, "8080");
    assert_string_equal (task->inputs[1].default_value, "fast");
    assert_string_equal (task->inputs[2].default_value, "");
    assert_null (task->inputs[3].default_value);
    shoal_defs_destroy (&defs);
}

static void
test_secret_defaults_are_masked_in_json (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  login:\n"
        "    exec_command: login\n"
        "    input:\n"
        "      user: {source: parameter, default: admin}\n"
        "      token: {source: parameter, default: hunter2, secret: true}\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: login}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "login");
    assert_string_equal (task->inputs[1].default_value, "hunter2");
    assert_true (task->inputs[1].secret);
    json_t *json = shoal_defs_to_json (defs);
    json_t *inputs = json_object_get (
        json_array_get (json_object_get (json, "tasks"), 0), "inputs");
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (inputs, 0), "default")),
                         "admin");
    assert_string_equal (json_string_value (json_object_get (
                             json_array_get (inputs, 1), "default")),
                         "***");
    char *text = json_dumps (json, 0);
    assert_null (strstr (text, "hunter2"));
    free (text);
    json_decref (json);
    shoal_defs_destroy (&defs);
}

static void
test_double_braces_are_literals (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  braces:\n"
        "    exec_command: \"odd{{name}}\"\n"
        "    exec_args: [\"{{not_an_input}}\", \"}}{{\"]\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: braces}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "braces");
    //  The command is used as it is, so its braces are already undoubled;
    //  arguments stay templates until they are filled.
    assert_string_equal (task->exec_command, "odd{name}");
    assert_string_equal (task->exec_args[0], "{{not_an_input}}");
    assert_string_equal (task->exec_args[1], "}}{{");
    shoal_defs_destroy (&defs);
}

static void
test_literal_block_argument_loses_trailing_newlines (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  script:\n"
        "    exec_command: sh\n"
        "    exec_args:\n"
        "    - |+\n"
        "      echo 'a'\n"
        "      echo \"b\"\n"
        "\n"
        "    - \"ends\\n\"\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: script}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "script");
    assert_string_equal (task->exec_args[0], "echo 'a'\necho \"b\"");
    //  A newline asked for explicitly in a quoted string stays.
    assert_string_equal (task->exec_args[1], "ends\n");
    shoal_defs_destroy (&defs);
}

static void
test_plain_numbers_and_booleans_are_arguments (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  nums:\n"
        "    exec_command: seq\n"
        "    exec_args: [1, 0x10, true, 2.50]\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: nums}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "nums");
    assert_int_equal (task->exec_argc, 4);
    assert_string_equal (task->exec_args[0], "1");
    assert_string_equal (task->exec_args[1], "0x10");
    assert_string_equal (task->exec_args[2], "true");
    assert_string_equal (task->exec_args[3], "2.50");
    shoal_defs_destroy (&defs);
}

static void
test_aliases_share_definitions (void **state)
{
    shoal_defs_t *defs = s_parse_ok (
        "tasks:\n"
        "  a:\n"
        "    exec_command: a\n"
        "    input: &shared\n"
        "      word: {source: parameter}\n"
        "    exec_args: [\"{word}\"]\n"
        "  b:\n"
        "    exec_command: b\n"
        "    input: *shared\n"
        "    exec_args: [\"{word}\"]\n"
        "jobs:\n"
        "  run:\n"
        "    stages: [{task_class: a}, {task_class: b}]\n");
    const shoal_task_class_t *task = shoal_defs_task_class (defs, "b");
    assert_int_equal (task->input_count, 1);
    assert_string_equal (task->inputs[0].name, "word");
    shoal_defs_destroy (&defs);
}

static void
test_unknown_ids_are_not_found (void **state)
{
    shoal_defs_t *defs = s_parse_ok (ECHO_TASK SAY_JOB);
    assert_null (shoal_defs_task_class (defs, "say"));
    assert_null (shoal_defs_task_class (defs, ""));
    assert_null (shoal_defs_job_class (defs, "echo"));
    assert_null (shoal_defs_job_class_at (defs, 1));
    shoal_defs_destroy (&defs);
}

static void
test_input_find_by_name (void **state)
{
    shoal_input_t inputs[2] = { { .name = "a" }, { .name = "b" } };
    assert_ptr_equal (shoal_input_find (inputs, 2, "b"), inputs + 1);
    assert_null (shoal_input_find (inputs, 2, "c"));
    assert_null (shoal_input_find (inputs, 0, "a"));
}

static void
test_source_names (void **state)
{
    assert_string_equal (shoal_source_name (SHOAL_SOURCE_PARAMETER),
                         "parameter");
    assert_string_equal (shoal_source_name (SHOAL_SOURCE_ENVIRONMENT),
                         "environment");
    assert_string_equal (shoal_source_name (SHOAL_SOURCE_HTTP_HEADER),
                         "http-header");
}

static void
test_destroy_accepts_null_and_nulls_the_pointer (void **state)
{
    shoal_defs_destroy (NULL);
    shoal_defs_t *defs = NULL;
    shoal_defs_destroy (&defs);
    defs = s_parse_ok (ECHO_TASK SAY_JOB);
    shoal_defs_destroy (&defs);
    assert_null (defs);
    shoal_defs_destroy (&defs);
}

// --------------------------------------------------------- file handling

static void
test_missing_file_names_the_path (void **state)
{
    shoal_error_t err;
    assert_null (shoal_defs_load (SHOAL_FIXTURES "/no-such-file.yaml", &err));
    assert_int_equal (err.code, SHOAL_EIO);
    assert_non_null (strstr (err.message, "no-such-file.yaml: cannot open"));
}

static void
test_file_over_16_mib_is_refused (void **state)
{
    char path[] = "/tmp/shoal-test-defs-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (ftruncate (fd, 16 * 1024 * 1024 + 1), 0);
    close (fd);
    shoal_error_t err;
    assert_null (shoal_defs_load (path, &err));
    unlink (path);
    assert_int_equal (err.code, SHOAL_ELIMIT);
    assert_non_null (strstr (err.message, "larger than 16 MiB"));
}

static void
test_buffer_over_16_mib_is_refused (void **state)
{
    shoal_error_t err;
    assert_null (shoal_defs_parse ("", 16 * 1024 * 1024 + 1, "big.yaml",
                                   &err));
    assert_int_equal (err.code, SHOAL_ELIMIT);
}

// --------------------------------------------------------------- refusals

static void
test_empty_document_is_refused (void **state)
{
    s_assert_refused ("# nothing but a comment\n", SHOAL_EINVAL, 1, 1, "",
                      "empty document");
}

static void
test_top_level_must_be_a_mapping (void **state)
{
    s_assert_refused ("- tasks\n- jobs\n", SHOAL_EINVAL, 1, 1, "",
                      "top level must be a mapping");
}

static void
test_missing_jobs_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK, SHOAL_EINVAL, 1, 1, "jobs",
                      "no 'jobs:' mapping");
}

static void
test_empty_jobs_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK "jobs: {}\n", SHOAL_EINVAL, 7, 1, "jobs",
                      "'jobs' is empty");
}

static void
test_unknown_task_class_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "    - task_class: ehco\n",               // line 11
                      SHOAL_EINVAL, 11, 19, "ehco",
                      "unknown task_class 'ehco' in stage 2 of job 'say'");
}

static void
test_unknown_spawn_task_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "      spawn_task: spawner\n",            // line 11
                      SHOAL_EINVAL, 11, 19, "spawner",
                      "unknown spawn_task 'spawner' in stage 1 of job 'say'");
}

static void
test_stage_without_task_class_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    stages:\n"
                      "    - name: first\n"                     // line 10
                      "      job_failed_on_error: false\n",
                      SHOAL_EINVAL, 10, 7, "task_class",
                      "stage 1 of job 'say' has no task_class");
}

static void
test_undeclared_placeholder_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input:\n"
                      "      word: {source: parameter}\n"
                      "    exec_args:\n"
                      "    - \"{word}\"\n"
                      "    - \"--to={wrod}\"\n"                 // line 8
                      SAY_JOB,
                      SHOAL_EINVAL, 8, 7, "wrod",
                      "placeholder '{wrod}' in exec_args of task 'echo' is "
                      "not one of its inputs");
}

static void
test_undeclared_flow_mapping_placeholder_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  get:\n"
                      "    exec_command: wget\n"
                      "    exec_args:\n"
                      "    - {url}\n"                           // line 5
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 7, "url",
                      "placeholder '{url}' in exec_args of task 'get'");
}

static void
test_unknown_source_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input:\n"
                      "      word: {source: query}\n"           // line 5
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 22, "source",
                      "unknown source 'query' for input 'word' of task "
                      "'echo' (expected parameter, environment or "
                      "http-header)");
}

static void
test_input_without_source_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input:\n"
                      "      word:\n"                           // line 5
                      "        description: a word\n"
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 7, "source",
                      "input 'word' of task 'echo' has no source");
}

static void
test_http_header_without_key_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    input:\n"
                      "      auth:\n"                           // line 10
                      "        source: http-header\n"
                      "    stages:\n"
                      "    - task_class: echo\n",
                      SHOAL_EINVAL, 10, 7, "key",
                      "input 'auth' of job 'say' comes from an http-header "
                      "but has no 'key'");
}

static void
test_key_on_a_parameter_input_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    input:\n"
                      "      auth:\n"
                      "        source: parameter\n"
                      "        key: Authorization\n"            // line 12
                      "    stages:\n"
                      "    - task_class: echo\n",
                      SHOAL_EINVAL, 12, 9, "key",
                      "only applies to http-header inputs");
}

static void
test_http_header_input_cannot_be_unsecret (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    input:\n"
                      "      auth:\n"
                      "        source: http-header\n"
                      "        key: Authorization\n"
                      "        secret: false\n"                 // line 13
                      "    stages:\n"
                      "    - task_class: echo\n",
                      SHOAL_EINVAL, 13, 17, "secret", "always secret");
}

static void
test_empty_default_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input:\n"
                      "      word:\n"
                      "        source: parameter\n"
                      "        default: ~\n"                    // line 7
                      SAY_JOB,
                      SHOAL_EINVAL, 7, 18, "default",
                      "'default' of input 'word' of task 'echo' is empty");
}

static void
test_missing_exec_command_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"                               // line 2
                      "    name: Echo\n"
                      SAY_JOB,
                      SHOAL_EINVAL, 2, 3, "exec_command",
                      "task 'echo' has no exec_command");
}

static void
test_job_without_stages_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"                                // line 8
                      "    name: Say\n",
                      SHOAL_EINVAL, 8, 3, "stages",
                      "job 'say' has no stages");
}

static void
test_job_with_empty_stages_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    stages: []\n",                       // line 9
                      SHOAL_EINVAL, 9, 13, "stages",
                      "'stages' of job 'say' is empty");
}

static void
test_duplicate_task_id_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "  echo:\n"                               // line 4
                      "    exec_command: printf\n"
                      SAY_JOB,
                      SHOAL_EINVAL, 4, 3, "echo",
                      "duplicate task 'echo' (first defined at line 2)");
}

static void
test_duplicate_job_id_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "  say:\n"                                // line 11
                      "    stages: [{task_class: echo}]\n",
                      SHOAL_EINVAL, 11, 3, "say",
                      "duplicate job 'say' (first defined at line 8)");
}

static void
test_duplicate_input_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input:\n"
                      "      word: {source: parameter}\n"
                      "      word: {source: environment}\n"     // line 6
                      SAY_JOB,
                      SHOAL_EINVAL, 6, 7, "word",
                      "duplicate input 'word' in task 'echo'");
}

static void
test_duplicate_key_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_command: printf\n"              // line 4
                      SAY_JOB,
                      SHOAL_EINVAL, 4, 5, "exec_command",
                      "duplicate key 'exec_command' in task 'echo'");
}

static void
test_exec_args_mapping_is_a_type_error (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_args:\n"
                      "      one: two\n"                        // line 5
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 7, "exec_args",
                      "'exec_args' of task 'echo' must be a sequence of "
                      "strings, not a mapping");
}

static void
test_mapping_with_a_value_in_exec_args_is_a_type_error (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input: {url: {source: parameter}}\n"
                      "    exec_args:\n"
                      "    - {url: x}\n"                        // line 6
                      SAY_JOB,
                      SHOAL_EINVAL, 6, 7, "exec_args",
                      "argument 1 of task 'echo' must be a string, not a "
                      "mapping");
}

static void
test_sequence_in_exec_args_is_a_type_error (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_args: [a, [b, c]]\n"            // line 4
                      SAY_JOB,
                      SHOAL_EINVAL, 4, 20, "exec_args",
                      "argument 2 of task 'echo' must be a string, not a "
                      "sequence");
}

static void
test_empty_argument_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_args:\n"
                      "    - a\n"
                      "    - ~\n"                               // line 6
                      SAY_JOB,
                      SHOAL_EINVAL, 6, 7, "exec_args",
                      "argument 2 of task 'echo' is empty");
}

static void
test_non_boolean_job_failed_on_error_is_a_type_error (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "      job_failed_on_error: maybe\n",     // line 11
                      SHOAL_EINVAL, 11, 28, "job_failed_on_error",
                      "'job_failed_on_error' of stage 1 of job 'say' must be "
                      "a boolean (true or false), not 'maybe'");
}

static void
test_stages_mapping_is_a_type_error (void **state)
{
    s_assert_refused (ECHO_TASK
                      "jobs:\n"
                      "  say:\n"
                      "    stages: {task_class: echo}\n",       // line 9
                      SHOAL_EINVAL, 9, 13, "stages",
                      "'stages' of job 'say' must be a sequence of stages, "
                      "not a mapping");
}

static void
test_exec_command_sequence_is_a_type_error (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: [echo, hi]\n"          // line 3
                      SAY_JOB,
                      SHOAL_EINVAL, 3, 19, "exec_command",
                      "'exec_command' of task 'echo' must be a program "
                      "name, not a sequence");
}

static void
test_unknown_key_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_arg: [hi]\n"                    // line 4
                      SAY_JOB,
                      SHOAL_EINVAL, 4, 5, "exec_arg",
                      "unknown key 'exec_arg' in task 'echo' (expected one "
                      "of: name, description, input, exec_command, "
                      "exec_args, timeout, retries)");
}

static void
test_unknown_top_level_key_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "job:\n"                                  // line 11
                      "  other: {}\n",
                      SHOAL_EINVAL, 11, 1, "job",
                      "unknown key 'job' in the top level");
}

static void
test_invalid_task_id_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  \"echo it\":\n"                        // line 2
                      "    exec_command: echo\n"
                      SAY_JOB,
                      SHOAL_EINVAL, 2, 3, "echo it",
                      "task id 'echo it' may only hold A-Z a-z 0-9 _ . -");
}

static void
test_yaml_syntax_error_gives_libyaml_position (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_args: [a, b\n"
                      "jobs:\n",                                // line 5
                      SHOAL_EINVAL, 5, 5, "",
                      "did not find expected ',' or ']' (while parsing a "
                      "flow sequence at line 4, column 16)");
}

static void
test_invalid_utf8_gives_its_position (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: ech\xff\n",            // line 3
                      SHOAL_EINVAL, 3, 22, "", "invalid");
}

static void
test_second_document_is_refused (void **state)
{
    s_assert_refused (ECHO_TASK SAY_JOB
                      "---\n"                                   // line 11
                      "tasks: {}\n",
                      SHOAL_EINVAL, 11, 1, "",
                      "more than one YAML document");
}

static void
test_bad_template_syntax_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    exec_args:\n"
                      "    - \"a}b\"\n"                         // line 5
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 7, "exec_args",
                      "bad template in argument 1 of task 'echo': lone '}'");
}

static void
test_unterminated_placeholder_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: echo\n"
                      "    input: {word: {source: parameter}}\n"
                      "    exec_args: [\"--to={word\"]\n"       // line 5
                      SAY_JOB,
                      SHOAL_EINVAL, 5, 17, "exec_args",
                      "unterminated placeholder");
}

static void
test_placeholder_in_exec_command_is_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  echo:\n"
                      "    exec_command: \"run-{word}\"\n"      // line 3
                      "    input: {word: {source: parameter}}\n"
                      SAY_JOB,
                      SHOAL_EINVAL, 3, 19, "exec_command",
                      "exec_command cannot hold placeholders: '{word}' in "
                      "task 'echo'");
}

static void
test_timeout_and_retries_load (void **state)
{
    shoal_defs_t *defs = s_parse_ok ("tasks:\n"
                                     "  t:\n"
                                     "    exec_command: sleep\n"
                                     "    timeout: 1.5\n"
                                     "    retries: 3\n"
                                     "  u:\n"
                                     "    exec_command: true\n"
                                     "jobs:\n"
                                     "  j:\n"
                                     "    stages: [{task_class: t}]\n");
    const shoal_task_class_t *t = shoal_defs_task_class (defs, "t");
    assert_int_equal (t->timeout_ms, 1500);
    assert_int_equal (t->retries, 3);
    const shoal_task_class_t *u = shoal_defs_task_class (defs, "u");
    assert_int_equal (u->timeout_ms, 0);
    assert_int_equal (u->retries, 0);
    shoal_defs_destroy (&defs);
}

static void
test_bad_timeout_and_retries_are_refused (void **state)
{
    s_assert_refused ("tasks:\n"
                      "  t:\n"
                      "    exec_command: sleep\n"
                      "    timeout: soon\n"
                      "jobs: {j: {stages: [{task_class: t}]}}\n",
                      SHOAL_EINVAL, 4, 14, "timeout",
                      "'timeout' of task 't' must be a number");
    s_assert_refused ("tasks:\n"
                      "  t:\n"
                      "    exec_command: sleep\n"
                      "    timeout: -1\n"
                      "jobs: {j: {stages: [{task_class: t}]}}\n",
                      SHOAL_EINVAL, 4, 14, "timeout", "not '-1'");
    s_assert_refused ("tasks:\n"
                      "  t:\n"
                      "    exec_command: sleep\n"
                      "    retries: 1.5\n"
                      "jobs: {j: {stages: [{task_class: t}]}}\n",
                      SHOAL_EINVAL, 4, 14, "retries", "must be an integer");
    s_assert_refused ("tasks:\n"
                      "  t:\n"
                      "    exec_command: sleep\n"
                      "    retries: \"2\"\n"
                      "jobs: {j: {stages: [{task_class: t}]}}\n",
                      SHOAL_EINVAL, 4, 14, "retries", "must be an integer");
    const char *huge[] = { "1e300", "inf", "-inf", "nan", "1e-300" };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char yaml[256];
        snprintf (yaml, sizeof yaml,
                  "tasks:\n"
                  "  t:\n"
                  "    exec_command: sleep\n"
                  "    retries: %s\n"
                  "jobs: {j: {stages: [{task_class: t}]}}\n", huge[i]);
        s_assert_refused (yaml, SHOAL_EINVAL, 4, 14, "retries",
                          "must be an integer");
        snprintf (yaml, sizeof yaml,
                  "tasks:\n"
                  "  t:\n"
                  "    exec_command: sleep\n"
                  "    timeout: %s\n"
                  "jobs: {j: {stages: [{task_class: t}]}}\n", huge[i]);
        s_assert_refused (yaml, SHOAL_EINVAL, 4, 14, "timeout",
                          "must be a number");
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_spec_example_loads_tasks_in_file_order),
        cmocka_unit_test (test_spec_example_download_args_are_verbatim),
        cmocka_unit_test (test_spec_example_export_task_inputs_and_sources),
        cmocka_unit_test (test_spec_example_task_without_input_has_none),
        cmocka_unit_test (test_spec_example_job_stages),
        cmocka_unit_test (test_spec_example_http_header_input_is_secret),
        cmocka_unit_test (test_spec_example_as_json),
        cmocka_unit_test (test_absent_keys_take_their_defaults),
        cmocka_unit_test (test_default_values_load),
        cmocka_unit_test (test_secret_defaults_are_masked_in_json),
        cmocka_unit_test (test_double_braces_are_literals),
        cmocka_unit_test (test_literal_block_argument_loses_trailing_newlines),
        cmocka_unit_test (test_plain_numbers_and_booleans_are_arguments),
        cmocka_unit_test (test_aliases_share_definitions),
        cmocka_unit_test (test_unknown_ids_are_not_found),
        cmocka_unit_test (test_input_find_by_name),
        cmocka_unit_test (test_source_names),
        cmocka_unit_test (test_destroy_accepts_null_and_nulls_the_pointer),
        cmocka_unit_test (test_missing_file_names_the_path),
        cmocka_unit_test (test_file_over_16_mib_is_refused),
        cmocka_unit_test (test_buffer_over_16_mib_is_refused),
        cmocka_unit_test (test_empty_document_is_refused),
        cmocka_unit_test (test_top_level_must_be_a_mapping),
        cmocka_unit_test (test_missing_jobs_is_refused),
        cmocka_unit_test (test_empty_jobs_is_refused),
        cmocka_unit_test (test_unknown_task_class_is_refused),
        cmocka_unit_test (test_unknown_spawn_task_is_refused),
        cmocka_unit_test (test_stage_without_task_class_is_refused),
        cmocka_unit_test (test_undeclared_placeholder_is_refused),
        cmocka_unit_test (test_undeclared_flow_mapping_placeholder_is_refused),
        cmocka_unit_test (test_unknown_source_is_refused),
        cmocka_unit_test (test_input_without_source_is_refused),
        cmocka_unit_test (test_http_header_without_key_is_refused),
        cmocka_unit_test (test_key_on_a_parameter_input_is_refused),
        cmocka_unit_test (test_http_header_input_cannot_be_unsecret),
        cmocka_unit_test (test_empty_default_is_refused),
        cmocka_unit_test (test_missing_exec_command_is_refused),
        cmocka_unit_test (test_job_without_stages_is_refused),
        cmocka_unit_test (test_job_with_empty_stages_is_refused),
        cmocka_unit_test (test_duplicate_task_id_is_refused),
        cmocka_unit_test (test_duplicate_job_id_is_refused),
        cmocka_unit_test (test_duplicate_input_is_refused),
        cmocka_unit_test (test_duplicate_key_is_refused),
        cmocka_unit_test (test_exec_args_mapping_is_a_type_error),
        cmocka_unit_test (test_mapping_with_a_value_in_exec_args_is_a_type_error),
        cmocka_unit_test (test_sequence_in_exec_args_is_a_type_error),
        cmocka_unit_test (test_empty_argument_is_refused),
        cmocka_unit_test (test_non_boolean_job_failed_on_error_is_a_type_error),
        cmocka_unit_test (test_stages_mapping_is_a_type_error),
        cmocka_unit_test (test_exec_command_sequence_is_a_type_error),
        cmocka_unit_test (test_unknown_key_is_refused),
        cmocka_unit_test (test_unknown_top_level_key_is_refused),
        cmocka_unit_test (test_invalid_task_id_is_refused),
        cmocka_unit_test (test_yaml_syntax_error_gives_libyaml_position),
        cmocka_unit_test (test_invalid_utf8_gives_its_position),
        cmocka_unit_test (test_second_document_is_refused),
        cmocka_unit_test (test_bad_template_syntax_is_refused),
        cmocka_unit_test (test_unterminated_placeholder_is_refused),
        cmocka_unit_test (test_placeholder_in_exec_command_is_refused),
        cmocka_unit_test (test_timeout_and_retries_load),
        cmocka_unit_test (test_bad_timeout_and_retries_are_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
