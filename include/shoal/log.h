/*  log.h: one line per event on stderr: time, level, component, message,
    and the job and task an event is about.

    The level is process-wide and set once by main before threads start;
    writes are single fprintf calls, so lines from threads do not mix.
    Never log secret values: callers pass masked values.                   */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

typedef enum {
    SHOAL_LOG_ERROR = 0,
    SHOAL_LOG_WARN = 1,
    SHOAL_LOG_INFO = 2,
    SHOAL_LOG_DEBUG = 3,
} shoal_log_level_t;

/*  Sets the threshold and the component name printed on each line
    (borrowed; must outlive logging). Returns 0, or SHOAL_EINVAL when
    `level_name` is not error|warn|info|debug (NULL keeps the level).      */
int shoal_log_init (const char *component, const char *level_name);

/*  Chooses the line format: "text" (default: time level component:
    message) or "json" (one object per line: time, level, component,
    message, and job and task when given). Returns 0, or SHOAL_EINVAL
    for another name.                                                      */
int shoal_log_format (const char *format_name);

void shoal_log (shoal_log_level_t level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Like shoal_log, for an event about job `job` (NULL: none) and its task
    `task` (negative: none). The ids are fields of their own, so logs can
    be filtered by them: "job" and "task" keys in json, a "job=ID task=N"
    prefix to the message in text. The message need not repeat them.      */
void shoal_log_task (shoal_log_level_t level, const char *job,
                     long long task, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/*  True when events of `level` are written: lets a caller skip building
    an expensive message.                                                  */
int shoal_log_enabled (shoal_log_level_t level);

#define shoal_error(...) shoal_log (SHOAL_LOG_ERROR, __VA_ARGS__)
#define shoal_warn(...)  shoal_log (SHOAL_LOG_WARN, __VA_ARGS__)
#define shoal_info(...)  shoal_log (SHOAL_LOG_INFO, __VA_ARGS__)
#define shoal_debug(...) shoal_log (SHOAL_LOG_DEBUG, __VA_ARGS__)

#endif
