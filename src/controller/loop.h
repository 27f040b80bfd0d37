/*  loop.h: the controller's one thread of state.

    The loop owns the ROUTER socket workers connect to, the scheduler, and
    the mailbox through which the HTTP threads ask it questions
    (mailbox.h). Nothing else touches the scheduler, so no state needs a
    lock.                  */
#ifndef SHOAL_CONTROLLER_LOOP_H
#define SHOAL_CONTROLLER_LOOP_H

#include "events.h"
#include "mailbox.h"

#include "shoal/defs.h"
#include "shoal/error.h"

typedef struct shoal_loop shoal_loop_t;

/*  How long tasks that were running when the controller stopped wait for
    their worker to claim them after a restart, before they run again.    */
#define SHOAL_LOOP_ADOPT_LEASE_MS 10000

/*  What the loop is made of. Everything is borrowed; `defs` must outlive
    the loop, the rest is copied or used at once.                          */
typedef struct {
    const shoal_defs_t *defs;
    const char *data_dir;        /* the shared volume                      */
    const char *bind;            /* ZeroMQ endpoint workers connect to     */
    const char *store_path;      /* SQLite state file; NULL: memory only   */
    const char *curve_secret;    /* controller's key pair file (NAME.key
                                    with NAME.key_secret beside it); NULL:
                                    no CURVE                               */
    const char *curve_clients;   /* directory of authorized workers' public
                                    keys, read again when it changes       */
    size_t event_buffer;         /* events held for the event stream;
                                    0: SHOAL_EVENTS_CAPACITY               */
    size_t max_spawn_entries;    /* bound on one spawn list; 0:
                                    SHOAL_SPAWN_MAX_ENTRIES                */
    int64_t heartbeat_ms;        /* heartbeat period told to workers
                                    (WELCOME); 0: SHOAL_HEARTBEAT_MS       */
    int64_t retain_finished_ms;  /* a job that ended this long ago is
                                    forgotten, in memory and in the
                                    store; 0: kept forever                 */
} shoal_loop_config_t;

/*  Binds the worker endpoint (as a CURVE server when a key is given) and
    reads the state store back. Returns NULL with `err` set when a key
    cannot be loaded, the socket cannot be bound or the store cannot be
    read.                                                                  */
shoal_loop_t *shoal_loop_new (const shoal_loop_config_t *config,
                              shoal_error_t *err);

/*  Runs until `stop_fd` becomes readable (a self-pipe written by the
    signal handler). Before it returns, the answers it held for the store
    go out, and its mailbox is closed: calls still waiting, and any made
    later, are answered with nothing at once. Returns 0, or -1 when
    polling failed.                                                        */
int shoal_loop_run (shoal_loop_t *self, int stop_fd);

void shoal_loop_destroy (shoal_loop_t **self_p);

/*  The hub the loop publishes its events to (borrowed: it lives as long
    as the loop). The HTTP threads read it; shoal_events_close wakes them
    when the controller stops.                                             */
shoal_events_t *shoal_loop_events (shoal_loop_t *self);

/*  The mailbox the HTTP threads call the loop through (borrowed: it lives
    as long as the loop).                                                  */
shoal_mailbox_t *shoal_loop_mailbox (shoal_loop_t *self);

#endif
