/*  metrics.h: GET /metrics in the Prometheus text format.

    The scheduler's figures come from the loop as JSON (see s_op_metrics in
    loop.c); the HTTP layer adds its own request counters. Names follow
    Prometheus conventions: a shoal_ prefix, _total for counters, _seconds
    for durations; no job or task ids in labels, so the number of series
    stays fixed however many jobs run.                                    */
#ifndef SHOAL_CONTROLLER_METRICS_H
#define SHOAL_CONTROLLER_METRICS_H

#include <stdint.h>
#include <jansson.h>

/*  HTTP request counters, one per (route, status) pair, updated by the
    handler threads with atomic adds.                                     */
typedef struct {
    const char *method;          /* route method, "" for unmatched paths   */
    const char *route;           /* route pattern, "unmatched" for others  */
    uint64_t *counts;            /* SHOAL_METRICS_STATUSES counters        */
} shoal_metrics_route_t;

/*  The status codes counted one by one; others count as "other".        */
#define SHOAL_METRICS_STATUS_LIST                                          \
    { 200, 201, 206, 400, 401, 404, 405, 409, 413, 414, 416, 422, 500,   \
      503, 0 }
#define SHOAL_METRICS_STATUSES 15    /* the list above, 0 for "other"      */

/*  Index of `status` in the status list (the last one for "other").     */
int shoal_metrics_status_index (int status);

/*  Renders everything as exposition text (the caller's, NUL-terminated),
    NULL when out of memory. `stats` is borrowed.                         */
char *shoal_metrics_render (json_t *stats, const shoal_metrics_route_t *routes,
                            size_t route_count);

#endif
