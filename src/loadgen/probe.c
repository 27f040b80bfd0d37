/*  probe.c: how steady the machine is (see probe.h).                    */
#include "probe.h"
#include "stats.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_PROGRAM "shoal-loadgen"
/*  One unit every this long: a 1.5 % duty cycle, short enough to see a
    stall of a few milliseconds.                                           */
#define S_PERIOD_NS (2 * 1000000LL)
/*  Steps of the unit: about 30 us of CPU.                                 */
#define S_UNIT_STEPS 20000
/*  Its working set, within any L1 cache: the unit times the core, not
    the memory.                                                            */
#define S_UNIT_WORDS 4096

static int64_t
s_clock_ns (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*  Where each unit's result goes, so that the work is not optimised
    away.                                                                  */
static volatile uint32_t s_sink;

/*  The fixed unit of work.                                                */
static uint32_t
s_unit (uint32_t *words, uint32_t seed)
{
    uint32_t x = seed;
    for (int i = 0; i < S_UNIT_STEPS; i++) {
        x = x * 1103515245u + 12345u;
        words[x % S_UNIT_WORDS] += x;
    }
    return x;
}

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int
lg_probe_summarize (const lg_probe_sample_t *samples, size_t count,
                    lg_probe_summary_t *out)
{
    memset (out, 0, sizeof *out);
    out->samples = count;
    if (!count)
        return 0;
    int64_t *cpu = malloc (count * sizeof *cpu);
    if (!cpu)
        return -1;
    for (size_t i = 0; i < count; i++)
        cpu[i] = samples[i].cpu_ns;
    qsort (cpu, count, sizeof *cpu, s_compare_i64);
    int64_t median = cpu[(count - 1) / 2];
    out->unit_p50_us = (double) median / 1e3;
    out->unit_p99_us = (double) cpu[(count * 99) / 100 < count
                                         ? (count * 99) / 100
                                         : count - 1] / 1e3;
    out->unit_max_us = (double) cpu[count - 1] / 1e3;
    free (cpu);

    size_t slow = 0;
    bool open = false;
    int64_t stall_start = 0, stall_end = 0;
    for (size_t i = 0; i < count; i++) {
        if (samples[i].cpu_ns <= median * LG_PROBE_SLOW_FACTOR)
            continue;
        slow++;
        int64_t start = samples[i].at_ns;
        int64_t end = start + samples[i].wall_ns;
        if (open && start - stall_end < LG_PROBE_GAP_NS) {
            if (end > stall_end)
                stall_end = end;
            continue;
        }
        if (open) {
            double ms = (double) (stall_end - stall_start) / 1e6;
            out->stalled_ms += ms;
            if (ms > out->longest_stall_ms)
                out->longest_stall_ms = ms;
        }
        open = true;
        out->stalls++;
        stall_start = start;
        stall_end = end;
    }
    if (open) {
        double ms = (double) (stall_end - stall_start) / 1e6;
        out->stalled_ms += ms;
        if (ms > out->longest_stall_ms)
            out->longest_stall_ms = ms;
    }
    out->slow_share = (double) slow / (double) count;
    return 0;
}

int
lg_probe_run (double seconds, const char *output)
{
    size_t cap = (size_t) (seconds * 1e9 / S_PERIOD_NS) + 2;
    lg_probe_sample_t *samples = malloc (cap * sizeof *samples);
    uint32_t *words = calloc (S_UNIT_WORDS, sizeof *words);
    if (!samples || !words) {
        fprintf (stderr, S_PROGRAM ": out of memory for the probe\n");
        free (samples);
        free (words);
        return 1;
    }
    size_t count = 0;
    uint32_t seed = 1;
    int64_t start = s_clock_ns (CLOCK_MONOTONIC);
    int64_t end = start + (int64_t) (seconds * 1e9);
    /* A first unit, not kept: the first touch of `words` pays its page
       faults. */
    seed = s_unit (words, seed);
    for (int64_t next = start; count < cap; next += S_PERIOD_NS) {
        if (next >= end)
            break;
        struct timespec at = { .tv_sec = next / 1000000000,
                               .tv_nsec = next % 1000000000 };
        while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL)
               == EINTR)
            ;
        lg_probe_sample_t *sample = &samples[count++];
        sample->at_ns = s_clock_ns (CLOCK_MONOTONIC);
        int64_t cpu = s_clock_ns (CLOCK_THREAD_CPUTIME_ID);
        seed = s_unit (words, seed);
        sample->cpu_ns = s_clock_ns (CLOCK_THREAD_CPUTIME_ID) - cpu;
        sample->wall_ns = s_clock_ns (CLOCK_MONOTONIC) - sample->at_ns;
        /* A unit late by more than a period skips the periods it missed
           rather than running them back to back. */
        int64_t now = s_clock_ns (CLOCK_MONOTONIC);
        if (now > next + S_PERIOD_NS)
            next = now - S_PERIOD_NS;
    }
    lg_probe_summary_t summary;
    int rc = lg_probe_summarize (samples, count, &summary);
    double span_s = (double) (s_clock_ns (CLOCK_MONOTONIC) - start) / 1e9;
    s_sink = seed;
    free (samples);
    free (words);
    if (rc) {
        fprintf (stderr, S_PROGRAM ": out of memory for the probe\n");
        return 1;
    }
    json_t *report = json_pack (
        "{s:s, s:f, s:I, s:f, s:{s:f, s:f, s:f}, s:f, s:I, s:f, s:f, s:f}",
        "role", "machine-probe",
        "seconds", span_s,
        "samples", (json_int_t) summary.samples,
        "period_ms", (double) S_PERIOD_NS / 1e6,
        "unit_cpu_us", "p50", summary.unit_p50_us, "p99", summary.unit_p99_us,
        "max", summary.unit_max_us,
        "slow_share", summary.slow_share,
        "stalls", (json_int_t) summary.stalls,
        "stalls_per_s", span_s > 0 ? (double) summary.stalls / span_s : 0.0,
        "longest_stall_ms", summary.longest_stall_ms,
        "stalled_share", span_s > 0 ? summary.stalled_ms / 1e3 / span_s
                                    : 0.0);
    if (!report) {
        fprintf (stderr, S_PROGRAM ": out of memory for the probe\n");
        return 1;
    }
    rc = lg_json_write (report, output);
    json_decref (report);
    return rc ? 1 : 0;
}
