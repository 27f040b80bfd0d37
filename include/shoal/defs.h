/*  defs.h: task and job definitions, loaded from one YAML file.

    A definitions file has two mappings, `tasks:` (task classes) and
    `jobs:` (job classes). Loading validates everything a running engine
    would otherwise trip over later, and refuses the file with an error
    naming file:line:column and the offending name.

    The structures below are plain read-only data owned by the
    shoal_defs_t they came from. After loading nothing mutates them, so
    any thread may read them without locks.                                */
#ifndef SHOAL_DEFS_H
#define SHOAL_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "shoal/error.h"

/*  Where the value of an input comes from.                                */
typedef enum {
    SHOAL_SOURCE_PARAMETER = 0,   /* the job's params / a spawn entry      */
    SHOAL_SOURCE_ENVIRONMENT = 1, /* the worker's environment              */
    SHOAL_SOURCE_HTTP_HEADER = 2, /* a header of the submitting request    */
} shoal_source_t;

/*  Returns "parameter", "environment" or "http-header".                   */
const char *shoal_source_name (shoal_source_t source);

/*  One declared input of a task or job class.                             */
typedef struct {
    char *name;           /* the placeholder name, unique within a class   */
    char *description;    /* free text, "" when absent                     */
    shoal_source_t source;
    char *key;            /* header name for http-header, else NULL        */
    char *default_value;  /* used when no value is given; NULL: required   */
    bool secret;          /* masked in responses and logs (http-header
                             inputs are always secret)                     */
} shoal_input_t;

/*  A task class: a command and its argument templates.
    Invariant: every {placeholder} in exec_args names an entry of
    `inputs`; exec_command holds no placeholder.
    exec_args are templates (fill them with shoal_template_fill); block
    scalars in the file have lost their trailing newlines. exec_command is
    final: a `{{` / `}}` in the file is already a single brace here, so it
    is passed to execvp as it is and never filled.                         */
typedef struct {
    char *id;             /* key under `tasks:`                            */
    char *name;           /* display name, defaults to id                  */
    char *description;    /* "" when absent                                */
    char *exec_command;   /* program, looked up in PATH by execvp          */
    char **exec_args;     /* argument templates, exec_argc of them         */
    size_t exec_argc;
    shoal_input_t *inputs;
    size_t input_count;
    int64_t timeout_ms;   /* stop a run after this long; 0: no limit      */
    uint32_t retries;     /* failed runs tried again, with back-off       */
} shoal_task_class_t;

/*  One stage of a job class. Invariant: task_class is never NULL.         */
typedef struct {
    char *name;                          /* defaults to "stage N" (1-based)*/
    const shoal_task_class_t *task_class;/* run once, or once per entry    */
    const shoal_task_class_t *spawn_task;/* writes spawn.json; may be NULL */
    bool job_failed_on_error;            /* default true                   */
} shoal_stage_def_t;

/*  A job class. Invariant: stage_count >= 1.                              */
typedef struct {
    char *id;             /* key under `jobs:`                             */
    char *name;           /* display name, defaults to id                  */
    char *description;    /* "" when absent                                */
    shoal_input_t *inputs;
    size_t input_count;
    shoal_stage_def_t *stages;
    size_t stage_count;
} shoal_job_class_t;

/*  Bounds of a task class's `timeout` (seconds) and `retries`.            */
#define SHOAL_TASK_MAX_TIMEOUT_S (7 * 24 * 3600)
#define SHOAL_TASK_MAX_RETRIES 100

typedef struct shoal_defs shoal_defs_t;

/*  Loads and validates the YAML file at `path`. Returns NULL and fills
    `err` (message starts with "path:line:column: ") on failure.           */
shoal_defs_t *shoal_defs_load (const char *path, shoal_error_t *err);

/*  Same, from a buffer; `filename` is only used in messages.              */
shoal_defs_t *shoal_defs_parse (const char *text, size_t len,
                                const char *filename, shoal_error_t *err);

void shoal_defs_destroy (shoal_defs_t **self_p);

/*  The text the definitions were parsed from (not NUL-terminated): the
    state store keeps it, so that a job is read back after a restart with
    the definitions it was submitted under (store.h).                     */
const char *shoal_defs_source (const shoal_defs_t *self, size_t *len);

/*  Lookups return borrowed pointers, NULL when there is no such class.   */
size_t shoal_defs_task_class_count (const shoal_defs_t *self);
const shoal_task_class_t *shoal_defs_task_class_at (const shoal_defs_t *self,
                                                    size_t index);
const shoal_task_class_t *shoal_defs_task_class (const shoal_defs_t *self,
                                                 const char *id);
size_t shoal_defs_job_class_count (const shoal_defs_t *self);
const shoal_job_class_t *shoal_defs_job_class_at (const shoal_defs_t *self,
                                                  size_t index);
const shoal_job_class_t *shoal_defs_job_class (const shoal_defs_t *self,
                                               const char *id);

/*  Finds an input by name in an array of inputs; NULL when absent.        */
const shoal_input_t *shoal_input_find (const shoal_input_t *inputs,
                                       size_t count, const char *name);

/*  The definitions as JSON for GET /api/v1/definitions (new reference):
    {"tasks": [...], "jobs": [...]}, in file order. Defaults of secret
    inputs are masked.                                                     */
json_t *shoal_defs_to_json (const shoal_defs_t *self);

#endif
