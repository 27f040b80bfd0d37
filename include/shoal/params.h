/*  params.h: a job's parameters: checked on submission, masked on output.

    Params are a flat JSON object of string values. On submission they are
    checked against the job class's inputs: every key must be a declared
    `parameter` input, values must be scalars (numbers and booleans are
    turned into strings), `http-header` inputs are taken from the request's
    headers, and missing inputs take their `default` or are an error.      */
#ifndef SHOAL_PARAMS_H
#define SHOAL_PARAMS_H

#include <stdbool.h>
#include <jansson.h>

#include "shoal/defs.h"
#include "shoal/error.h"

/*  Returns the value of request header `name` (case-insensitive), or NULL. */
typedef const char *(*shoal_header_fn) (const char *name, void *arg);

/*  Longest accepted parameter value, in bytes.                            */
#define SHOAL_PARAM_MAX_VALUE (64 * 1024)

/*  Builds the params of a new job of class `job` from the request's
    `given` params (borrowed; may be NULL for none) and headers. Returns a
    new object of strings, or NULL with `err` naming the field
    ("params.<name>" or "header <Key>").                                   */
json_t *shoal_params_build (const shoal_job_class_t *job, json_t *given,
                            shoal_header_fn header, void *header_arg,
                            shoal_error_t *err);

/*  True when input `name` of job class `job` holds a secret.              */
bool shoal_params_is_secret (const shoal_job_class_t *job, const char *name);

/*  A copy of `params` (borrowed) fit for output: the values of the job's
    secret inputs are replaced by "***". New reference.                    */
json_t *shoal_params_masked (const shoal_job_class_t *job, json_t *params);

/*  Converts a JSON scalar to its string form into `buf`; returns false
    for objects, arrays and null.                                          */
bool shoal_params_scalar_string (json_t *value, char *buf, size_t size);

#endif
