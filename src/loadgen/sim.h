/*  sim.h: simulated workers speaking the real wire protocol.

    Each simulated worker is one DEALER socket connected to the
    controller. It says HELLO with its slots, sends HEARTBEAT {} every
    second, says HELLO again on RECONNECT, and answers each TASK with a
    RESULT: at once or after a fixed delay, exit code 0 or, for a given
    share of plain tasks, 1. A spawn TASK is answered at once with a spawn
    list of N entries {"i": k} generated here, which is how a large stage
    is made without writing a file. A given number of workers vanish (close
    their socket without BYE) after their Nth task, to load the loss path.

    Workers are spread over threads; each thread owns its sockets and
    waits on all of them with one epoll set, so a thread carries
    thousands of sockets at O(ready sockets) per wake-up. By default a
    worker's socket is a TCP connection speaking ZMTP through zmtp.c,
    read and written by the thread itself; with LG_SIM_ZMTP_LIBZMQ it is a
    libzmq DEALER (its ZMQ_FD in the epoll set), which costs two thread
    hops per message. Nothing is allocated per message on the hot path.   */
#ifndef SHOAL_LOADGEN_SIM_H
#define SHOAL_LOADGEN_SIM_H

#include "stats.h"
#include "tracker.h"

#include <stdbool.h>
#include <stdint.h>

/*  Bounds on the options, each said in its error.                         */
#define LG_SIM_WORKERS_MAX 100000
#define LG_SIM_THREADS_MAX 64
#define LG_SIM_SLOTS_MAX 4096
#define LG_SIM_SPAWN_MAX 10000000

/*  What the simulated workers do; strings are borrowed for the lifetime
    of the lg_sim_t.                                                       */
/*  Which ZMTP implementation the simulated workers use.                   */
typedef enum {
    LG_SIM_ZMTP_BUILTIN,      /* zmtp.c: one syscall per message, in the
                                 simulation's own threads                  */
    LG_SIM_ZMTP_LIBZMQ,       /* a libzmq DEALER socket per worker         */
} lg_sim_zmtp_t;

/*  The default of lg_sim_config_t.handshake_ns (libzmq's own
    ZMQ_HANDSHAKE_IVL is 30 s).                                            */
#define LG_SIM_HANDSHAKE_NS (10 * 1000000000LL)

typedef struct {
    const char *endpoint;     /* the controller's --bind endpoint          */
    lg_sim_zmtp_t zmtp;       /* ZMTP implementation                       */
    const char *name_prefix;  /* workers are named PREFIX-<n>              */
    const char *host;         /* host name sent in HELLO                   */
    int workers;              /* how many, 1..LG_SIM_WORKERS_MAX           */
    int slots;                /* slots of each, 1..LG_SIM_SLOTS_MAX        */
    int threads;              /* threads sharing them                      */
    int io_threads;           /* libzmq I/O threads                        */
    int64_t handshake_ns;     /* builtin: a connection not welcomed this
                                 long after connect() is made again;
                                 0: LG_SIM_HANDSHAKE_NS                    */
    int64_t delay_ns;         /* plain tasks end this long after arrival   */
    double delay_jitter;      /* ... give or take this share of it, 0..1:
                                 each delay is uniform in
                                 delay x [1 - jitter, 1 + jitter]          */
    double fail_share;        /* share of plain tasks exiting 1, 0..1      */
    int vanish;               /* workers that vanish ...                   */
    int vanish_after;         /* ... on receiving their Nth task           */
    uint32_t spawn_entries;   /* entries in each spawn RESULT              */
} lg_sim_config_t;

/*  Figures of all the simulated workers, merged when they stop.           */
typedef struct {
    uint64_t welcomed;        /* workers that got a WELCOME                */
    uint64_t reconnects;      /* RECONNECT messages answered               */
    uint64_t tasks;           /* TASK messages received                    */
    uint64_t spawn_tasks;     /* of which spawn tasks                      */
    uint64_t results;         /* RESULT messages sent (spawn ones too)     */
    uint64_t failed;          /* of which with exit code 1                 */
    uint64_t spawn_entries;   /* entries sent in spawn lists               */
    uint64_t cancels;         /* CANCEL messages received                  */
    uint64_t heartbeats;      /* HEARTBEAT messages sent                   */
    uint64_t vanished;        /* workers that vanished                     */
    uint64_t send_errors;     /* sends refused (libzmq) or failed          */
    uint64_t disconnects;     /* connections lost and made again (builtin) */
    uint64_t handshake_timeouts; /* ... of them: not welcomed in time      */
    uint64_t bad_messages;    /* messages we could not read                */
    int64_t first_task_ns;    /* first TASK received, 0 if none            */
    int64_t last_result_ns;   /* last RESULT sent, 0 if none               */
    lg_hist_t dispatch;       /* dispatch latency, microseconds            */
    lg_hist_t dispatch_result;  /* ... of tasks sent as a slot freed       */
    lg_hist_t dispatch_spawn;   /* ... of tasks sent in a fan-out's burst  */
    lg_hist_t transition;     /* stage transition latency, microseconds    */
    lg_hist_t fanout;         /* spawn RESULT -> first task, microseconds  */
} lg_sim_stats_t;

typedef struct lg_sim lg_sim_t;

/*  Checks `config`, makes the libzmq context and raises RLIMIT_NOFILE to
    what the sockets need. Returns NULL with a message in `err` (of `size`
    bytes). `tracker` is borrowed and must outlive the simulation.         */
lg_sim_t *lg_sim_new (const lg_sim_config_t *config, lg_tracker_t *tracker,
                      char *err, size_t size);

/*  Stops the threads if they run, closes every socket, frees. Accepts
    NULL, nulls the pointer.                                               */
void lg_sim_destroy (lg_sim_t **self_p);

/*  Starts the threads; each connects its workers and says HELLO. Returns
    0 or -1 with `err` set.                                                */
int lg_sim_start (lg_sim_t *self, char *err, size_t size);

/*  Live counters, readable from any thread while the simulation runs.     */
uint64_t lg_sim_welcomed (lg_sim_t *self);
uint64_t lg_sim_tasks (lg_sim_t *self);

/*  A thread failed (its message is in `err`): returns true.               */
bool lg_sim_failed (lg_sim_t *self, char *err, size_t size);

/*  Stops the threads (each says BYE on its live sockets), then fills
    `stats` with the merged figures. Idempotent.                           */
void lg_sim_stop (lg_sim_t *self, lg_sim_stats_t *stats);

#endif
