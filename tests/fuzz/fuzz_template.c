/*  fuzz_template.c: template scanning and filling on arbitrary text.

    The input (up to its first NUL) is a template. Values come from a
    lookup that decides by the first letter of the name:

      n, N   no value (NULL)                  e   the empty string
      b      half of SHOAL_TEMPLATE_MAX_ARG   m   exactly SHOAL_TEMPLATE_MAX_ARG
      else   a short hostile value: braces, placeholders, shell syntax

    so that missing inputs, the length bound (on both sides of it) and
    values that look like templates are all reachable. Each result is
    compared with a small model of template.h written here, byte for byte:
    the same code, the same error position or missing name, the same
    filled text, which is never longer than SHOAL_TEMPLATE_MAX_ARG.        */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "shoal/template.h"

#define HOSTILE "{x}}{{y}} {{ }} }{ {z $(id) `id`; rm -rf / \"'\\\n\t%s%n{"
#define MAX_SPOTS 4096

static char *s_half;        /* 'b' values: SHOAL_TEMPLATE_MAX_ARG / 2 + 1  */
static char *s_full;        /* 'm' values: SHOAL_TEMPLATE_MAX_ARG bytes    */

static char *
s_value_of (size_t len)
{
    //  Braces and placeholders inside a value must be copied, not read.
    static const char pattern[] = "{v}}{{w}";
    char *value = malloc (len + 1);
    FUZZ_CHECK (value, "out of memory");
    for (size_t i = 0; i < len; i++)
        value[i] = pattern[i % (sizeof pattern - 1)];
    value[len] = '\0';
    return value;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    s_half = s_value_of (SHOAL_TEMPLATE_MAX_ARG / 2 + 1);
    s_full = s_value_of (SHOAL_TEMPLATE_MAX_ARG);
    return 0;
}

static bool
s_name_char (unsigned char c)
{
    return strchr ("abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", c)
        && c != '\0';
}

static const char *
s_lookup (const char *name, void *arg)
{
    FUZZ_CHECK (*name, "lookup of an empty name");
    for (const char *c = name; *c; c++)
        FUZZ_CHECK (s_name_char ((unsigned char) *c),
                    "lookup of '%s', not a placeholder name", name);
    switch (name[0]) {
        case 'n':
        case 'N': return NULL;
        case 'e': return "";
        case 'b': return s_half;
        case 'm': return s_full;
        default:  return HOSTILE;
    }
}

/*  One placeholder found by the model or reported by a scan.              */
typedef struct {
    size_t offset;          /* byte offset of its `{`                      */
    size_t len;             /* length of the name                          */
} s_spot_t;

/*  What the model expects of a template.                                  */
typedef struct {
    int code;               /* of the fill: 0 or SHOAL_E*                  */
    size_t error_at;        /* EINVAL: 0-based offset of the bad brace     */
    s_spot_t spots[MAX_SPOTS]; /* placeholders before any syntax error     */
    size_t spot_count;
    bool too_many;          /* more spots than the model keeps             */
    const char *missing;    /* ENOTFOUND: the name (in the template)       */
    size_t missing_len;
    char *out;              /* success: the filled text                    */
    size_t out_len;
} s_model_t;

/*  Appends to the model's output unless it passed the bound; returns
    false once it has.                                                     */
static bool
s_emit (s_model_t *model, const char *text, size_t len)
{
    if (len > SHOAL_TEMPLATE_MAX_ARG - model->out_len)
        return false;
    memcpy (model->out + model->out_len, text, len);
    model->out_len += len;
    return true;
}

static void
s_model (const char *tmpl, s_model_t *model)
{
    //  Not a memset: spots[] is large and only spot_count of it is read.
    model->code = 0;
    model->spot_count = 0;
    model->too_many = false;
    model->missing = NULL;
    model->out = NULL;
    model->out_len = 0;
    //  The syntax first, over the whole template.
    size_t i = 0;
    while (tmpl[i]) {
        if ((tmpl[i] == '{' || tmpl[i] == '}') && tmpl[i + 1] == tmpl[i])
            i += 2;
        else if (tmpl[i] == '}') {
            model->code = SHOAL_EINVAL;
            model->error_at = i;
            return;
        }
        else if (tmpl[i] == '{') {
            size_t len = 0;
            while (s_name_char ((unsigned char) tmpl[i + 1 + len]))
                len++;
            if (len == 0 || tmpl[i + 1 + len] != '}') {
                model->code = SHOAL_EINVAL;
                model->error_at = i;
                return;
            }
            else if (model->spot_count == MAX_SPOTS)
                model->too_many = true;
            else
                model->spots[model->spot_count++] = (s_spot_t) { i, len };
            i += len + 2;
        }
        else
            i++;
    }
    if (model->too_many)
        return;

    //  Then left to right: literal text, then the value, each charged to
    //  the bound before the next name is looked up.
    model->out = malloc (SHOAL_TEMPLATE_MAX_ARG + 1);
    FUZZ_CHECK (model->out, "out of memory");
    size_t done = 0;
    for (size_t s = 0; s <= model->spot_count; s++) {
        size_t end = s < model->spot_count ? model->spots[s].offset
                                           : strlen (tmpl);
        for (size_t c = done; c < end; c++) {
            if (!s_emit (model, tmpl + c, 1)) {
                model->code = SHOAL_ELIMIT;
                return;
            }
            if (tmpl[c] == '{' || tmpl[c] == '}')
                c++;
        }
        if (s == model->spot_count)
            break;
        const s_spot_t *spot = model->spots + s;
        char *name = strndup (tmpl + spot->offset + 1, spot->len);
        FUZZ_CHECK (name, "out of memory");
        const char *value = s_lookup (name, NULL);
        free (name);
        if (!value) {
            model->code = SHOAL_ENOTFOUND;
            model->missing = tmpl + spot->offset + 1;
            model->missing_len = spot->len;
            return;
        }
        if (!s_emit (model, value, strlen (value))) {
            model->code = SHOAL_ELIMIT;
            return;
        }
        done = spot->offset + spot->len + 2;
    }
    model->out[model->out_len] = '\0';
}

/*  Scan callback: records what it is told; stops at call `stop_at`.       */
typedef struct {
    s_spot_t spots[MAX_SPOTS];
    size_t count;
    size_t stop_at;
} s_seen_t;

#define S_STOP_CODE (-100)

static int
s_record (const char *name, size_t len, size_t offset, void *arg,
          shoal_error_t *err)
{
    s_seen_t *seen = arg;
    FUZZ_CHECK (seen->count < MAX_SPOTS, "more spots than the model saw");
    seen->spots[seen->count++] = (s_spot_t) { offset, len };
    return seen->count - 1 == seen->stop_at ? S_STOP_CODE : 0;
}

static void
s_check_scan (const char *tmpl, const s_model_t *model, size_t stop_at)
{
    static s_seen_t seen;
    seen.count = 0;
    seen.stop_at = stop_at;
    shoal_error_t err;
    int rc = shoal_template_scan (tmpl, s_record, &seen, &err);
    size_t expect_count = model->spot_count;
    int expect = model->code == SHOAL_EINVAL ? SHOAL_EINVAL : 0;
    if (stop_at < model->spot_count) {
        expect_count = stop_at + 1;
        expect = S_STOP_CODE;
    }
    FUZZ_CHECK (rc == expect, "scan returned %d, model %d", rc, expect);
    FUZZ_CHECK (seen.count == expect_count, "scan reported %zu names, model %zu",
                seen.count, expect_count);
    for (size_t s = 0; s < seen.count; s++) {
        const s_spot_t *a = seen.spots + s, *b = model->spots + s;
        FUZZ_CHECK (a->offset == b->offset && a->len == b->len,
                    "name %zu at %zu+%zu, model %zu+%zu", s, a->offset,
                    a->len, b->offset, b->len);
        FUZZ_CHECK (tmpl[a->offset] == '{' && tmpl[a->offset + a->len + 1] == '}',
                    "name %zu not between braces", s);
    }
    if (rc == SHOAL_EINVAL)
        FUZZ_CHECK (err.code == SHOAL_EINVAL
                        && (size_t) err.column == model->error_at + 1,
                    "syntax error at column %d, model %zu: %s", err.column,
                    model->error_at + 1, err.message);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *tmpl = malloc (size + 1);
    FUZZ_CHECK (tmpl, "out of memory");
    memcpy (tmpl, data, size);
    tmpl[size] = '\0';

    static s_model_t model;
    s_model (tmpl, &model);
    if (model.too_many)
        goto done;

    //  Scanning without a callback, with one that never stops, and with
    //  one that stops half way.
    shoal_error_t err;
    int rc = shoal_template_scan (tmpl, NULL, NULL, &err);
    FUZZ_CHECK (rc == (model.code == SHOAL_EINVAL ? SHOAL_EINVAL : 0),
                "scan without callback returned %d, model code %d", rc,
                model.code);
    s_check_scan (tmpl, &model, SIZE_MAX);
    s_check_scan (tmpl, &model, model.spot_count / 2);

    char *filled = shoal_template_fill (tmpl, s_lookup, NULL, &err);
    if (filled) {
        size_t len = strlen (filled);
        FUZZ_CHECK (len <= SHOAL_TEMPLATE_MAX_ARG,
                    "filled argument of %zu bytes", len);
        FUZZ_CHECK (model.code == 0, "filled, model code %d", model.code);
        FUZZ_CHECK (len == model.out_len && memcmp (filled, model.out, len) == 0,
                    "filled %zu bytes '%.200s', model %zu bytes '%.200s'",
                    len, filled, model.out_len, model.out);
        free (filled);
    }
    else {
        FUZZ_CHECK (err.code == model.code, "fill failed with %d (%s), model %d",
                    err.code, err.message, model.code);
        if (model.code == SHOAL_EINVAL)
            FUZZ_CHECK ((size_t) err.column == model.error_at + 1,
                        "fill error at column %d, model %zu", err.column,
                        model.error_at + 1);
        if (model.code == SHOAL_ENOTFOUND) {
            size_t shown = model.missing_len < sizeof err.field - 1
                               ? model.missing_len : sizeof err.field - 1;
            FUZZ_CHECK (strlen (err.field) == shown
                            && memcmp (err.field, model.missing, shown) == 0,
                        "missing '%s', model '%.*s'", err.field,
                        (int) shown, model.missing);
        }
    }
done:
    free (model.out);
    model.out = NULL;
    free (tmpl);
    return 0;
}
