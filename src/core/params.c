/*  params.c: checking a job's params on submission and masking secrets.

    Everything here is about input from a REST request, so every refusal
    names the field it is about: the HTTP layer turns err->field into the
    problem's `field` member.                                              */
#include "shoal/params.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool
shoal_params_scalar_string (json_t *value, char *buf, size_t size)
{
    switch (json_typeof (value)) {
        case JSON_STRING:
            snprintf (buf, size, "%s", json_string_value (value));
            return true;
        case JSON_INTEGER:
            snprintf (buf, size, "%" JSON_INTEGER_FORMAT,
                      json_integer_value (value));
            return true;
        case JSON_REAL:
            snprintf (buf, size, "%.17g", json_real_value (value));
            return true;
        case JSON_TRUE:
            snprintf (buf, size, "true");
            return true;
        case JSON_FALSE:
            snprintf (buf, size, "false");
            return true;
        default:
            return false;
    }
}

/*  Sets `name` in `params` to the string form of `value`.                 */
static int
s_set_scalar (json_t *params, const char *name, json_t *value,
              shoal_error_t *err)
{
    char field[160];
    snprintf (field, sizeof field, "params.%s", name);
    if (json_is_string (value)) {
        if (json_string_length (value) > SHOAL_PARAM_MAX_VALUE)
            return shoal_error_set (err, SHOAL_EINVAL, field,
                                    "param '%s' is longer than %d bytes",
                                    name, SHOAL_PARAM_MAX_VALUE);
        if (strlen (json_string_value (value)) != json_string_length (value))
            return shoal_error_set (err, SHOAL_EINVAL, field,
                                    "param '%s' holds a NUL byte", name);
        json_object_set (params, name, value);
        return 0;
    }
    char text[64];
    if (!shoal_params_scalar_string (value, text, sizeof text))
        return shoal_error_set (err, SHOAL_EINVAL, field,
                                "param '%s' must be a string, number or "
                                "boolean", name);
    json_object_set_new (params, name, json_string (text));
    return 0;
}

json_t *
shoal_params_build (const shoal_job_class_t *job, json_t *given,
                    shoal_header_fn header, void *header_arg,
                    shoal_error_t *err)
{
    if (given && !json_is_object (given)) {
        shoal_error_set (err, SHOAL_EINVAL, "params",
                         "params must be a JSON object");
        return NULL;
    }
    json_t *params = json_object ();
    if (!params) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    /* Every given key must be declared and come from the request body. */
    const char *name;
    json_t *value;
    json_object_foreach (given, name, value) {
        char field[160];
        snprintf (field, sizeof field, "params.%s", name);
        const shoal_input_t *input
            = shoal_input_find (job->inputs, job->input_count, name);
        if (!input) {
            shoal_error_set (err, SHOAL_EINVAL, field,
                             "job '%s' has no input '%s'", job->id, name);
            goto fail;
        }
        if (input->source != SHOAL_SOURCE_PARAMETER) {
            shoal_error_set (err, SHOAL_EINVAL, field,
                             "input '%s' comes from the %s%s%s, not from "
                             "params", name, shoal_source_name (input->source),
                             input->key ? " " : "",
                             input->key ? input->key : "");
            goto fail;
        }
        if (s_set_scalar (params, name, value, err))
            goto fail;
    }
    /* Then headers, defaults, and what is still missing. Environment
       inputs are resolved by the worker, so they are not checked here. */
    for (size_t i = 0; i < job->input_count; i++) {
        const shoal_input_t *input = &job->inputs[i];
        if (input->source == SHOAL_SOURCE_ENVIRONMENT)
            continue;
        if (input->source == SHOAL_SOURCE_HTTP_HEADER) {
            const char *text = header ? header (input->key, header_arg) : NULL;
            if (!text && input->default_value)
                text = input->default_value;
            if (!text) {
                char field[160];
                snprintf (field, sizeof field, "header %s", input->key);
                shoal_error_set (err, SHOAL_EINVAL, field,
                                 "input '%s' needs the request header '%s'",
                                 input->name, input->key);
                goto fail;
            }
            json_object_set_new (params, input->name, json_string (text));
            continue;
        }
        if (json_object_get (params, input->name))
            continue;
        if (input->default_value) {
            json_object_set_new (params, input->name,
                                 json_string (input->default_value));
            continue;
        }
        char field[160];
        snprintf (field, sizeof field, "params.%s", input->name);
        shoal_error_set (err, SHOAL_EINVAL, field,
                         "job '%s' needs param '%s'", job->id, input->name);
        goto fail;
    }
    return params;
fail:
    json_decref (params);
    return NULL;
}

bool
shoal_params_is_secret (const shoal_job_class_t *job, const char *name)
{
    const shoal_input_t *input
        = shoal_input_find (job->inputs, job->input_count, name);
    return input
           && (input->secret || input->source == SHOAL_SOURCE_HTTP_HEADER);
}

json_t *
shoal_params_masked (const shoal_job_class_t *job, json_t *params)
{
    json_t *copy = json_object ();
    const char *name;
    json_t *value;
    json_object_foreach (params, name, value) {
        if (shoal_params_is_secret (job, name))
            json_object_set_new (copy, name, json_string ("***"));
        else
            json_object_set (copy, name, value);
    }
    return copy;
}
