/*  log.c: leveled logging to stderr, one line per event.                  */
#include "shoal/log.h"
#include "shoal/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static shoal_log_level_t s_level = SHOAL_LOG_INFO;
static const char *s_component = "shoal";

static const char *s_level_names[] = { "error", "warn", "info", "debug" };

int
shoal_log_init (const char *component, const char *level_name)
{
    if (component)
        s_component = component;
    if (!level_name)
        return 0;
    for (size_t i = 0; i < sizeof s_level_names / sizeof s_level_names[0]; i++)
        if (strcmp (level_name, s_level_names[i]) == 0) {
            s_level = (shoal_log_level_t) i;
            return 0;
        }
    return SHOAL_EINVAL;
}

void
shoal_log (shoal_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    char line[2048];
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    int used = snprintf (line, sizeof line,
                         "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         now.tv_nsec / 1000000, s_level_names[level],
                         s_component);
    va_list args;
    va_start (args, fmt);
    if (used > 0 && (size_t) used < sizeof line)
        vsnprintf (line + used, sizeof line - (size_t) used, fmt, args);
    va_end (args);
    /* One fputs per line: stdio locks the stream, so threads never
       interleave within a line. */
    fprintf (stderr, "%s\n", line);
}
