/*  http_api.h: the REST API, served by civetweb.

    Handler threads parse and check requests against the definitions
    (read-only, shared) and ask the controller loop for everything that
    touches state, through its mailbox (mailbox.h). They never touch the
    scheduler themselves. They do the file system work of a request (a
    new job's directory), so that the loop never waits on the shared
    volume for it.                                                         */
#ifndef SHOAL_CONTROLLER_HTTP_API_H
#define SHOAL_CONTROLLER_HTTP_API_H

#include "events.h"
#include "mailbox.h"

#include "shoal/defs.h"
#include "shoal/error.h"

/*  The header carrying the API token. Not Authorization: job inputs may
    read that header (the spec's example does), so the engine's own token
    travels apart from it.                                                */
#define SHOAL_HTTP_TOKEN_HEADER "X-Shoal-Token"

/*  Largest accepted request body, in bytes; larger bodies get a 413.     */
#define SHOAL_HTTP_MAX_BODY (1024 * 1024)

typedef struct shoal_http shoal_http_t;

/*  Starts serving on `listen` ("HOST:PORT") with `threads` handler
    threads. `defs` is borrowed and must outlive the server; `data_dir`
    (copied) is the shared volume, where a submission's handler makes
    jobs/<id>/ before the loop records the job. With a `token` (copied),
    every /api/ route needs it in X-Shoal-Token; /healthz and /readyz stay
    open. Handlers call the loop through `mailbox` (borrowed; it must
    outlive the server). Returns NULL with `err` set when the port cannot
    be opened.                                                             */
shoal_http_t *shoal_http_new (const shoal_defs_t *defs, const char *data_dir,
                              const char *listen, int threads,
                              const char *token, shoal_mailbox_t *mailbox,
                              shoal_error_t *err);

/*  Stops accepting, closes the event hub so open streams end, waits for
    handlers to finish, frees everything.                                 */
void shoal_http_destroy (shoal_http_t **self_p);

/*  Serves GET /api/v1/events and /api/v1/jobs/{id}/events from `events`
    (borrowed; must outlive the server). Until then they answer 503.      */
void shoal_http_set_events (shoal_http_t *self, shoal_events_t *events);

#endif
