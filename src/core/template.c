/*  template.c: checking and filling {placeholder} argument templates.

    Templates come from the definitions file and values come from job
    params, spawn lists and the worker's environment, so a value is never
    trusted: it is copied byte for byte into the one argument being built
    and is not scanned again. A value holding "{x}", a space or "; rm" stays
    exactly that, inside a single argv entry.

    Filling checks the whole syntax before it looks up a single value, so a
    broken template is reported as broken whatever params it is given. The
    result is bounded by SHOAL_TEMPLATE_MAX_ARG (the kernel refuses longer
    single arguments anyway); the check happens before any copy, so a huge
    value costs no allocation.                                             */
#include "shoal/template.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
s_is_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/*  Fills `err` for a syntax error at 0-based byte `offset`. The message
    repeats the position because callers show it without err->column.     */
static int
s_syntax_error (shoal_error_t *err, size_t offset, const char *what)
{
    shoal_error_set (err, SHOAL_EINVAL, NULL, "%s at byte %zu", what,
                     offset + 1);
    if (err)
        err->column = (int) (offset + 1);
    return SHOAL_EINVAL;
}

int
shoal_template_scan (const char *tmpl, shoal_template_name_fn fn, void *arg,
                     shoal_error_t *err)
{
    size_t i = 0;
    while (tmpl[i]) {
        if (tmpl[i] == '}') {
            if (tmpl[i + 1] != '}')
                return s_syntax_error (
                    err, i, "lone '}' (write '}}' for a literal brace)");
            i += 2;
            continue;
        }
        if (tmpl[i] != '{') {
            i++;
            continue;
        }
        if (tmpl[i + 1] == '{') {
            i += 2;
            continue;
        }
        size_t end = i + 1;
        while (s_is_name_char (tmpl[end]))
            end++;
        if (tmpl[end] == '\0')
            return s_syntax_error (
                err, i, "unterminated placeholder: '{' without a closing '}'");
        if (tmpl[end] != '}') {
            char what[128];
            unsigned char bad = (unsigned char) tmpl[end];
            if (bad >= 0x20 && bad < 0x7f)
                snprintf (what, sizeof what,
                          "invalid character '%c' in placeholder name "
                          "(allowed: A-Z a-z 0-9 _ . -; write '{{' for a "
                          "literal brace)", bad);
            else
                snprintf (what, sizeof what,
                          "invalid byte 0x%02x in placeholder name "
                          "(allowed: A-Z a-z 0-9 _ . -)", bad);
            return s_syntax_error (err, i, what);
        }
        if (end == i + 1)
            return s_syntax_error (
                err, i, "empty placeholder '{}' (write '{{}}' for literal "
                        "braces)");
        if (fn) {
            int rc = fn (tmpl + i + 1, end - i - 1, i, arg, err);
            if (rc < 0)
                return rc;
        }
        i = end + 1;
    }
    return 0;
}

/*  The argument being built. Invariant: len <= SHOAL_TEMPLATE_MAX_ARG and,
    when data is not NULL, data[len] is a NUL.                             */
typedef struct {
    char *data;             /* heap buffer, NULL until the first append    */
    size_t len;             /* bytes used, not counting the NUL            */
    size_t cap;             /* bytes allocated                             */
} s_buf_t;

static int
s_buf_append (s_buf_t *buf, const char *text, size_t len, shoal_error_t *err)
{
    if (len > SHOAL_TEMPLATE_MAX_ARG - buf->len)
        return shoal_error_set (err, SHOAL_ELIMIT, NULL,
                                "filled argument is longer than %d bytes",
                                SHOAL_TEMPLATE_MAX_ARG);
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len + 1)
            cap *= 2;
        char *data = realloc (buf->data, cap);
        if (!data)
            return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        buf->data = data;
        buf->cap = cap;
    }
    memcpy (buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

/*  Appends literal template text, turning `{{` and `}}` into one brace.
    Only called on text the scan has accepted, so every brace in it is
    doubled.                                                               */
static int
s_buf_append_literal (s_buf_t *buf, const char *text, size_t len,
                      shoal_error_t *err)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '{' || text[i] == '}') {
            int rc = s_buf_append (buf, text + start, i + 1 - start, err);
            if (rc)
                return rc;
            i++;            /* skip the second brace of the pair           */
            start = i + 1;
        }
    }
    return s_buf_append (buf, text + start, len - start, err);
}

/*  State shared with s_fill_name during the second scan.                  */
typedef struct {
    const char *tmpl;                 /* the template being filled         */
    size_t done;                      /* template bytes already consumed   */
    s_buf_t buf;                      /* the result so far                 */
    shoal_template_lookup_fn lookup;  /* the caller's value source         */
    void *lookup_arg;                 /* passed through to lookup          */
} s_fill_t;

static int
s_fill_name (const char *name, size_t len, size_t offset, void *arg,
             shoal_error_t *err)
{
    s_fill_t *fill = arg;
    int rc = s_buf_append_literal (&fill->buf, fill->tmpl + fill->done,
                                   offset - fill->done, err);
    if (rc)
        return rc;
    fill->done = offset + len + 2;

    //  Names are short in practice; a long one costs one allocation.
    char small[128];
    char *key = len < sizeof small ? small : malloc (len + 1);
    if (!key)
        return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    memcpy (key, name, len);
    key[len] = '\0';
    const char *value = fill->lookup (key, fill->lookup_arg);
    if (value)
        rc = s_buf_append (&fill->buf, value, strlen (value), err);
    else
        rc = shoal_error_set (err, SHOAL_ENOTFOUND, key,
                              "no value for input '%s'", key);
    if (key != small)
        free (key);
    return rc;
}

char *
shoal_template_fill (const char *tmpl, shoal_template_lookup_fn lookup,
                     void *arg, shoal_error_t *err)
{
    if (shoal_template_scan (tmpl, NULL, NULL, err))
        return NULL;
    s_fill_t fill = { .tmpl = tmpl, .lookup = lookup, .lookup_arg = arg };
    int rc = shoal_template_scan (tmpl, s_fill_name, &fill, err);
    if (!rc)
        rc = s_buf_append_literal (&fill.buf, tmpl + fill.done,
                                   strlen (tmpl + fill.done), err);
    //  An empty result still has to be a string of its own.
    if (!rc && !fill.buf.data)
        rc = s_buf_append (&fill.buf, "", 0, err);
    if (rc) {
        free (fill.buf.data);
        return NULL;
    }
    return fill.buf.data;
}
