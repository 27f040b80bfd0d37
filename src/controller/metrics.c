/*  metrics.c: rendering the controller's figures for Prometheus.         */
#include "metrics.h"

#include "shoal/scheduler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  A growing text buffer with a ceiling: the output has a fixed number of
    series, so 1 MiB is far above what it ever needs.                     */
#define S_MAX_TEXT (1024 * 1024)

typedef struct {
    char *data;
    size_t used;
    size_t size;
    bool failed;                 /* out of memory or over the ceiling     */
} s_text_t;

static void __attribute__ ((format (printf, 2, 3)))
s_add (s_text_t *text, const char *fmt, ...)
{
    if (text->failed)
        return;
    for (;;) {
        va_list args;
        va_start (args, fmt);
        int wrote = vsnprintf (text->data + text->used,
                               text->size - text->used, fmt, args);
        va_end (args);
        if (wrote < 0) {
            text->failed = true;
            return;
        }
        if ((size_t) wrote < text->size - text->used) {
            text->used += (size_t) wrote;
            return;
        }
        size_t size = text->size * 2;
        char *grown = size <= S_MAX_TEXT ? realloc (text->data, size) : NULL;
        if (!grown) {
            text->failed = true;
            return;
        }
        text->data = grown;
        text->size = size;
    }
}

static void
s_header (s_text_t *text, const char *name, const char *type,
          const char *help)
{
    s_add (text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static void
s_by_state (s_text_t *text, const char *name, const char *help,
            json_t *states)
{
    s_header (text, name, "counter", help);
    const char *state;
    json_t *value;
    json_object_foreach (states, state, value)
        s_add (text, "%s{state=\"%s\"} %" JSON_INTEGER_FORMAT "\n", name,
               state, json_integer_value (value));
}

static void
s_histogram (s_text_t *text, const char *name, const char *help,
             json_t *histogram)
{
    static const double bounds[] = SHOAL_HISTOGRAM_BOUNDS;
    s_header (text, name, "histogram", help);
    json_t *buckets = json_object_get (histogram, "buckets");
    json_int_t cumulative = 0;
    for (size_t i = 0; i < SHOAL_HISTOGRAM_BUCKETS; i++) {
        cumulative += json_integer_value (json_array_get (buckets, i));
        if (i < sizeof bounds / sizeof bounds[0])
            s_add (text, "%s_bucket{le=\"%g\"} %" JSON_INTEGER_FORMAT "\n",
                   name, bounds[i], cumulative);
        else
            s_add (text, "%s_bucket{le=\"+Inf\"} %" JSON_INTEGER_FORMAT "\n",
                   name, cumulative);
    }
    s_add (text, "%s_sum %.6f\n", name,
           json_real_value (json_object_get (histogram, "sum")));
    s_add (text, "%s_count %" JSON_INTEGER_FORMAT "\n", name,
           s_int (histogram, "count"));
}

static void
s_gauge (s_text_t *text, const char *name, const char *help,
         json_int_t value)
{
    s_header (text, name, "gauge", help);
    s_add (text, "%s %" JSON_INTEGER_FORMAT "\n", name, value);
}

int
shoal_metrics_status_index (int status)
{
    static const int statuses[] = SHOAL_METRICS_STATUS_LIST;
    int i = 0;
    while (statuses[i] && statuses[i] != status)
        i++;
    return i;
}

char *
shoal_metrics_render (json_t *stats, const shoal_metrics_route_t *routes,
                      size_t route_count)
{
    s_text_t text = { .size = 8192 };
    text.data = malloc (text.size);
    if (!text.data)
        return NULL;
    text.data[0] = '\0';
    s_header (&text, "shoal_build_info", "gauge",
              "The running controller's version, always 1.");
    s_add (&text, "shoal_build_info{version=\"%s\"} 1\n", SHOAL_VERSION);
    s_header (&text, "shoal_jobs_submitted_total", "counter",
              "Jobs accepted over the REST API since the controller started.");
    s_add (&text, "shoal_jobs_submitted_total %" JSON_INTEGER_FORMAT "\n",
           s_int (stats, "jobs_submitted"));
    s_by_state (&text, "shoal_jobs_finished_total",
                "Jobs that reached a final state, by state.",
                json_object_get (stats, "jobs_finished"));
    s_header (&text, "shoal_jobs_forgotten_total", "counter",
              "Ended jobs forgotten, in memory and in the state store, "
              "past --retain-finished, since the controller started.");
    s_add (&text, "shoal_jobs_forgotten_total %" JSON_INTEGER_FORMAT "\n",
           s_int (stats, "jobs_forgotten"));
    s_by_state (&text, "shoal_tasks_finished_total",
                "Tasks that reached a final state, by state.",
                json_object_get (stats, "tasks_finished"));
    s_histogram (&text, "shoal_task_duration_seconds",
                 "Run time of task attempts, as their workers measured it.",
                 json_object_get (stats, "task_duration"));
    s_histogram (&text, "shoal_task_queue_wait_seconds",
                 "Time from a task being ready to its dispatch to a worker.",
                 json_object_get (stats, "queue_wait"));
    s_gauge (&text, "shoal_queue_depth",
             "Tasks ready to run, waiting for a free worker slot.",
             s_int (stats, "queue_depth"));
    s_gauge (&text, "shoal_tasks_running",
             "Tasks dispatched to a worker and not yet finished.",
             s_int (stats, "tasks_running"));
    s_gauge (&text, "shoal_jobs_active", "Jobs created or running.",
             s_int (stats, "jobs_active"));
    s_header (&text, "shoal_store_rows_written_total", "counter",
              "Rows of jobs, tasks and idempotency keys the state store "
              "wrote, since the controller started.");
    s_add (&text, "shoal_store_rows_written_total %" JSON_INTEGER_FORMAT "\n",
           s_int (stats, "store_rows_written"));
    s_header (&text, "shoal_store_rows_replaced_total", "counter",
              "Rows of jobs and tasks the state store left out because a "
              "later row of the same job or task, in the same transaction, "
              "replaced them.");
    s_add (&text, "shoal_store_rows_replaced_total %" JSON_INTEGER_FORMAT
           "\n", s_int (stats, "store_rows_replaced"));
    s_header (&text, "shoal_store_checkpoints_total", "counter",
              "Checkpoints of the state store's write-ahead log into its "
              "database file.");
    s_add (&text, "shoal_store_checkpoints_total %" JSON_INTEGER_FORMAT "\n",
           s_int (stats, "store_checkpoints"));
    s_gauge (&text, "shoal_store_waiting_rows",
             "Changed jobs and tasks handed to the state store's writer "
             "and not yet written.",
             s_int (stats, "store_waiting_rows"));
    s_gauge (&text, "shoal_workers_connected", "Workers connected.",
             s_int (stats, "workers"));
    s_gauge (&text, "shoal_worker_slots", "Task slots of connected workers.",
             s_int (stats, "slots"));
    s_gauge (&text, "shoal_worker_slots_busy",
             "Task slots of connected workers that are taken.",
             s_int (stats, "busy"));
    s_header (&text, "shoal_heartbeat_period_seconds", "gauge",
              "The heartbeat period in force, told to every worker; it "
              "grows with the workers connected.");
    s_add (&text, "shoal_heartbeat_period_seconds %g\n",
           (double) s_int (stats, "heartbeat_ms") / 1000.0);
    s_header (&text, "shoal_worker_messages_total", "counter",
              "ZeroMQ messages from and to workers, by direction and "
              "command.");
    json_t *messages = json_object_get (stats, "worker_messages");
    static const char *directions[] = { "received", "sent" };
    for (size_t d = 0; d < 2; d++) {
        const char *command;
        json_t *count;
        json_object_foreach (json_object_get (messages, directions[d]),
                             command, count)
            s_add (&text, "shoal_worker_messages_total{direction=\"%s\","
                   "command=\"%s\"} %" JSON_INTEGER_FORMAT "\n",
                   directions[d], command, json_integer_value (count));
    }
    s_header (&text, "shoal_http_requests_total", "counter",
              "HTTP requests answered, by route and status code.");
    static const int statuses[] = SHOAL_METRICS_STATUS_LIST;
    for (size_t r = 0; r < route_count; r++)
        for (int i = 0; i < SHOAL_METRICS_STATUSES; i++) {
            uint64_t count = __atomic_load_n (&routes[r].counts[i],
                                              __ATOMIC_RELAXED);
            if (!count)
                continue;
            char code[16];
            if (statuses[i])
                snprintf (code, sizeof code, "%d", statuses[i]);
            else
                snprintf (code, sizeof code, "other");
            s_add (&text,
                   "shoal_http_requests_total{method=\"%s\",route=\"%s\","
                   "code=\"%s\"} %llu\n", routes[r].method, routes[r].route,
                   code, (unsigned long long) count);
        }
    if (text.failed) {
        free (text.data);
        return NULL;
    }
    return text.data;
}
