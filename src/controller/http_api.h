/*  http_api.h: the REST API, served by civetweb.

    Handler threads parse and check requests against the definitions
    (read-only, shared) and ask the controller loop for everything that
    touches state, over an inproc REQ socket. They never touch the
    scheduler themselves.                                                  */
#ifndef SHOAL_CONTROLLER_HTTP_API_H
#define SHOAL_CONTROLLER_HTTP_API_H

#include "shoal/defs.h"
#include "shoal/error.h"

/*  Largest accepted request body, in bytes; larger bodies get a 413.     */
#define SHOAL_HTTP_MAX_BODY (1024 * 1024)

typedef struct shoal_http shoal_http_t;

/*  Starts serving on `listen` ("HOST:PORT") with `threads` handler
    threads. `defs` is borrowed and must outlive the server. Returns NULL
    with `err` set when the port cannot be opened.                        */
shoal_http_t *shoal_http_new (const shoal_defs_t *defs, const char *listen,
                              int threads, shoal_error_t *err);

/*  Stops accepting, waits for handlers to finish, frees everything.      */
void shoal_http_destroy (shoal_http_t **self_p);

#endif
