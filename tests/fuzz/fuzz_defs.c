/*  fuzz_defs.c: the definitions loader on arbitrary bytes.

    The definitions file is operator input, but it is also the one parser
    that walks a whole libyaml document, aliases included, so it gets the
    widest fuzzing. Every input is parsed with shoal_defs_parse; a refusal
    must carry a positioned message, and an accepted file must hold the
    invariants defs.h promises (checked below, bounds included) and
    convert to JSON.                                                       */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "shoal/defs.h"
#include "shoal/template.h"

#define FILENAME "fuzz.yaml"

/*  A refusal names the file, a 1-based position and a code.              */
static void
s_check_refusal (const shoal_error_t *err)
{
    FUZZ_CHECK (err->code < 0, "refused with code %d", err->code);
    FUZZ_CHECK (memchr (err->message, '\0', sizeof err->message),
                "message is not terminated");
    FUZZ_CHECK (memchr (err->field, '\0', sizeof err->field),
                "field is not terminated");
    FUZZ_CHECK (strncmp (err->message, FILENAME ":", strlen (FILENAME ":"))
                    == 0,
                "message lacks the file name: '%s'", err->message);
    FUZZ_CHECK (err->line >= 1 && err->column >= 1,
                "position %d:%d in '%s'", err->line, err->column,
                err->message);
}

/*  The placeholder callback for accepted exec_args: each must name an
    input of the task.                                                     */
static int
s_declared (const char *name, size_t len, size_t offset, void *arg,
            shoal_error_t *err)
{
    const shoal_task_class_t *task = arg;
    for (size_t i = 0; i < task->input_count; i++)
        if (strlen (task->inputs[i].name) == len
            && memcmp (task->inputs[i].name, name, len) == 0)
            return 0;
    FUZZ_CHECK (0, "task '%s' accepted placeholder '%.*s' with no input",
                task->id, (int) len, name);
    return SHOAL_EINVAL;
}

static void
s_check_inputs (const char *owner, const shoal_input_t *inputs, size_t count,
                json_t *json)
{
    FUZZ_CHECK (json_is_array (json) && json_array_size (json) == count,
                "%s: inputs JSON does not list %zu inputs", owner, count);
    for (size_t i = 0; i < count; i++) {
        const shoal_input_t *input = inputs + i;
        FUZZ_CHECK (input->name && *input->name && input->description,
                    "%s: input %zu lacks a name or description", owner, i);
        FUZZ_CHECK (shoal_input_find (inputs, count, input->name) == input,
                    "%s: input name '%s' is not unique", owner, input->name);
        if (input->source == SHOAL_SOURCE_HTTP_HEADER)
            FUZZ_CHECK (input->key && *input->key && input->secret,
                        "%s: http-header input '%s' without key or secret",
                        owner, input->name);
        else
            FUZZ_CHECK (!input->key, "%s: input '%s' of source %s has a key",
                        owner, input->name, shoal_source_name (input->source));
        json_t *item = json_array_get (json, i);
        json_t *fallback = json_object_get (item, "default");
        FUZZ_CHECK (!input->default_value == !fallback,
                    "%s: input '%s' default not mirrored in JSON", owner,
                    input->name);
        if (fallback && input->secret)
            FUZZ_CHECK (strcmp (json_string_value (fallback), "***") == 0,
                        "%s: secret default of '%s' shown in JSON", owner,
                        input->name);
    }
}

static void
s_check_accepted (const shoal_defs_t *defs)
{
    json_t *json = shoal_defs_to_json (defs);
    FUZZ_CHECK (json, "shoal_defs_to_json returned NULL");
    json_t *tasks = json_object_get (json, "tasks");
    json_t *jobs = json_object_get (json, "jobs");
    size_t task_count = shoal_defs_task_class_count (defs);
    size_t job_count = shoal_defs_job_class_count (defs);
    FUZZ_CHECK (task_count >= 1 && job_count >= 1, "%zu tasks, %zu jobs",
                task_count, job_count);
    FUZZ_CHECK (json_array_size (tasks) == task_count
                    && json_array_size (jobs) == job_count,
                "JSON lists %zu/%zu tasks, %zu/%zu jobs",
                json_array_size (tasks), task_count, json_array_size (jobs),
                job_count);

    for (size_t i = 0; i < task_count; i++) {
        const shoal_task_class_t *task = shoal_defs_task_class_at (defs, i);
        FUZZ_CHECK (task && task->id && task->name && task->description,
                    "task %zu is incomplete", i);
        FUZZ_CHECK (shoal_defs_task_class (defs, task->id) == task,
                    "lookup of task '%s' finds another class", task->id);
        FUZZ_CHECK (task->exec_command && *task->exec_command,
                    "task '%s' has no exec_command", task->id);
        FUZZ_CHECK (task->timeout_ms >= 0
                        && task->timeout_ms
                               <= (int64_t) SHOAL_TASK_MAX_TIMEOUT_S * 1000
                        && task->retries <= SHOAL_TASK_MAX_RETRIES,
                    "task '%s' has timeout %lld ms, %u retries", task->id,
                    (long long) task->timeout_ms, (unsigned) task->retries);
        FUZZ_CHECK (task->exec_argc == 0 || task->exec_args,
                    "task '%s' has %zu args and no array", task->id,
                    task->exec_argc);
        for (size_t a = 0; a < task->exec_argc; a++) {
            shoal_error_t err;
            int rc = shoal_template_scan (task->exec_args[a], s_declared,
                                          (void *) task, &err);
            FUZZ_CHECK (rc == 0, "task '%s' accepted a bad template '%s': %s",
                        task->id, task->exec_args[a], err.message);
        }
        s_check_inputs (task->id, task->inputs, task->input_count,
                        json_object_get (json_array_get (tasks, i), "inputs"));
    }
    for (size_t i = 0; i < job_count; i++) {
        const shoal_job_class_t *job = shoal_defs_job_class_at (defs, i);
        FUZZ_CHECK (job && job->id && job->name && job->description,
                    "job %zu is incomplete", i);
        FUZZ_CHECK (shoal_defs_job_class (defs, job->id) == job,
                    "lookup of job '%s' finds another class", job->id);
        FUZZ_CHECK (job->stage_count >= 1, "job '%s' has no stages", job->id);
        for (size_t s = 0; s < job->stage_count; s++) {
            const shoal_stage_def_t *stage = job->stages + s;
            FUZZ_CHECK (stage->name && stage->task_class,
                        "stage %zu of job '%s' is incomplete", s, job->id);
            FUZZ_CHECK (shoal_defs_task_class (defs, stage->task_class->id)
                            == stage->task_class,
                        "stage %zu of job '%s' points outside the tasks", s,
                        job->id);
        }
        s_check_inputs (job->id, job->inputs, job->input_count,
                        json_object_get (json_array_get (jobs, i), "inputs"));
    }
    FUZZ_CHECK (!shoal_defs_task_class (defs, "") && !shoal_defs_job_class (defs, ""),
                "an empty id names a class");

    char *text = json_dumps (json, JSON_COMPACT);
    FUZZ_CHECK (text, "definitions JSON does not serialise");
    free (text);
    json_decref (json);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    shoal_error_t err;
    shoal_defs_t *defs
        = shoal_defs_parse ((const char *) data, size, FILENAME, &err);
    if (!defs) {
        s_check_refusal (&err);
        return 0;
    }
    FUZZ_CHECK (err.code == SHOAL_OK, "accepted with code %d", err.code);
    s_check_accepted (defs);
    shoal_defs_destroy (&defs);
    FUZZ_CHECK (defs == NULL, "destroy did not clear the pointer");
    return 0;
}
