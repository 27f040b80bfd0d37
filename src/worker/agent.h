/*  agent.h: the worker's side of the wire protocol and its event loop.

    The agent owns the DEALER socket to the controller. It says HELLO,
    sends a HEARTBEAT every interval whatever else happens, takes the
    controller for lost after SHOAL_HEARTBEAT_LIVENESS silent intervals
    and then reconnects with a fresh socket after a backoff that doubles
    from SHOAL_RECONNECT_MIN_MS to SHOAL_RECONNECT_MAX_MS. It turns TASK
    and CANCEL messages into calls on the runner and the runner's results
    into RESULT messages; results that end while the controller is not
    listening wait in a bounded outbox until the next WELCOME.

    Signals belong to main: its handlers write one byte per signal to a
    non-blocking pipe, whose read end the agent polls beside the socket.  */
#ifndef SHOAL_WORKER_AGENT_H
#define SHOAL_WORKER_AGENT_H

#include "runner.h"

/*  Bytes main writes to the wake pipe.                                    */
#define SHOAL_AGENT_WAKE_CHILD 'C'  /* SIGCHLD: reap children              */
#define SHOAL_AGENT_WAKE_STOP  'S'  /* SIGTERM or SIGINT: shut down        */

/*  Results kept while the controller is not listening: the oldest is
    dropped past either bound (the controller re-queues what it misses).   */
#define SHOAL_AGENT_OUTBOX_MAX 8192
#define SHOAL_AGENT_OUTBOX_MAX_BYTES (256 * 1024 * 1024)

/*  Bound on the filled arguments of one task, all together.               */
#define SHOAL_AGENT_ARGV_MAX_BYTES (2 * 1024 * 1024)

/*  Bound on the number of arguments of one task.                          */
#define SHOAL_AGENT_ARGS_MAX 4096

/*  What the agent needs to know; every string is copied.                  */
typedef struct {
    const char *endpoint;     /* controller endpoint, e.g. tcp://host:5555 */
    const char *name;         /* worker name sent in HELLO                 */
    const char *host;         /* host name sent in HELLO                   */
    int slots;                /* tasks at once, 1..4096                    */
    int64_t drain_timeout_ms; /* on stop: time running tasks get to end    */
    const char *curve_secret; /* our key pair file (NAME.key, with
                                 NAME.key_secret); NULL: no CURVE          */
    const char *curve_server; /* the controller's public key file          */
    const char *health_file;  /* touched at each heartbeat while the
                                 controller has welcomed us; NULL: none    */
} shoal_agent_config_t;

typedef struct shoal_agent shoal_agent_t;

/*  Creates the agent and its first socket, connected to the endpoint.
    `runner` is borrowed and must outlive the agent. Returns NULL with
    `err` set; field "connect" when the endpoint is refused by libzmq,
    "curve-secret" or "curve-server" when a key cannot be loaded.
    zsys_init must have been called.                                       */
shoal_agent_t *shoal_agent_new (const shoal_agent_config_t *config,
                                shoal_runner_t *runner, shoal_error_t *err);

/*  Closes the socket (unsent messages are dropped) and frees the agent.
    Accepts NULL, nulls the pointer.                                       */
void shoal_agent_destroy (shoal_agent_t **self_p);

/*  Runs the loop until a SHOAL_AGENT_WAKE_STOP byte arrives on `wake_fd`
    and every task has ended; then says BYE. After the first stop byte the
    worker drains: it takes no new task, tells the controller so in its
    heartbeats, and lets running tasks finish (their results are sent) for
    up to drain_timeout_ms; then, or at a second stop byte, it stops the
    rest, whose tasks the controller re-queues at the BYE. Returns 0, or -1
    when polling failed.                                                   */
int shoal_agent_run (shoal_agent_t *self, int wake_fd);

#endif
