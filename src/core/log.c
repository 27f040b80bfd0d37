/*  log.c: leveled logging to stderr, one line per event.                  */
#include "shoal/log.h"
#include "shoal/error.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static shoal_log_level_t s_level = SHOAL_LOG_INFO;
static bool s_json = false;
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

int
shoal_log_format (const char *format_name)
{
    if (!format_name || strcmp (format_name, "text") == 0)
        s_json = false;
    else if (strcmp (format_name, "json") == 0)
        s_json = true;
    else
        return SHOAL_EINVAL;
    return 0;
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
    char stamp[64];
    snprintf (stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
              tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    char message[1536];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    if (s_json) {
        /* jansson escapes quotes, control characters and bad UTF-8. */
        json_t *event = json_pack ("{s:s, s:s, s:s, s:s}", "time", stamp,
                                   "level", s_level_names[level], "component",
                                   s_component, "message", message);
        if (!event)     /* the message was not valid UTF-8 */
            event = json_pack ("{s:s, s:s, s:s, s:s}", "time", stamp,
                               "level", s_level_names[level], "component",
                               s_component, "message",
                               "(message not valid UTF-8)");
        char *text = event ? json_dumps (event, JSON_COMPACT) : NULL;
        if (text)
            fprintf (stderr, "%s\n", text);
        free (text);
        json_decref (event);
        return;
    }
    snprintf (line, sizeof line, "%s %-5s %s: %s", stamp,
              s_level_names[level], s_component, message);
    /* One fprintf per line: stdio locks the stream, so threads never
       interleave within a line. */
    fprintf (stderr, "%s\n", line);
}
