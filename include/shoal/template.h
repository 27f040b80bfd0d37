/*  template.h: {placeholder} argument templates.

    A template is literal text with `{name}` placeholders; `{{` and `}}`
    stand for literal braces. A name is one or more of [A-Za-z0-9_.-].
    Templates are filled one argument at a time and the result is handed
    to execvp as a single argument: a value can never become a second
    argument or a command, whatever characters it holds.                   */
#ifndef SHOAL_TEMPLATE_H
#define SHOAL_TEMPLATE_H

#include <stddef.h>

#include "shoal/error.h"

/*  Longest filled argument, in bytes (Linux MAX_ARG_STRLEN is 128 KiB).   */
#define SHOAL_TEMPLATE_MAX_ARG (128 * 1024 - 1)

/*  Called once per placeholder with its name (not NUL-terminated) and the
    0-based byte offset of its `{`. Return 0 to go on, or a negative code
    (after filling `err` yourself) to stop the scan with that code.        */
typedef int (*shoal_template_name_fn) (const char *name, size_t len,
                                       size_t offset, void *arg,
                                       shoal_error_t *err);

/*  Checks the syntax of `tmpl` and reports each placeholder to `fn` (which
    may be NULL). Returns 0, a code from `fn`, or SHOAL_EINVAL with `err`
    saying what is wrong and the byte offset in err->column (1-based).     */
int shoal_template_scan (const char *tmpl, shoal_template_name_fn fn,
                         void *arg, shoal_error_t *err);

/*  Returns the value for a placeholder name (NUL-terminated), or NULL when
    there is none.                                                         */
typedef const char *(*shoal_template_lookup_fn) (const char *name, void *arg);

/*  Fills `tmpl`. Returns a new string (the caller's), or NULL with `err`
    set: a syntax error, a placeholder `lookup` has no value for
    (SHOAL_ENOTFOUND, field = the name), a result over
    SHOAL_TEMPLATE_MAX_ARG (SHOAL_ELIMIT), or no memory.                   */
char *shoal_template_fill (const char *tmpl, shoal_template_lookup_fn lookup,
                           void *arg, shoal_error_t *err);

#endif
