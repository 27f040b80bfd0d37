/*  log.c: leveled logging to stderr, one line per event.                  */
#include "shoal/log.h"
#include "shoal/error.h"

#include <jansson.h>
#include <stdlib.h>
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

int
shoal_log_enabled (shoal_log_level_t level)
{
    return level <= s_level;
}

/*  A json event of the fields given; NULL when a string is not UTF-8.    */
static json_t *
s_json_event (const char *stamp, shoal_log_level_t level, const char *job,
              long long task, const char *message)
{
    json_t *event = json_pack ("{s:s, s:s, s:s}", "time", stamp, "level",
                               s_level_names[level], "component",
                               s_component);
    if (!event)
        return NULL;
    if ((job && json_object_set_new (event, "job", json_string (job)))
        || (task >= 0 && json_object_set_new (event, "task",
                                              json_integer (task)))
        || json_object_set_new (event, "message", json_string (message))) {
        json_decref (event);
        return NULL;
    }
    return event;
}

static void
s_vlog (shoal_log_level_t level, const char *job, long long task,
        const char *fmt, va_list args)
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
    vsnprintf (message, sizeof message, fmt, args);
    if (s_json) {
        /* jansson escapes quotes, control characters and bad UTF-8. */
        json_t *event = s_json_event (stamp, level, job, task, message);
        if (!event)     /* the message or the job id was not valid UTF-8 */
            event = s_json_event (stamp, level, NULL, task,
                                  "(message not valid UTF-8)");
        char *text = event ? json_dumps (event, JSON_COMPACT) : NULL;
        if (text)
            fprintf (stderr, "%s\n", text);
        free (text);
        json_decref (event);
        return;
    }
    /* The ids first, as key=value words: grep-able, and the message
       still reads as a sentence after them. A job id is ours in practice
       but may come off the wire, so it is bounded. */
    char ids[128] = "";
    if (job && task >= 0)
        snprintf (ids, sizeof ids, "job=%.64s task=%lld ", job, task);
    else if (job)
        snprintf (ids, sizeof ids, "job=%.64s ", job);
    else if (task >= 0)
        snprintf (ids, sizeof ids, "task=%lld ", task);
    snprintf (line, sizeof line, "%s %-5s %s: %s%s", stamp,
              s_level_names[level], s_component, ids, message);
    /* One fprintf per line: stdio locks the stream, so threads never
       interleave within a line. */
    fprintf (stderr, "%s\n", line);
}

void
shoal_log (shoal_log_level_t level, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_vlog (level, NULL, -1, fmt, args);
    va_end (args);
}

void
shoal_log_task (shoal_log_level_t level, const char *job, long long task,
                const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_vlog (level, job, task, fmt, args);
    va_end (args);
}
