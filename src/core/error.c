/*  error.c: error codes, messages and their HTTP mapping.                 */
#include "shoal/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
shoal_strerror (int code)
{
    switch (code) {
        case SHOAL_OK:        return "success";
        case SHOAL_EINVAL:    return "invalid input";
        case SHOAL_ENOMEM:    return "out of memory";
        case SHOAL_ENOTFOUND: return "not found";
        case SHOAL_ESTATE:    return "not allowed in the current state";
        case SHOAL_EIO:       return "input/output error";
        case SHOAL_ELIMIT:    return "limit exceeded";
        case SHOAL_EPROTO:    return "protocol error";
        default:              return "unknown error";
    }
}

static void
s_set_field (shoal_error_t *err, const char *field)
{
    if (field)
        snprintf (err->field, sizeof err->field, "%s", field);
    else
        err->field[0] = '\0';
}

int
shoal_error_set (shoal_error_t *err, int code, const char *field,
                 const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->line = 0;
    err->column = 0;
    s_set_field (err, field);
    va_list args;
    va_start (args, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, args);
    va_end (args);
    return code;
}

int
shoal_error_set_at (shoal_error_t *err, int code, const char *file,
                    int line, int column, const char *field,
                    const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->line = line;
    err->column = column;
    s_set_field (err, field);
    int used = snprintf (err->message, sizeof err->message, "%s:%d:%d: ",
                         file ? file : "<input>", line, column);
    if (used < 0 || (size_t) used >= sizeof err->message)
        return code;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err->message + used, sizeof err->message - (size_t) used, fmt,
               args);
    va_end (args);
    return code;
}

void
shoal_error_clear (shoal_error_t *err)
{
    if (err)
        memset (err, 0, sizeof *err);
}

int
shoal_error_http_status (int code)
{
    switch (code) {
        case SHOAL_OK:        return 200;
        case SHOAL_EINVAL:    return 400;
        case SHOAL_ENOTFOUND: return 404;
        case SHOAL_ESTATE:    return 409;
        case SHOAL_ELIMIT:    return 413;
        case SHOAL_EPROTO:    return 400;
        case SHOAL_ENOMEM:    return 503;
        default:              return 500;
    }
}
