/*  test_probe.c: the machine probe's summary (src/loadgen/probe.h) of
    samples made up here: what is a slow unit, what is one stall.         */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "probe.h"

#define S_MS 1000000LL
#define S_US 1000LL
#define S_SAMPLES 1000

/*  One sample every 2 ms, each unit 30 us of CPU and of wall time.        */
static lg_probe_sample_t *
s_steady (void)
{
    lg_probe_sample_t *samples = calloc (S_SAMPLES, sizeof *samples);
    assert_non_null (samples);
    for (int i = 0; i < S_SAMPLES; i++)
        samples[i] = (lg_probe_sample_t) { .at_ns = i * 2 * S_MS,
                                           .cpu_ns = 30 * S_US,
                                           .wall_ns = 30 * S_US };
    return samples;
}

/*  Sample i took `factor` times the usual 30 us, in CPU and wall time.   */
static void
s_slow (lg_probe_sample_t *samples, int i, int factor)
{
    samples[i].cpu_ns = samples[i].wall_ns = factor * 30 * S_US;
}

static void
test_a_steady_machine_has_no_stall (void **state)
{
    lg_probe_sample_t *samples = s_steady ();
    lg_probe_summary_t summary;
    assert_int_equal (lg_probe_summarize (samples, S_SAMPLES, &summary), 0);
    assert_int_equal (summary.samples, S_SAMPLES);
    assert_true (summary.unit_p50_us == 30.0);
    assert_true (summary.unit_p99_us == 30.0);
    assert_true (summary.unit_max_us == 30.0);
    assert_int_equal (summary.stalls, 0);
    assert_true (summary.slow_share == 0.0);
    assert_true (summary.stalled_ms == 0.0);
    /* Three times the median is not yet slow: only more is. */
    s_slow (samples, 10, 3);
    assert_int_equal (lg_probe_summarize (samples, S_SAMPLES, &summary), 0);
    assert_int_equal (summary.stalls, 0);
    free (samples);
}

static void
test_slow_samples_close_together_are_one_stall (void **state)
{
    lg_probe_sample_t *samples = s_steady ();
    /* Samples 100..104 (200-208 ms) ten times slower: one stall from
       200 ms to the end of the unit at 208 ms, 8.3 ms long. Sample 112
       is 16 ms after it (less than the 30 ms gap): the same stall. */
    for (int i = 100; i <= 104; i++)
        s_slow (samples, i, 10);
    s_slow (samples, 112, 10);
    /* Sample 500 (1 s) alone, twenty times slower: a second stall. */
    s_slow (samples, 500, 20);
    lg_probe_summary_t summary;
    assert_int_equal (lg_probe_summarize (samples, S_SAMPLES, &summary), 0);
    assert_int_equal (summary.stalls, 2);
    assert_true (summary.slow_share == 7.0 / S_SAMPLES);
    /* 200 ms to 224.3 ms (sample 112's end), and 0.6 ms. */
    assert_true (summary.longest_stall_ms > 24.29
                 && summary.longest_stall_ms < 24.31);
    assert_true (summary.stalled_ms > 24.89 && summary.stalled_ms < 24.91);
    assert_true (summary.unit_p50_us == 30.0);
    assert_true (summary.unit_max_us == 600.0);
    free (samples);
}

static void
test_slow_samples_further_apart_than_the_gap_are_two_stalls (void **state)
{
    lg_probe_sample_t *samples = s_steady ();
    s_slow (samples, 100, 10);   /* 200 ms */
    s_slow (samples, 120, 10);   /* 240 ms: 39.7 ms after the first ended */
    lg_probe_summary_t summary;
    assert_int_equal (lg_probe_summarize (samples, S_SAMPLES, &summary), 0);
    assert_int_equal (summary.stalls, 2);
    assert_true (summary.longest_stall_ms > 0.29
                 && summary.longest_stall_ms < 0.31);
    free (samples);
}

static void
test_the_percentiles_come_from_sorted_cpu_times (void **state)
{
    lg_probe_sample_t *samples = s_steady ();
    /* The last 20 samples are slow: the 99th percentile (index 990 of
       1000 sorted) is among them; the input order is left as it was. */
    for (int i = S_SAMPLES - 20; i < S_SAMPLES; i++)
        s_slow (samples, i, 5);
    lg_probe_summary_t summary;
    assert_int_equal (lg_probe_summarize (samples, S_SAMPLES, &summary), 0);
    assert_true (summary.unit_p99_us == 150.0);
    assert_true (summary.unit_p50_us == 30.0);
    assert_int_equal (samples[S_SAMPLES - 1].cpu_ns, 150 * S_US);
    assert_int_equal (samples[0].cpu_ns, 30 * S_US);
    assert_int_equal (summary.stalls, 1);
    free (samples);
}

static void
test_no_samples_summarise_to_zero (void **state)
{
    lg_probe_summary_t summary;
    assert_int_equal (lg_probe_summarize (NULL, 0, &summary), 0);
    assert_int_equal (summary.samples, 0);
    assert_int_equal (summary.stalls, 0);
    assert_true (summary.unit_p99_us == 0.0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_steady_machine_has_no_stall),
        cmocka_unit_test (test_slow_samples_close_together_are_one_stall),
        cmocka_unit_test (
            test_slow_samples_further_apart_than_the_gap_are_two_stalls),
        cmocka_unit_test (test_the_percentiles_come_from_sorted_cpu_times),
        cmocka_unit_test (test_no_samples_summarise_to_zero),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
