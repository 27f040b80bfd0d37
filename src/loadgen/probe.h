/*  probe.h: shoal-loadgen --probe-machine, how steady the machine itself
    is, for latency figures to be read against.

    Every S_PERIOD (2 ms) the probe runs one fixed unit of work (about
    30 us on a 2020s core) and times it with the CPU time the kernel
    charged its thread. On a steady machine that time barely moves. A
    virtual machine whose host takes part of its CPUs away without
    telling the guest (no steal time) charges the thread for time it did
    not run: the unit then takes many times its usual CPU time, for as
    long as that lasts. A load that needs most of such a machine falls
    behind by about a stall's length at each, whatever the program does;
    a light load goes on being served. The bench reports them.            */
#ifndef SHOAL_LOADGEN_PROBE_H
#define SHOAL_LOADGEN_PROBE_H

#include <stddef.h>
#include <stdint.h>

/*  A sample is slow when its unit took more than this many times the
    median CPU time; slow samples closer than LG_PROBE_GAP_NS to each
    other are one stall.                                                   */
#define LG_PROBE_SLOW_FACTOR 3
#define LG_PROBE_GAP_NS (30 * 1000000LL)

typedef struct {
    int64_t at_ns;               /* CLOCK_MONOTONIC when the unit began    */
    int64_t cpu_ns;              /* the CPU time charged for it            */
    int64_t wall_ns;             /* and the time it took                   */
} lg_probe_sample_t;

typedef struct {
    size_t samples;
    double unit_p50_us, unit_p99_us, unit_max_us;   /* CPU time per unit   */
    double slow_share;           /* of samples, 0..1                       */
    size_t stalls;               /* runs of slow samples                   */
    double longest_stall_ms;     /* first slow unit's start to last's end  */
    double stalled_ms;           /* all stalls together                    */
} lg_probe_summary_t;

/*  Summarises `count` samples in time order (sorts a copy; `samples` is
    left as it is). Returns 0, or -1 when out of memory.                   */
int lg_probe_summarize (const lg_probe_sample_t *samples, size_t count,
                        lg_probe_summary_t *out);

/*  Runs the probe for `seconds` and writes the summary as JSON to
    `output` (NULL: stdout). Returns 0, or 1 on an error (said on
    stderr).                                                               */
int lg_probe_run (double seconds, const char *output);

#endif
