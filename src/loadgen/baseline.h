/*  baseline.h: shoal-loadgen --baseline-controller, the least a controller
    can do, for the real one's latencies to be read against.

    It binds a ZeroMQ ROUTER as the controller does (the same socket
    options, libzmq's one I/O thread, one thread reading and sending) and
    speaks the same wire protocol, and does nothing else: no REST, no
    store, no events, no logs, no retries. It welcomes every worker that
    says HELLO and, once `await_workers` have, starts `jobs` jobs by
    itself at `rate` a second, each shaped like the bench's `fan` job: a
    spawn task; one task per entry of the spawn list its RESULT carries;
    then one last task. Ready tasks go out in the order they became ready,
    one per free credit, the moment one frees.

    Simulated workers of another shoal-loadgen connected to it measure
    dispatch and stage-transition latency as they do against a real
    controller: what they measure is the floor this machine, the load
    generator and ZeroMQ set for any controller under that load.          */
#ifndef SHOAL_LOADGEN_BASELINE_H
#define SHOAL_LOADGEN_BASELINE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;        /* bound, as the controller's --bind      */
    uint64_t jobs;               /* started in all, > 0                    */
    double rate;                 /* jobs a second, 0: all at once          */
    uint64_t await_workers;      /* HELLOs before the first job, 0: none   */
    const char *output;          /* figures as JSON there, NULL: stdout    */
    bool quiet;                  /* no progress on stderr                  */
} lg_baseline_config_t;

/*  Runs until SIGINT or SIGTERM, then writes what it did as JSON.
    Returns 0, or 1 on an error (said on stderr).                          */
int lg_baseline_run (const lg_baseline_config_t *config);

/*  shoal-loadgen --baseline-http HOST:PORT, the least a REST server can
    do: one thread and epoll, keep-alive connections, and every request
    answered at once, as it is read, with 201 and a job id
    ({"id":"base-<n>"}); nothing is parsed but the request's length.
    The load generator's REST submitter at a steady rate against it
    measures the floor of a submission's latency on this machine.         */
typedef struct {
    const char *address;         /* HOST:PORT to listen on (numeric)       */
    const char *output;          /* figures as JSON there, NULL: stdout    */
    bool quiet;                  /* no progress on stderr                  */
} lg_baseline_http_config_t;

/*  Runs until SIGINT or SIGTERM, then writes what it did as JSON
    (requests answered, connections). Returns 0, or 1 on an error.        */
int lg_baseline_http_run (const lg_baseline_http_config_t *config);

#endif
