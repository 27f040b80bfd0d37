/*  error.h: the one error convention of shoal.

    Functions return 0 on success or a negative SHOAL_E* code. Where the
    message matters (definitions, requests, wire messages) they also fill a
    caller-owned shoal_error_t: no allocation happens on the error path, so
    an out-of-memory error can still be reported.                          */
#ifndef SHOAL_ERROR_H
#define SHOAL_ERROR_H

#include <stddef.h>

enum {
    SHOAL_OK = 0,
    SHOAL_EINVAL = -1,      /* bad input: definitions, params, a message  */
    SHOAL_ENOMEM = -2,      /* allocation failed                           */
    SHOAL_ENOTFOUND = -3,   /* no such job, task, worker, class            */
    SHOAL_ESTATE = -4,      /* not allowed in the current state            */
    SHOAL_EIO = -5,         /* a file or socket operation failed           */
    SHOAL_ELIMIT = -6,      /* a documented bound was exceeded             */
    SHOAL_EPROTO = -7,      /* a wire message broke the protocol           */
};

/*  A described error. `line` and `column` are 1-based positions in a file
    (0 when not about a file); `field` names the offending input, key or
    definition so a caller can point at it (empty when there is none).     */
typedef struct {
    int code;               /* SHOAL_E* code, SHOAL_OK when unset          */
    int line;               /* 1-based line in `file`, 0 when n/a          */
    int column;             /* 1-based column in `file`, 0 when n/a        */
    char field[128];        /* offending name or field, "" when none       */
    char message[512];      /* whole human message, file:line:col first    */
} shoal_error_t;

/*  Returns a static description of a SHOAL_E* code.                       */
const char *shoal_strerror (int code);

/*  Fills `err` (which may be NULL) and returns `code`, so callers can
    write `return shoal_error_set (err, SHOAL_EINVAL, "x", "...")`.
    `field` may be NULL. The message is formatted printf-style and
    truncated to fit.                                                      */
int shoal_error_set (shoal_error_t *err, int code, const char *field,
                     const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/*  Like shoal_error_set, with a file position. The message is prefixed
    with "file:line:column: ".                                             */
int shoal_error_set_at (shoal_error_t *err, int code, const char *file,
                        int line, int column, const char *field,
                        const char *fmt, ...)
    __attribute__ ((format (printf, 7, 8)));

/*  Clears `err` to SHOAL_OK.                                              */
void shoal_error_clear (shoal_error_t *err);

/*  The one mapping of error codes to HTTP status codes.                   */
int shoal_error_http_status (int code);

#endif
