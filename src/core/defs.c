/*  defs.c: loading and validating the task and job definitions file.

    The file is read once at start-up, by the controller only, so this code
    is written for clear refusals rather than speed: every check a running
    engine would otherwise trip over hours later (a typo in a key, a stage
    naming a task that does not exist, a placeholder no input can fill)
    happens here, and the message says file:line:column and what is wrong.

    libyaml's document API does the parsing; its marks are 0-based and are
    reported 1-based. libyaml resolves no schema, so "null", "true" and
    "8080" all arrive as text; this file decides per key what it accepts.
    Positions point at the node that is wrong: the key for unknown and
    duplicate keys, the value for wrong types and values, and the owner
    (the task or job id, the input name, the stage) for a missing key.

    err->field holds the name that is wrong when a name is at fault (an
    unknown or duplicate key, a duplicate id, an unknown task class, an
    undeclared placeholder), else the key whose value is wrong or missing
    ("exec_command", "stages", "source", ...).

    Two traps of the spec's own example are accepted on purpose:

    - `- {url}` in exec_args is, to YAML, a flow mapping with the key "url"
      and no value. A one-key mapping with an empty value is read as the
      argument "{url}"; any other mapping is a type error.
    - `- >` folded (and `- |` literal) scalars end with a newline. For
      arguments written as block scalars trailing newlines are dropped;
      everything else, quote characters included, is kept as written:
      there is no shell to remove quotes.

    exec_args stay templates; exec_command is checked to hold no
    placeholder and stored with `{{` / `}}` already turned into braces.

    Bounds: the file (16 MiB), inputs per class, arguments per task and
    stages per job (1024 each), ids and input names (64 bytes), and the
    total copied out of the document (128 MiB), which is what stops a
    small file of nested aliases from expanding into gigabytes.          */
#include "shoal/defs.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "shoal/template.h"

#define MAX_FILE_BYTES  (16 * 1024 * 1024)
#define MAX_NAME_BYTES  64
#define MAX_INPUTS      1024
#define MAX_ARGS        1024
#define MAX_STAGES      1024
#define MAX_COPIED      (128 * 1024 * 1024)

/*  Loaded definitions. Invariant: the index arrays hold every class once,
    sorted by id, and point into `tasks` / `jobs`, which never move once
    allocated (stages point into `tasks` too).                             */
struct shoal_defs {
    shoal_task_class_t *tasks;        /* in file order                     */
    size_t task_count;
    shoal_job_class_t *jobs;          /* in file order                     */
    size_t job_count;
    shoal_task_class_t **task_index;  /* sorted by id, for bsearch         */
    shoal_job_class_t **job_index;    /* sorted by id, for bsearch         */
    char *source;                     /* the text parsed, kept for the
                                         state store (shoal_defs_source)   */
    size_t source_len;
};

/*  State of one load. Nothing here outlives shoal_defs_parse.             */
typedef struct {
    yaml_document_t *doc;             /* the parsed document               */
    const char *file;                 /* name used in messages             */
    shoal_error_t *err;               /* the caller's, may be NULL         */
    shoal_defs_t *defs;               /* being built                       */
    size_t copied;                    /* bytes copied so far, vs MAX_COPIED*/
} s_ctx_t;

// ------------------------------------------------------------------ errors

static int
s_mark_number (size_t zero_based)
{
    return zero_based >= (size_t) INT_MAX ? INT_MAX : (int) zero_based + 1;
}

/*  Fills ctx->err at the start of `node` (1:1 when NULL), returns `code`. */
static int s_fail (s_ctx_t *ctx, int code, const yaml_node_t *node,
                   const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static int
s_fail (s_ctx_t *ctx, int code, const yaml_node_t *node, const char *field,
        const char *fmt, ...)
{
    char message[sizeof ctx->err->message];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    int line = node ? s_mark_number (node->start_mark.line) : 1;
    int column = node ? s_mark_number (node->start_mark.column) : 1;
    return shoal_error_set_at (ctx->err, code, ctx->file, line, column, field,
                               "%s", message);
}

// ------------------------------------------------------------- YAML nodes

static yaml_node_t *
s_node (s_ctx_t *ctx, int index)
{
    return yaml_document_get_node (ctx->doc, index);
}

static const char *
s_text (const yaml_node_t *node)
{
    return (const char *) node->data.scalar.value;
}

/*  True for what YAML calls null: an empty value, ~ or null, unquoted.   */
static bool
s_is_null (const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return false;
    if (node->tag && strcmp ((const char *) node->tag, YAML_NULL_TAG) == 0)
        return true;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *text = s_text (node);
    return !*text || strcmp (text, "~") == 0 || strcmp (text, "null") == 0
        || strcmp (text, "Null") == 0 || strcmp (text, "NULL") == 0;
}

/*  How a node is described in "must be X, not Y" messages.                */
static const char *
s_kind (const yaml_node_t *node)
{
    if (s_is_null (node))
        return "empty";
    switch (node->type) {
        case YAML_MAPPING_NODE:  return "a mapping";
        case YAML_SEQUENCE_NODE: return "a sequence";
        default:                 return "a string";
    }
}

static bool
s_has_nul (const yaml_node_t *node)
{
    return strlen (s_text (node)) != node->data.scalar.length;
}

static size_t
s_pair_count (const yaml_node_t *mapping)
{
    return (size_t) (mapping->data.mapping.pairs.top
                     - mapping->data.mapping.pairs.start);
}

static size_t
s_item_count (const yaml_node_t *sequence)
{
    return (size_t) (sequence->data.sequence.items.top
                     - sequence->data.sequence.items.start);
}

// ---------------------------------------------------------------- copying

/*  Charges `bytes` to the load; aliases let a small file ask for a lot.  */
static int
s_charge (s_ctx_t *ctx, const yaml_node_t *node, size_t bytes)
{
    if (bytes > MAX_COPIED - ctx->copied)
        return s_fail (ctx, SHOAL_ELIMIT, node, NULL,
                       "definitions expand to more than %d MiB "
                       "(too many aliases?)", MAX_COPIED / (1024 * 1024));
    ctx->copied += bytes;
    return 0;
}

static int
s_copy_text (s_ctx_t *ctx, const yaml_node_t *node, const char *text,
             size_t len, char **out)
{
    int rc = s_charge (ctx, node, len + 1);
    if (rc)
        return rc;
    *out = malloc (len + 1);
    if (!*out)
        return s_fail (ctx, SHOAL_ENOMEM, node, NULL, "out of memory");
    memcpy (*out, text, len);
    (*out)[len] = '\0';
    return 0;
}

/*  A zeroed array of `count` elements, charged to the load.               */
static int
s_alloc_array (s_ctx_t *ctx, const yaml_node_t *node, size_t count,
               size_t size, void **out)
{
    int rc = s_charge (ctx, node, count * size);
    if (rc)
        return rc;
    *out = calloc (count ? count : 1, size);
    if (!*out)
        return s_fail (ctx, SHOAL_ENOMEM, node, NULL, "out of memory");
    return 0;
}

// ------------------------------------------------------------------ names

static bool
s_is_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/*  Ids and input names: the placeholder alphabet, so that any of them
    can be written as {name}, and short enough to quote in a message.      */
static int
s_check_name (s_ctx_t *ctx, const yaml_node_t *key, const char *kind,
              const char *owner)
{
    if (key->type != YAML_SCALAR_NODE)
        return s_fail (ctx, SHOAL_EINVAL, key, NULL,
                       "%s%s%s must be a string, not %s", kind,
                       owner ? " of " : "", owner ? owner : "", s_kind (key));
    const char *text = s_text (key);
    size_t len = key->data.scalar.length;
    bool good = len >= 1 && len <= MAX_NAME_BYTES;
    for (size_t i = 0; good && i < len; i++)
        good = s_is_name_char (text[i]);
    if (!good)
        return s_fail (ctx, SHOAL_EINVAL, key, text,
                       "%s '%.80s'%s%s may only hold A-Z a-z 0-9 _ . - "
                       "(1 to %d bytes)", kind, text, owner ? " of " : "",
                       owner ? owner : "", MAX_NAME_BYTES);
    return 0;
}

/*  One key of a mapping, for the duplicate check.                         */
typedef struct {
    const char *text;                 /* the key's bytes                   */
    size_t len;                       /* its length, NULs included         */
    size_t position;                  /* index of its pair in the mapping  */
} s_key_t;

static int
s_key_cmp (const void *a, const void *b)
{
    const s_key_t *x = a;
    const s_key_t *y = b;
    int diff = memcmp (x->text, y->text, x->len < y->len ? x->len : y->len);
    if (diff)
        return diff;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->position < y->position ? -1 : x->position > y->position;
}

/*  Refuses a mapping of ids whose keys repeat, at the first key (in file
    order) that repeats an earlier one. Sorting keeps this O(N log N) for
    a tasks: mapping of any size.                                          */
static int
s_check_unique (s_ctx_t *ctx, const yaml_node_t *mapping, const char *kind,
                const char *owner)
{
    size_t count = s_pair_count (mapping);
    if (count < 2)
        return 0;
    s_key_t *keys = calloc (count, sizeof *keys);
    if (!keys)
        return s_fail (ctx, SHOAL_ENOMEM, mapping, NULL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *key = s_node (ctx, mapping->data.mapping.pairs.start[i].key);
        if (key->type != YAML_SCALAR_NODE) {
            free (keys);
            return s_fail (ctx, SHOAL_EINVAL, key, NULL,
                           "%s names must be strings, not %s", kind,
                           s_kind (key));
        }
        keys[i] = (s_key_t) { s_text (key), key->data.scalar.length, i };
    }
    qsort (keys, count, sizeof *keys, s_key_cmp);
    size_t repeat = count;          //  pair index of the first repeat
    size_t first = 0;               //  pair index of what it repeats
    size_t run = 0;                 //  start of the current run of equals
    for (size_t i = 1; i < count; i++) {
        if (keys[i].len != keys[run].len
            || memcmp (keys[i].text, keys[run].text, keys[i].len)) {
            run = i;
            continue;
        }
        if (keys[i].position < repeat) {
            repeat = keys[i].position;
            first = keys[run].position;
        }
    }
    free (keys);
    if (repeat == count)
        return 0;
    yaml_node_t *key = s_node (ctx, mapping->data.mapping.pairs.start[repeat].key);
    yaml_node_t *earlier = s_node (ctx, mapping->data.mapping.pairs.start[first].key);
    return s_fail (ctx, SHOAL_EINVAL, key, s_text (key),
                   "duplicate %s '%.80s'%s%s (first defined at line %d)",
                   kind, s_text (key), owner ? " in " : "", owner ? owner : "",
                   s_mark_number (earlier->start_mark.line));
}

// --------------------------------------------------------- keyed mappings

/*  Largest number of keys any definition mapping accepts.                 */
#define MAX_FIELDS 8

/*  The keys found in one definition mapping, by their index in the table
    of accepted keys; NULL where a key is absent.                          */
typedef struct {
    yaml_node_t *key[MAX_FIELDS];     /* the key node, for positions       */
    yaml_node_t *value[MAX_FIELDS];   /* its value                         */
} s_fields_t;

/*  Collects the keys of `mapping` into `fields`, refusing keys outside
    `names` (a NULL-terminated table) and keys given twice. `what` names
    the mapping in messages ("task 'download'").                           */
static int
s_read_fields (s_ctx_t *ctx, const yaml_node_t *mapping,
               const char *const *names, const char *what, s_fields_t *fields)
{
    memset (fields, 0, sizeof *fields);
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = s_node (ctx, pair->key);
        if (key->type != YAML_SCALAR_NODE)
            return s_fail (ctx, SHOAL_EINVAL, key, NULL,
                           "keys of %s must be strings, not %s", what,
                           s_kind (key));
        size_t index = 0;
        while (names[index] && strcmp (names[index], s_text (key)))
            index++;
        if (!names[index] || s_has_nul (key)) {
            char expected[160] = "";
            for (size_t i = 0; names[i]; i++)
                snprintf (expected + strlen (expected),
                          sizeof expected - strlen (expected), "%s%s",
                          i ? ", " : "", names[i]);
            return s_fail (ctx, SHOAL_EINVAL, key, s_text (key),
                           "unknown key '%.80s' in %s (expected one of: %s)",
                           s_text (key), what, expected);
        }
        if (fields->key[index])
            return s_fail (ctx, SHOAL_EINVAL, key, names[index],
                           "duplicate key '%s' in %s (first at line %d)",
                           names[index], what,
                           s_mark_number (fields->key[index]->start_mark.line));
        fields->key[index] = key;
        fields->value[index] = s_node (ctx, pair->value);
    }
    return 0;
}

/*  Reads an optional string: NULL in *out when absent or empty. Numbers
    and booleans are strings too: YAML gives their text.                   */
static int
s_opt_string (s_ctx_t *ctx, const s_fields_t *fields, int index,
              const char *name, const char *what, char **out)
{
    yaml_node_t *value = fields->value[index];
    *out = NULL;
    if (!value || s_is_null (value))
        return 0;
    if (value->type != YAML_SCALAR_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, name,
                       "'%s' of %s must be a string, not %s", name, what,
                       s_kind (value));
    if (s_has_nul (value))
        return s_fail (ctx, SHOAL_EINVAL, value, name,
                       "'%s' of %s holds a NUL byte", name, what);
    return s_copy_text (ctx, value, s_text (value), value->data.scalar.length,
                        out);
}

/*  Like s_opt_string, with "" for an absent value.                        */
static int
s_opt_text (s_ctx_t *ctx, const s_fields_t *fields, int index,
            const char *name, const char *what, char **out)
{
    int rc = s_opt_string (ctx, fields, index, name, what, out);
    if (!rc && !*out)
        rc = s_copy_text (ctx, fields->value[index], "", 0, out);
    return rc;
}

/*  Reads an optional boolean. Only YAML 1.2's true/false spellings are
    taken, unquoted: "yes", "on" or "maybe" are refused, not guessed.      */
static int
s_opt_bool (s_ctx_t *ctx, const s_fields_t *fields, int index,
            const char *name, const char *what, bool fallback, bool *out)
{
    yaml_node_t *value = fields->value[index];
    *out = fallback;
    if (!value)
        return 0;
    if (value->type == YAML_SCALAR_NODE
        && value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *text = s_text (value);
        if (!strcmp (text, "true") || !strcmp (text, "True")
            || !strcmp (text, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp (text, "false") || !strcmp (text, "False")
            || !strcmp (text, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    if (value->type == YAML_SCALAR_NODE && !s_is_null (value))
        return s_fail (ctx, SHOAL_EINVAL, value, name,
                       "'%s' of %s must be a boolean (true or false), "
                       "not '%.80s'", name, what, s_text (value));
    return s_fail (ctx, SHOAL_EINVAL, value, name,
                   "'%s' of %s must be a boolean (true or false), not %s",
                   name, what, s_kind (value));
}

/*  Reads an optional plain number in [min, max] into *out (fallback when
    absent). `integer` refuses fractions. Quoted numbers are refused: a
    string where a number belongs is a typo worth naming.                 */
static int
s_opt_number (s_ctx_t *ctx, const s_fields_t *fields, int index,
              const char *name, const char *what, bool integer, double min,
              double max, double fallback, double *out)
{
    yaml_node_t *value = fields->value[index];
    *out = fallback;
    if (!value)
        return 0;
    if (value->type == YAML_SCALAR_NODE
        && value->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && !s_is_null (value)) {
        const char *text = s_text (value);
        char *end;
        errno = 0;
        double number = strtod (text, &end);
        /* Range first: casting a huge or infinite double to an integer
           is undefined behaviour. */
        if (!errno && end != text && !*end && number >= min && number <= max
            && (!integer || number == (double) (long long) number)) {
            *out = number;
            return 0;
        }
    }
    return s_fail (ctx, SHOAL_EINVAL, value, name,
                   "'%s' of %s must be %s from %g to %g, not '%.80s'", name,
                   what, integer ? "an integer" : "a number", min, max,
                   value->type == YAML_SCALAR_NODE ? s_text (value)
                                                   : s_kind (value));
}

// ----------------------------------------------------------------- inputs

enum { INPUT_DESCRIPTION, INPUT_SOURCE, INPUT_KEY, INPUT_DEFAULT,
       INPUT_SECRET };
static const char *const s_input_keys[] = {
    "description", "source", "key", "default", "secret", NULL
};

static const struct {
    const char *name;
    shoal_source_t source;
} s_sources[] = {
    { "parameter",   SHOAL_SOURCE_PARAMETER },
    { "environment", SHOAL_SOURCE_ENVIRONMENT },
    { "http-header", SHOAL_SOURCE_HTTP_HEADER },
};

const char *
shoal_source_name (shoal_source_t source)
{
    for (size_t i = 0; i < sizeof s_sources / sizeof s_sources[0]; i++)
        if (s_sources[i].source == source)
            return s_sources[i].name;
    return "unknown";
}

/*  RFC 9110 token characters: what a header name may hold.                */
static bool
s_is_header_name (const char *text)
{
    if (!*text)
        return false;
    for (; *text; text++)
        if (!s_is_name_char (*text) && !strchr ("!#$%&'*+^`|~", *text))
            return false;
    return true;
}

static int
s_parse_source (s_ctx_t *ctx, const s_fields_t *fields, const yaml_node_t *name,
                const char *what, shoal_input_t *input)
{
    yaml_node_t *value = fields->value[INPUT_SOURCE];
    if (!value || s_is_null (value))
        return s_fail (ctx, SHOAL_EINVAL, value ? value : name, "source",
                       "%s has no source (parameter, environment or "
                       "http-header)", what);
    if (value->type != YAML_SCALAR_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, "source",
                       "'source' of %s must be a string, not %s", what,
                       s_kind (value));
    for (size_t i = 0; i < sizeof s_sources / sizeof s_sources[0]; i++)
        if (!s_has_nul (value) && !strcmp (s_text (value), s_sources[i].name)) {
            input->source = s_sources[i].source;
            return 0;
        }
    return s_fail (ctx, SHOAL_EINVAL, value, "source",
                   "unknown source '%.80s' for %s (expected parameter, "
                   "environment or http-header)", s_text (value), what);
}

/*  The header key: required for http-header inputs, refused elsewhere so
    that a wrong `source` does not pass silently.                          */
static int
s_parse_header_key (s_ctx_t *ctx, const s_fields_t *fields,
                    const yaml_node_t *name, const char *what,
                    shoal_input_t *input)
{
    int rc = s_opt_string (ctx, fields, INPUT_KEY, "key", what, &input->key);
    if (rc)
        return rc;
    if (input->source != SHOAL_SOURCE_HTTP_HEADER) {
        if (fields->key[INPUT_KEY])
            return s_fail (ctx, SHOAL_EINVAL, fields->key[INPUT_KEY], "key",
                           "'key' of %s only applies to http-header inputs",
                           what);
        return 0;
    }
    if (!input->key)
        return s_fail (ctx, SHOAL_EINVAL,
                       fields->value[INPUT_KEY] ? fields->value[INPUT_KEY]
                                                : name,
                       "key", "%s comes from an http-header but has no "
                       "'key' naming the header", what);
    if (!s_is_header_name (input->key))
        return s_fail (ctx, SHOAL_EINVAL, fields->value[INPUT_KEY], "key",
                       "'key' of %s must be an HTTP header name, not "
                       "'%.80s'", what, input->key);
    return 0;
}

static int
s_parse_input (s_ctx_t *ctx, const yaml_node_t *name, const yaml_node_t *value,
               const char *owner, shoal_input_t *input)
{
    int rc = s_check_name (ctx, name, "input name", owner);
    if (!rc)
        rc = s_copy_text (ctx, name, s_text (name), name->data.scalar.length,
                          &input->name);
    if (rc)
        return rc;
    char what[256];
    snprintf (what, sizeof what, "input '%s' of %s", input->name, owner);
    if (value->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, input->name,
                       "%s must be a mapping with at least 'source', not %s",
                       what, s_kind (value));
    s_fields_t fields;
    rc = s_read_fields (ctx, value, s_input_keys, what, &fields);
    if (!rc)
        rc = s_opt_text (ctx, &fields, INPUT_DESCRIPTION, "description", what,
                         &input->description);
    if (!rc)
        rc = s_parse_source (ctx, &fields, name, what, input);
    if (!rc)
        rc = s_parse_header_key (ctx, &fields, name, what, input);
    if (rc)
        return rc;

    //  An empty `default:` is more likely a slip than a wish for "".
    yaml_node_t *fallback = fields.value[INPUT_DEFAULT];
    if (s_is_null (fallback))
        return s_fail (ctx, SHOAL_EINVAL, fallback, "default",
                       "'default' of %s is empty (write default: \"\" for "
                       "an empty string)", what);
    rc = s_opt_string (ctx, &fields, INPUT_DEFAULT, "default", what,
                       &input->default_value);
    if (!rc)
        rc = s_opt_bool (ctx, &fields, INPUT_SECRET, "secret", what, false,
                         &input->secret);
    if (rc)
        return rc;
    if (input->source == SHOAL_SOURCE_HTTP_HEADER) {
        if (fields.value[INPUT_SECRET] && !input->secret)
            return s_fail (ctx, SHOAL_EINVAL, fields.value[INPUT_SECRET],
                           "secret", "%s comes from an http-header and is "
                           "always secret", what);
        input->secret = true;
    }
    return 0;
}

/*  Reads an `input:` mapping (absent or empty: no inputs).                */
static int
s_parse_inputs (s_ctx_t *ctx, const yaml_node_t *value, const char *owner,
                shoal_input_t **inputs_p, size_t *count_p)
{
    if (!value || s_is_null (value))
        return 0;
    if (value->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, "input",
                       "'input' of %s must be a mapping of input names, "
                       "not %s", owner, s_kind (value));
    size_t count = s_pair_count (value);
    if (count > MAX_INPUTS)
        return s_fail (ctx, SHOAL_ELIMIT, value, "input",
                       "%s has more than %d inputs", owner, MAX_INPUTS);
    int rc = s_check_unique (ctx, value, "input", owner);
    if (!rc)
        rc = s_alloc_array (ctx, value, count, sizeof **inputs_p,
                            (void **) inputs_p);
    if (rc)
        return rc;
    *count_p = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = value->data.mapping.pairs.start + i;
        rc = s_parse_input (ctx, s_node (ctx, pair->key),
                            s_node (ctx, pair->value), owner, *inputs_p + i);
        if (rc)
            return rc;
    }
    return 0;
}

const shoal_input_t *
shoal_input_find (const shoal_input_t *inputs, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp (inputs[i].name, name))
            return inputs + i;
    return NULL;
}

// ------------------------------------------------------------------ tasks

enum { TASK_NAME, TASK_DESCRIPTION, TASK_INPUT, TASK_EXEC_COMMAND,
       TASK_EXEC_ARGS, TASK_TIMEOUT, TASK_RETRIES };
static const char *const s_task_keys[] = {
    "name", "description", "input", "exec_command", "exec_args", "timeout",
    "retries", NULL
};

/*  What a placeholder check needs to know while a template is scanned.   */
typedef struct {
    s_ctx_t *ctx;
    const shoal_task_class_t *task;   /* owner of the template             */
    const yaml_node_t *node;          /* where to point an error           */
    bool refused;                     /* the callback set the error        */
} s_scan_t;

/*  exec_command is the program itself: no input may choose it.            */
static int
s_refuse_placeholder (const char *name, size_t len, size_t offset, void *arg,
                      shoal_error_t *err)
{
    s_scan_t *scan = arg;
    scan->refused = true;
    return s_fail (scan->ctx, SHOAL_EINVAL, scan->node, "exec_command",
                   "exec_command cannot hold placeholders: '{%.*s}' in task "
                   "'%s' (write '{{' and '}}' for literal braces)",
                   (int) (len > 80 ? 80 : len), name, scan->task->id);
}

static int
s_check_placeholder (const char *name, size_t len, size_t offset, void *arg,
                     shoal_error_t *err)
{
    s_scan_t *scan = arg;
    const shoal_task_class_t *task = scan->task;
    for (size_t i = 0; i < task->input_count; i++)
        if (strlen (task->inputs[i].name) == len
            && !memcmp (task->inputs[i].name, name, len))
            return 0;
    scan->refused = true;
    char field[sizeof err->field];
    snprintf (field, sizeof field, "%.*s",
              (int) (len < sizeof field ? len : sizeof field - 1), name);
    return s_fail (scan->ctx, SHOAL_EINVAL, scan->node, field,
                   "placeholder '{%.*s}' in exec_args of task '%s' is not "
                   "one of its inputs", (int) (len > 80 ? 80 : len), name,
                   task->id);
}

static const char *
s_no_value (const char *name, void *arg)
{
    return NULL;
}

static int
s_parse_command (s_ctx_t *ctx, const s_fields_t *fields,
                 const yaml_node_t *id, const char *what,
                 shoal_task_class_t *task)
{
    yaml_node_t *value = fields->value[TASK_EXEC_COMMAND];
    if (!value)
        return s_fail (ctx, SHOAL_EINVAL, id, "exec_command",
                       "%s has no exec_command", what);
    if (value->type != YAML_SCALAR_NODE || s_is_null (value))
        return s_fail (ctx, SHOAL_EINVAL, value, "exec_command",
                       "'exec_command' of %s must be a program name, not %s",
                       what, s_kind (value));
    if (!*s_text (value))
        return s_fail (ctx, SHOAL_EINVAL, value, "exec_command",
                       "'exec_command' of %s is an empty string", what);
    if (s_has_nul (value))
        return s_fail (ctx, SHOAL_EINVAL, value, "exec_command",
                       "'exec_command' of %s holds a NUL byte", what);
    s_scan_t scan = { ctx, task, value, false };
    shoal_error_t syntax;
    shoal_error_clear (&syntax);
    int rc = shoal_template_scan (s_text (value), s_refuse_placeholder, &scan,
                                  &syntax);
    if (rc && scan.refused)
        return rc;
    if (rc)
        return s_fail (ctx, SHOAL_EINVAL, value, "exec_command",
                       "bad template in exec_command of %s: %s", what,
                       syntax.message);
    int rc2 = s_charge (ctx, value, value->data.scalar.length + 1);
    if (rc2)
        return rc2;
    task->exec_command = shoal_template_fill (s_text (value), s_no_value,
                                              NULL, &syntax);
    if (!task->exec_command)
        return s_fail (ctx, syntax.code, value, "exec_command",
                       "exec_command of %s: %s", what, syntax.message);
    return 0;
}

/*  Turns one exec_args item into its template text (see the top).        */
static int
s_parse_arg (s_ctx_t *ctx, const yaml_node_t *item, size_t number,
             const char *what, char **out)
{
    if (item->type == YAML_SCALAR_NODE) {
        if (s_is_null (item))
            return s_fail (ctx, SHOAL_EINVAL, item, "exec_args",
                           "argument %zu of %s is empty (write \"\" for an "
                           "empty argument)", number, what);
        if (s_has_nul (item))
            return s_fail (ctx, SHOAL_EINVAL, item, "exec_args",
                           "argument %zu of %s holds a NUL byte", number,
                           what);
        size_t len = item->data.scalar.length;
        yaml_scalar_style_t style = item->data.scalar.style;
        if (style == YAML_LITERAL_SCALAR_STYLE
            || style == YAML_FOLDED_SCALAR_STYLE)
            while (len && s_text (item)[len - 1] == '\n')
                len--;
        return s_copy_text (ctx, item, s_text (item), len, out);
    }
    if (item->type == YAML_MAPPING_NODE && s_pair_count (item) == 1) {
        yaml_node_pair_t *pair = item->data.mapping.pairs.start;
        yaml_node_t *key = s_node (ctx, pair->key);
        yaml_node_t *value = s_node (ctx, pair->value);
        if (key->type == YAML_SCALAR_NODE && !s_has_nul (key)
            && s_is_null (value)) {
            size_t len = key->data.scalar.length;
            int rc = s_charge (ctx, item, len + 3);
            if (rc)
                return rc;
            if (!(*out = malloc (len + 3)))
                return s_fail (ctx, SHOAL_ENOMEM, item, NULL, "out of memory");
            snprintf (*out, len + 3, "{%s}", s_text (key));
            return 0;
        }
    }
    return s_fail (ctx, SHOAL_EINVAL, item, "exec_args",
                   "argument %zu of %s must be a string, not %s (only "
                   "{name} alone is read as a placeholder; quote anything "
                   "else)", number, what, s_kind (item));
}

static int
s_parse_args (s_ctx_t *ctx, const s_fields_t *fields, const char *what,
              shoal_task_class_t *task)
{
    yaml_node_t *value = fields->value[TASK_EXEC_ARGS];
    if (!value || s_is_null (value))
        return 0;
    if (value->type != YAML_SEQUENCE_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, "exec_args",
                       "'exec_args' of %s must be a sequence of strings, "
                       "not %s", what, s_kind (value));
    size_t count = s_item_count (value);
    if (count > MAX_ARGS)
        return s_fail (ctx, SHOAL_ELIMIT, value, "exec_args",
                       "%s has more than %d arguments", what, MAX_ARGS);
    int rc = s_alloc_array (ctx, value, count, sizeof *task->exec_args,
                            (void **) &task->exec_args);
    if (rc)
        return rc;
    task->exec_argc = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = s_node (ctx, value->data.sequence.items.start[i]);
        rc = s_parse_arg (ctx, item, i + 1, what, task->exec_args + i);
        if (rc)
            return rc;
        s_scan_t scan = { ctx, task, item, false };
        shoal_error_t syntax;
        shoal_error_clear (&syntax);
        rc = shoal_template_scan (task->exec_args[i], s_check_placeholder,
                                  &scan, &syntax);
        if (rc && scan.refused)
            return rc;
        if (rc)
            return s_fail (ctx, SHOAL_EINVAL, item, "exec_args",
                           "bad template in argument %zu of %s: %s", i + 1,
                           what, syntax.message);
    }
    return 0;
}

static int
s_parse_task (s_ctx_t *ctx, const yaml_node_t *id, const yaml_node_t *value,
              shoal_task_class_t *task)
{
    int rc = s_check_name (ctx, id, "task id", NULL);
    if (!rc)
        rc = s_copy_text (ctx, id, s_text (id), id->data.scalar.length,
                          &task->id);
    if (rc)
        return rc;
    char what[96];
    snprintf (what, sizeof what, "task '%s'", task->id);
    if (value->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, task->id,
                       "%s must be a mapping with at least 'exec_command', "
                       "not %s", what, s_kind (value));
    s_fields_t fields;
    rc = s_read_fields (ctx, value, s_task_keys, what, &fields);
    if (!rc)
        rc = s_opt_string (ctx, &fields, TASK_NAME, "name", what, &task->name);
    if (!rc && !task->name)
        rc = s_copy_text (ctx, id, task->id, strlen (task->id), &task->name);
    if (!rc)
        rc = s_opt_text (ctx, &fields, TASK_DESCRIPTION, "description", what,
                         &task->description);
    if (!rc)
        rc = s_parse_inputs (ctx, fields.value[TASK_INPUT], what,
                             &task->inputs, &task->input_count);
    if (!rc)
        rc = s_parse_command (ctx, &fields, id, what, task);
    if (!rc)
        rc = s_parse_args (ctx, &fields, what, task);
    double number;
    if (!rc)
        rc = s_opt_number (ctx, &fields, TASK_TIMEOUT, "timeout", what, false,
                           0.001, SHOAL_TASK_MAX_TIMEOUT_S, 0, &number);
    if (!rc)
        task->timeout_ms = (int64_t) (number * 1000 + 0.5);
    if (!rc)
        rc = s_opt_number (ctx, &fields, TASK_RETRIES, "retries", what, true,
                           0, SHOAL_TASK_MAX_RETRIES, 0, &number);
    if (!rc)
        task->retries = (uint32_t) number;
    return rc;
}

static int
s_task_sort_cmp (const void *a, const void *b)
{
    return strcmp ((*(shoal_task_class_t *const *) a)->id,
                   (*(shoal_task_class_t *const *) b)->id);
}

static int
s_task_find_cmp (const void *key, const void *elem)
{
    return strcmp (key, (*(shoal_task_class_t *const *) elem)->id);
}

static int
s_parse_tasks (s_ctx_t *ctx, const yaml_node_t *mapping)
{
    shoal_defs_t *defs = ctx->defs;
    size_t count = s_pair_count (mapping);
    int rc = s_check_unique (ctx, mapping, "task", NULL);
    if (!rc)
        rc = s_alloc_array (ctx, mapping, count, sizeof *defs->tasks,
                            (void **) &defs->tasks);
    if (rc)
        return rc;
    defs->task_count = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = mapping->data.mapping.pairs.start + i;
        rc = s_parse_task (ctx, s_node (ctx, pair->key),
                           s_node (ctx, pair->value), defs->tasks + i);
        if (rc)
            return rc;
    }
    rc = s_alloc_array (ctx, mapping, count, sizeof *defs->task_index,
                        (void **) &defs->task_index);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++)
        defs->task_index[i] = defs->tasks + i;
    qsort (defs->task_index, count, sizeof *defs->task_index,
           s_task_sort_cmp);
    return 0;
}

// ------------------------------------------------------------------- jobs

enum { JOB_NAME, JOB_DESCRIPTION, JOB_INPUT, JOB_STAGES };
static const char *const s_job_keys[] = {
    "name", "description", "input", "stages", NULL
};

enum { STAGE_NAME, STAGE_TASK_CLASS, STAGE_SPAWN_TASK,
       STAGE_JOB_FAILED_ON_ERROR };
static const char *const s_stage_keys[] = {
    "name", "task_class", "spawn_task", "job_failed_on_error", NULL
};

/*  Resolves a stage's reference to a task class. `required` is false for
    spawn_task, which may be absent.                                       */
static int
s_parse_reference (s_ctx_t *ctx, const s_fields_t *fields, int index,
                   const char *name, bool required,
                   const yaml_node_t *stage_node, const char *what,
                   const shoal_task_class_t **out)
{
    yaml_node_t *value = fields->value[index];
    *out = NULL;
    if (!value || s_is_null (value)) {
        if (!required)
            return 0;
        return s_fail (ctx, SHOAL_EINVAL, value ? value : stage_node, name,
                       "%s has no %s", what, name);
    }
    if (value->type != YAML_SCALAR_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, name,
                       "'%s' of %s must be a task id, not %s", name, what,
                       s_kind (value));
    if (!s_has_nul (value))
        *out = shoal_defs_task_class (ctx->defs, s_text (value));
    if (!*out)
        return s_fail (ctx, SHOAL_EINVAL, value, s_text (value),
                       "unknown %s '%.80s' in %s", name, s_text (value), what);
    return 0;
}

static int
s_parse_stage (s_ctx_t *ctx, const yaml_node_t *node, size_t number,
               const char *job_id, shoal_stage_def_t *stage)
{
    char what[128];
    snprintf (what, sizeof what, "stage %zu of job '%s'", number, job_id);
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, node, "stages",
                       "%s must be a mapping with at least 'task_class', "
                       "not %s", what, s_kind (node));
    s_fields_t fields;
    int rc = s_read_fields (ctx, node, s_stage_keys, what, &fields);
    if (!rc)
        rc = s_opt_string (ctx, &fields, STAGE_NAME, "name", what,
                           &stage->name);
    if (!rc && !stage->name) {
        char name[32];
        snprintf (name, sizeof name, "stage %zu", number);
        rc = s_copy_text (ctx, node, name, strlen (name), &stage->name);
    }
    if (!rc)
        rc = s_parse_reference (ctx, &fields, STAGE_TASK_CLASS, "task_class",
                                true, node, what, &stage->task_class);
    if (!rc)
        rc = s_parse_reference (ctx, &fields, STAGE_SPAWN_TASK, "spawn_task",
                                false, node, what, &stage->spawn_task);
    if (!rc)
        rc = s_opt_bool (ctx, &fields, STAGE_JOB_FAILED_ON_ERROR,
                         "job_failed_on_error", what, true,
                         &stage->job_failed_on_error);
    return rc;
}

static int
s_parse_stages (s_ctx_t *ctx, const s_fields_t *fields, const yaml_node_t *id,
                const char *what, shoal_job_class_t *job)
{
    yaml_node_t *value = fields->value[JOB_STAGES];
    if (!value || s_is_null (value))
        return s_fail (ctx, SHOAL_EINVAL, value ? fields->key[JOB_STAGES] : id,
                       "stages", "%s has no stages (a job needs at least "
                       "one)", what);
    if (value->type != YAML_SEQUENCE_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, "stages",
                       "'stages' of %s must be a sequence of stages, not %s",
                       what, s_kind (value));
    size_t count = s_item_count (value);
    if (count == 0)
        return s_fail (ctx, SHOAL_EINVAL, value, "stages",
                       "'stages' of %s is empty (a job needs at least one "
                       "stage)", what);
    if (count > MAX_STAGES)
        return s_fail (ctx, SHOAL_ELIMIT, value, "stages",
                       "%s has more than %d stages", what, MAX_STAGES);
    int rc = s_alloc_array (ctx, value, count, sizeof *job->stages,
                            (void **) &job->stages);
    if (rc)
        return rc;
    job->stage_count = count;
    for (size_t i = 0; i < count; i++) {
        rc = s_parse_stage (ctx, s_node (ctx, value->data.sequence.items.start[i]),
                            i + 1, job->id, job->stages + i);
        if (rc)
            return rc;
    }
    return 0;
}

static int
s_parse_job (s_ctx_t *ctx, const yaml_node_t *id, const yaml_node_t *value,
             shoal_job_class_t *job)
{
    int rc = s_check_name (ctx, id, "job id", NULL);
    if (!rc)
        rc = s_copy_text (ctx, id, s_text (id), id->data.scalar.length,
                          &job->id);
    if (rc)
        return rc;
    char what[96];
    snprintf (what, sizeof what, "job '%s'", job->id);
    if (value->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, job->id,
                       "%s must be a mapping with at least 'stages', not %s",
                       what, s_kind (value));
    s_fields_t fields;
    rc = s_read_fields (ctx, value, s_job_keys, what, &fields);
    if (!rc)
        rc = s_opt_string (ctx, &fields, JOB_NAME, "name", what, &job->name);
    if (!rc && !job->name)
        rc = s_copy_text (ctx, id, job->id, strlen (job->id), &job->name);
    if (!rc)
        rc = s_opt_text (ctx, &fields, JOB_DESCRIPTION, "description", what,
                         &job->description);
    if (!rc)
        rc = s_parse_inputs (ctx, fields.value[JOB_INPUT], what, &job->inputs,
                             &job->input_count);
    if (!rc)
        rc = s_parse_stages (ctx, &fields, id, what, job);
    return rc;
}

static int
s_job_sort_cmp (const void *a, const void *b)
{
    return strcmp ((*(shoal_job_class_t *const *) a)->id,
                   (*(shoal_job_class_t *const *) b)->id);
}

static int
s_job_find_cmp (const void *key, const void *elem)
{
    return strcmp (key, (*(shoal_job_class_t *const *) elem)->id);
}

static int
s_parse_jobs (s_ctx_t *ctx, const yaml_node_t *mapping)
{
    shoal_defs_t *defs = ctx->defs;
    size_t count = s_pair_count (mapping);
    int rc = s_check_unique (ctx, mapping, "job", NULL);
    if (!rc)
        rc = s_alloc_array (ctx, mapping, count, sizeof *defs->jobs,
                            (void **) &defs->jobs);
    if (rc)
        return rc;
    defs->job_count = count;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = mapping->data.mapping.pairs.start + i;
        rc = s_parse_job (ctx, s_node (ctx, pair->key),
                          s_node (ctx, pair->value), defs->jobs + i);
        if (rc)
            return rc;
    }
    rc = s_alloc_array (ctx, mapping, count, sizeof *defs->job_index,
                        (void **) &defs->job_index);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++)
        defs->job_index[i] = defs->jobs + i;
    qsort (defs->job_index, count, sizeof *defs->job_index, s_job_sort_cmp);
    return 0;
}

// -------------------------------------------------------------- top level

enum { TOP_TASKS, TOP_JOBS };
static const char *const s_top_keys[] = { "tasks", "jobs", NULL };

/*  Checks that `tasks:` or `jobs:` is a non-empty mapping.                */
static int
s_check_section (s_ctx_t *ctx, const s_fields_t *fields, int index,
                 const char *name, const char *kind, const yaml_node_t *root)
{
    yaml_node_t *value = fields->value[index];
    if (!value)
        return s_fail (ctx, SHOAL_EINVAL, root, name,
                       "no '%s:' mapping (define at least one %s)", name,
                       kind);
    if (s_is_null (value)
        || (value->type == YAML_MAPPING_NODE && s_pair_count (value) == 0))
        return s_fail (ctx, SHOAL_EINVAL, fields->key[index], name,
                       "'%s' is empty (define at least one %s)", name, kind);
    if (value->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, value, name,
                       "'%s' must be a mapping of %s ids to %ss, not %s",
                       name, kind, kind, s_kind (value));
    return 0;
}

static int
s_parse_root (s_ctx_t *ctx)
{
    yaml_node_t *root = yaml_document_get_root_node (ctx->doc);
    if (!root || s_is_null (root))
        return s_fail (ctx, SHOAL_EINVAL, root, NULL,
                       "empty document (expected a mapping with 'tasks' and "
                       "'jobs')");
    if (root->type != YAML_MAPPING_NODE)
        return s_fail (ctx, SHOAL_EINVAL, root, NULL,
                       "the top level must be a mapping with 'tasks' and "
                       "'jobs', not %s", s_kind (root));
    s_fields_t fields;
    int rc = s_read_fields (ctx, root, s_top_keys, "the top level", &fields);
    if (!rc)
        rc = s_check_section (ctx, &fields, TOP_TASKS, "tasks", "task", root);
    if (!rc)
        rc = s_check_section (ctx, &fields, TOP_JOBS, "jobs", "job", root);
    //  Tasks first wherever they are in the file: stages refer to them.
    if (!rc)
        rc = s_parse_tasks (ctx, fields.value[TOP_TASKS]);
    if (!rc)
        rc = s_parse_jobs (ctx, fields.value[TOP_JOBS]);
    return rc;
}

/*  Describes a libyaml failure as file:line:column: problem.              */
static void
s_yaml_error (const yaml_parser_t *parser, const char *text, size_t len,
              const char *filename, shoal_error_t *err)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return;
    }
    const char *problem = parser->problem ? parser->problem : "syntax error";
    if (parser->error == YAML_READER_ERROR) {
        //  The reader knows a byte offset only: count lines up to it.
        size_t offset = parser->problem_offset < len ? parser->problem_offset
                                                     : len;
        size_t line = 0, line_start = 0;
        for (size_t i = 0; i < offset; i++)
            if (text[i] == '\n') {
                line++;
                line_start = i + 1;
            }
        shoal_error_set_at (err, SHOAL_EINVAL, filename, s_mark_number (line),
                            s_mark_number (offset - line_start), NULL,
                            "%s", problem);
        return;
    }
    int line = s_mark_number (parser->problem_mark.line);
    int column = s_mark_number (parser->problem_mark.column);
    if (parser->context)
        shoal_error_set_at (err, SHOAL_EINVAL, filename, line, column, NULL,
                            "%s (%s at line %d, column %d)", problem,
                            parser->context,
                            s_mark_number (parser->context_mark.line),
                            s_mark_number (parser->context_mark.column));
    else
        shoal_error_set_at (err, SHOAL_EINVAL, filename, line, column, NULL,
                            "%s", problem);
}

/*  Loads the one document of `text`; a second document is refused rather
    than silently ignored.                                                 */
static int
s_load_document (const char *text, size_t len, const char *filename,
                 yaml_document_t *doc, shoal_error_t *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize (&parser))
        return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, len);
    if (!yaml_parser_load (&parser, doc)) {
        s_yaml_error (&parser, text, len, filename, err);
        yaml_parser_delete (&parser);
        return err ? err->code : SHOAL_EINVAL;
    }
    int rc = 0;
    yaml_document_t extra;
    if (!yaml_parser_load (&parser, &extra)) {
        s_yaml_error (&parser, text, len, filename, err);
        rc = err ? err->code : SHOAL_EINVAL;
    }
    else {
        yaml_node_t *root = yaml_document_get_root_node (&extra);
        if (root)
            rc = shoal_error_set_at (err, SHOAL_EINVAL, filename,
                                     s_mark_number (extra.start_mark.line),
                                     s_mark_number (extra.start_mark.column),
                                     NULL, "more than one YAML document "
                                     "(put tasks and jobs in one)");
        yaml_document_delete (&extra);
    }
    yaml_parser_delete (&parser);
    if (rc)
        yaml_document_delete (doc);
    return rc;
}

shoal_defs_t *
shoal_defs_parse (const char *text, size_t len, const char *filename,
                  shoal_error_t *err)
{
    shoal_error_clear (err);
    if (len > MAX_FILE_BYTES) {
        shoal_error_set (err, SHOAL_ELIMIT, NULL,
                         "%s: definitions are larger than %d MiB",
                         filename ? filename : "<input>",
                         MAX_FILE_BYTES / (1024 * 1024));
        return NULL;
    }
    yaml_document_t doc;
    if (s_load_document (text, len, filename, &doc, err))
        return NULL;
    shoal_defs_t *self = calloc (1, sizeof *self);
    if (!self) {
        yaml_document_delete (&doc);
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    s_ctx_t ctx = { .doc = &doc, .file = filename, .err = err, .defs = self };
    int rc = s_parse_root (&ctx);
    yaml_document_delete (&doc);
    if (!rc) {
        self->source = malloc (len ? len : 1);
        if (self->source) {
            memcpy (self->source, text, len);
            self->source_len = len;
        }
        else
            rc = shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    }
    if (rc)
        shoal_defs_destroy (&self);
    return self;
}

shoal_defs_t *
shoal_defs_load (const char *path, shoal_error_t *err)
{
    shoal_error_clear (err);
    FILE *file = fopen (path, "rb");
    if (!file) {
        shoal_error_set (err, SHOAL_EIO, path, "%s: cannot open: %s", path,
                         strerror (errno));
        return NULL;
    }
    //  Read one byte past the bound to tell "at the bound" from "over".
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc (cap);
    int rc = text ? 0 : SHOAL_ENOMEM;
    while (!rc) {
        if (len == cap) {
            if (cap > MAX_FILE_BYTES) {
                rc = SHOAL_ELIMIT;
                break;
            }
            cap = cap * 2 > MAX_FILE_BYTES + 1 ? MAX_FILE_BYTES + 1 : cap * 2;
            char *bigger = realloc (text, cap);
            if (!bigger) {
                rc = SHOAL_ENOMEM;
                break;
            }
            text = bigger;
        }
        size_t got = fread (text + len, 1, cap - len, file);
        len += got;
        if (got == 0) {
            if (ferror (file))
                rc = SHOAL_EIO;
            break;
        }
    }
    int saved_errno = errno;
    fclose (file);
    shoal_defs_t *self = NULL;
    if (rc == SHOAL_ELIMIT || (!rc && len > MAX_FILE_BYTES))
        shoal_error_set (err, SHOAL_ELIMIT, path,
                         "%s: definitions file is larger than %d MiB", path,
                         MAX_FILE_BYTES / (1024 * 1024));
    else if (rc == SHOAL_EIO)
        shoal_error_set (err, SHOAL_EIO, path, "%s: cannot read: %s", path,
                         strerror (saved_errno));
    else if (rc)
        shoal_error_set (err, rc, NULL, "out of memory");
    else
        self = shoal_defs_parse (text, len, path, err);
    free (text);
    return self;
}

// -------------------------------------------------------- access, cleanup

static void
s_inputs_free (shoal_input_t *inputs, size_t count)
{
    for (size_t i = 0; inputs && i < count; i++) {
        free (inputs[i].name);
        free (inputs[i].description);
        free (inputs[i].key);
        free (inputs[i].default_value);
    }
    free (inputs);
}

void
shoal_defs_destroy (shoal_defs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_defs_t *self = *self_p;
    for (size_t i = 0; self->tasks && i < self->task_count; i++) {
        shoal_task_class_t *task = self->tasks + i;
        free (task->id);
        free (task->name);
        free (task->description);
        free (task->exec_command);
        for (size_t a = 0; task->exec_args && a < task->exec_argc; a++)
            free (task->exec_args[a]);
        free (task->exec_args);
        s_inputs_free (task->inputs, task->input_count);
    }
    for (size_t i = 0; self->jobs && i < self->job_count; i++) {
        shoal_job_class_t *job = self->jobs + i;
        free (job->id);
        free (job->name);
        free (job->description);
        s_inputs_free (job->inputs, job->input_count);
        for (size_t s = 0; job->stages && s < job->stage_count; s++)
            free (job->stages[s].name);
        free (job->stages);
    }
    free (self->tasks);
    free (self->jobs);
    free (self->source);
    free (self->task_index);
    free (self->job_index);
    free (self);
    *self_p = NULL;
}

const char *
shoal_defs_source (const shoal_defs_t *self, size_t *len)
{
    *len = self->source_len;
    return self->source;
}

size_t
shoal_defs_task_class_count (const shoal_defs_t *self)
{
    return self ? self->task_count : 0;
}

const shoal_task_class_t *
shoal_defs_task_class_at (const shoal_defs_t *self, size_t index)
{
    return self && index < self->task_count ? self->tasks + index : NULL;
}

const shoal_task_class_t *
shoal_defs_task_class (const shoal_defs_t *self, const char *id)
{
    if (!self || !id || !self->task_index)
        return NULL;
    shoal_task_class_t **found
        = bsearch (id, self->task_index, self->task_count,
                   sizeof *self->task_index, s_task_find_cmp);
    return found ? *found : NULL;
}

size_t
shoal_defs_job_class_count (const shoal_defs_t *self)
{
    return self ? self->job_count : 0;
}

const shoal_job_class_t *
shoal_defs_job_class_at (const shoal_defs_t *self, size_t index)
{
    return self && index < self->job_count ? self->jobs + index : NULL;
}

const shoal_job_class_t *
shoal_defs_job_class (const shoal_defs_t *self, const char *id)
{
    if (!self || !id || !self->job_index)
        return NULL;
    shoal_job_class_t **found
        = bsearch (id, self->job_index, self->job_count,
                   sizeof *self->job_index, s_job_find_cmp);
    return found ? *found : NULL;
}

// ------------------------------------------------------------------- JSON

static json_t *
s_inputs_to_json (const shoal_input_t *inputs, size_t count)
{
    json_t *array = json_array ();
    for (size_t i = 0; array && i < count; i++) {
        const shoal_input_t *input = inputs + i;
        json_t *item = json_object ();
        json_object_set_new (item, "name", json_string (input->name));
        json_object_set_new (item, "description",
                             json_string (input->description));
        json_object_set_new (item, "source",
                             json_string (shoal_source_name (input->source)));
        if (input->key)
            json_object_set_new (item, "key", json_string (input->key));
        if (input->default_value)
            json_object_set_new (item, "default",
                                 json_string (input->secret
                                                  ? "***"
                                                  : input->default_value));
        json_object_set_new (item, "secret", json_boolean (input->secret));
        json_array_append_new (array, item);
    }
    return array;
}

static json_t *
s_task_to_json (const shoal_task_class_t *task)
{
    json_t *args = json_array ();
    for (size_t i = 0; args && i < task->exec_argc; i++)
        json_array_append_new (args, json_string (task->exec_args[i]));
    json_t *item = json_object ();
    json_object_set_new (item, "id", json_string (task->id));
    json_object_set_new (item, "name", json_string (task->name));
    json_object_set_new (item, "description", json_string (task->description));
    json_object_set_new (item, "command", json_string (task->exec_command));
    json_object_set_new (item, "args", args);
    json_object_set_new (item, "timeout", task->timeout_ms
                                              ? json_real (task->timeout_ms
                                                           / 1000.0)
                                              : json_null ());
    json_object_set_new (item, "retries", json_integer (task->retries));
    json_object_set_new (item, "inputs",
                         s_inputs_to_json (task->inputs, task->input_count));
    return item;
}

static json_t *
s_job_to_json (const shoal_job_class_t *job)
{
    json_t *stages = json_array ();
    for (size_t i = 0; stages && i < job->stage_count; i++) {
        const shoal_stage_def_t *stage = job->stages + i;
        json_t *item = json_object ();
        json_object_set_new (item, "name", json_string (stage->name));
        json_object_set_new (item, "task_class",
                             json_string (stage->task_class->id));
        json_object_set_new (item, "spawn_task",
                             stage->spawn_task
                                 ? json_string (stage->spawn_task->id)
                                 : json_null ());
        json_object_set_new (item, "job_failed_on_error",
                             json_boolean (stage->job_failed_on_error));
        json_array_append_new (stages, item);
    }
    json_t *item = json_object ();
    json_object_set_new (item, "id", json_string (job->id));
    json_object_set_new (item, "name", json_string (job->name));
    json_object_set_new (item, "description", json_string (job->description));
    json_object_set_new (item, "inputs",
                         s_inputs_to_json (job->inputs, job->input_count));
    json_object_set_new (item, "stages", stages);
    return item;
}

json_t *
shoal_defs_to_json (const shoal_defs_t *self)
{
    if (!self)
        return NULL;
    json_t *tasks = json_array ();
    for (size_t i = 0; tasks && i < self->task_count; i++)
        json_array_append_new (tasks, s_task_to_json (self->tasks + i));
    json_t *jobs = json_array ();
    for (size_t i = 0; jobs && i < self->job_count; i++)
        json_array_append_new (jobs, s_job_to_json (self->jobs + i));
    json_t *root = json_object ();
    json_object_set_new (root, "tasks", tasks);
    json_object_set_new (root, "jobs", jobs);
    return root;
}
