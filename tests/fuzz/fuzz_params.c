/*  fuzz_params.c: job params from a request body, as POST /api/v1/jobs
    takes them.

    The input is the text of a request's params member: it is parsed with
    json_loadb and the flags of the HTTP layer (plus JSON_DECODE_ANY, as
    the member may be any value), and a JSON null stands for "no params",
    as there. Should the parser refuse it, it is parsed again
    allowing NUL bytes in strings so that the params check for them is
    reached too. The params are then built for the fixed job class below,
    once with request headers and once without any.

    An accepted result must be an object of strings with one member per
    parameter and http-header input, given values kept as given, and
    shoal_params_masked must hide exactly the secret ones.                 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "shoal/defs.h"
#include "shoal/params.h"

static const char s_yaml[] =
    "tasks:\n"
    "  greet:\n"
    "    exec_command: echo\n"
    "    input:\n"
    "      name: {source: parameter}\n"
    "    exec_args: [\"hello\", \"{name}\"]\n"
    "jobs:\n"
    "  fuzz:\n"
    "    input:\n"
    "      name:  {source: parameter, description: required}\n"
    "      count: {source: parameter, default: \"1\"}\n"
    "      mode:  {source: parameter, default: fast}\n"
    "      token: {source: parameter, secret: true, default: \"\"}\n"
    "      HOME:  {source: environment}\n"
    "      auth:  {source: http-header, key: Authorization}\n"
    "      trace: {source: http-header, key: X-Trace-Id, default: none}\n"
    "      tenant: {source: http-header, key: X-Tenant}\n"
    "    stages:\n"
    "      - task_class: greet\n";

static shoal_defs_t *s_defs;
static const shoal_job_class_t *s_job;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    shoal_error_t err;
    s_defs = shoal_defs_parse (s_yaml, sizeof s_yaml - 1, "params.yaml", &err);
    FUZZ_CHECK (s_defs, "fixed definitions refused: %s", err.message);
    s_job = shoal_defs_job_class (s_defs, "fuzz");
    FUZZ_CHECK (s_job && s_job->input_count == 8, "no job class 'fuzz'");
    return 0;
}

/*  The request's headers: X-Trace-Id is absent, so its default applies.  */
static const char *
s_header (const char *name, void *arg)
{
    if (strcasecmp (name, "Authorization") == 0)
        return "Bearer s3cr3t";
    if (strcasecmp (name, "X-Tenant") == 0)
        return "acme";
    return NULL;
}

static void
s_check_built (json_t *given, json_t *params)
{
    FUZZ_CHECK (json_is_object (params), "params are not an object");
    const char *name;
    json_t *value;
    json_object_foreach (params, name, value) {
        const shoal_input_t *input
            = shoal_input_find (s_job->inputs, s_job->input_count, name);
        FUZZ_CHECK (input, "params hold undeclared '%s'", name);
        FUZZ_CHECK (input->source != SHOAL_SOURCE_ENVIRONMENT,
                    "params hold environment input '%s'", name);
        FUZZ_CHECK (json_is_string (value), "param '%s' is not a string",
                    name);
        FUZZ_CHECK (strlen (json_string_value (value))
                        == json_string_length (value),
                    "param '%s' holds a NUL byte", name);
        FUZZ_CHECK (json_string_length (value) <= SHOAL_PARAM_MAX_VALUE,
                    "param '%s' is %zu bytes", name,
                    json_string_length (value));
        json_t *was = given ? json_object_get (given, name) : NULL;
        if (json_is_string (was))
            FUZZ_CHECK (json_equal (was, value), "param '%s' changed", name);
        else if (was) {
            char text[64];
            FUZZ_CHECK (shoal_params_scalar_string (was, text, sizeof text)
                            && strcmp (text, json_string_value (value)) == 0,
                        "param '%s' is '%s', given another scalar", name,
                        json_string_value (value));
        }
    }
    for (size_t i = 0; i < s_job->input_count; i++) {
        const shoal_input_t *input = s_job->inputs + i;
        bool present = json_object_get (params, input->name) != NULL;
        FUZZ_CHECK (present == (input->source != SHOAL_SOURCE_ENVIRONMENT),
                    "input '%s' %s in the params", input->name,
                    present ? "is" : "is not");
    }

    json_t *masked = shoal_params_masked (s_job, params);
    FUZZ_CHECK (json_object_size (masked) == json_object_size (params),
                "masking changed the member count");
    json_object_foreach (params, name, value) {
        json_t *shown = json_object_get (masked, name);
        if (shoal_params_is_secret (s_job, name))
            FUZZ_CHECK (json_is_string (shown)
                            && strcmp (json_string_value (shown), "***") == 0,
                        "secret '%s' not masked", name);
        else
            FUZZ_CHECK (json_equal (shown, value), "'%s' changed by masking",
                        name);
    }
    json_decref (masked);
}

static void
s_build (json_t *given)
{
    if (json_is_null (given))
        given = NULL;
    for (int with_headers = 0; with_headers < 2; with_headers++) {
        shoal_error_t err;
        json_t *params = shoal_params_build (
            s_job, given, with_headers ? s_header : NULL, NULL, &err);
        if (!params) {
            FUZZ_CHECK (err.code == SHOAL_EINVAL, "refused with code %d: %s",
                        err.code, err.message);
            FUZZ_CHECK (*err.field, "refusal names no field: %s",
                        err.message);
            FUZZ_CHECK (memchr (err.message, '\0', sizeof err.message),
                        "message is not terminated");
            continue;
        }
        FUZZ_CHECK (with_headers, "built without the required headers");
        FUZZ_CHECK (!given || json_is_object (given),
                    "built from params that are not an object");
        s_check_built (given, params);
        json_decref (params);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_error_t json_err;
    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_t *given = json_loadb ((const char *) data, size, flags, &json_err);
    if (!given)
        given = json_loadb ((const char *) data, size, flags | JSON_ALLOW_NUL,
                            &json_err);
    if (!given)
        return 0;
    s_build (given);
    json_decref (given);
    return 0;
}
