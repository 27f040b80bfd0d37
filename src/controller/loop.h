/*  loop.h: the controller's one thread of state.

    The loop owns the ROUTER socket workers connect to, the scheduler, and
    an inproc socket over which the HTTP threads ask it questions. Nothing
    else touches the scheduler, so no state needs a lock.                  */
#ifndef SHOAL_CONTROLLER_LOOP_H
#define SHOAL_CONTROLLER_LOOP_H

#include "shoal/defs.h"
#include "shoal/error.h"

/*  The inproc endpoint HTTP threads connect their REQ sockets to.        */
#define SHOAL_LOOP_API_ENDPOINT "inproc://shoal-api"

typedef struct shoal_loop shoal_loop_t;

/*  How long tasks that were running when the controller stopped wait for
    their worker to claim them after a restart, before they run again.    */
#define SHOAL_LOOP_ADOPT_LEASE_MS 10000

/*  Binds `bind` (a ZeroMQ endpoint) and the API endpoint. `defs` is
    borrowed and must outlive the loop; `data_dir` is the shared volume.
    With `store_path` the state lives in that SQLite file and is read back
    first; NULL keeps it in memory only. Returns NULL with `err` set when
    a socket cannot be bound or the store cannot be read.                  */
shoal_loop_t *shoal_loop_new (const shoal_defs_t *defs, const char *data_dir,
                              const char *bind, const char *store_path,
                              shoal_error_t *err);

/*  Runs until `stop_fd` becomes readable (a self-pipe written by the
    signal handler). Returns 0.                                            */
int shoal_loop_run (shoal_loop_t *self, int stop_fd);

void shoal_loop_destroy (shoal_loop_t **self_p);

#endif
