/*  stats.h: latency histograms, the clock, and process figures from /proc.

    A histogram counts values (microseconds) in log-linear buckets: exact
    below 128, then 64 buckets per power of two, so a percentile read back
    is within 1.6 % of the true value, whatever the range. Its size is
    fixed (no allocation while recording), two histograms merge by adding
    their buckets, and the exact maximum is kept beside the buckets.

    Process figures come from /proc/<pid>/stat (user + system CPU of all
    the process's threads, in clock ticks: 10 ms resolution, so measure
    windows of seconds) and /proc/<pid>/status (VmRSS, VmHWM).            */
#ifndef SHOAL_LOADGEN_STATS_H
#define SHOAL_LOADGEN_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/*  Exact buckets below this value.                                        */
#define LG_HIST_LINEAR 128
/*  Buckets per power of two above it (2^6).                               */
#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1 << LG_HIST_SUB_BITS)
/*  Enough buckets for any uint64_t value.                                 */
#define LG_HIST_BUCKETS (LG_HIST_LINEAR + (64 - 7) * LG_HIST_SUB)

/*  Invariant: count is the sum of buckets; min <= max when count > 0.     */
typedef struct {
    uint64_t buckets[LG_HIST_BUCKETS]; /* counts per bucket                */
    uint64_t count;                    /* values recorded                  */
    uint64_t max;                      /* largest value, exact             */
    uint64_t min;                      /* smallest value, exact            */
    double sum;                        /* for the mean                     */
} lg_hist_t;

/*  Empties `hist`.                                                        */
void lg_hist_reset (lg_hist_t *hist);

/*  Counts one value. O(1), no allocation.                                 */
void lg_hist_record (lg_hist_t *hist, uint64_t value);

/*  Adds the counts of `from` to `into`.                                   */
void lg_hist_merge (lg_hist_t *into, const lg_hist_t *from);

/*  The value at quantile q (0..1): the upper edge of the bucket holding
    it, never above the exact maximum. 0 for an empty histogram.           */
uint64_t lg_hist_quantile (const lg_hist_t *hist, double q);

/*  {"count", "p50", "p99", "max", "mean"} with values divided by `scale`
    (1 for microseconds, 1000 for milliseconds). A new reference.          */
json_t *lg_hist_to_json (const lg_hist_t *hist, double scale);

/*  Monotonic clock in nanoseconds.                                        */
int64_t lg_now_ns (void);

/*  What /proc says about one process at one moment.                       */
typedef struct {
    double cpu_s;        /* user + system time of all threads, seconds     */
    long rss_kib;        /* VmRSS                                          */
    long hwm_kib;        /* VmHWM: peak resident set size                  */
} lg_proc_sample_t;

/*  Reads /proc/<pid>/stat and /proc/<pid>/status. Returns 0, or -1 when
    the process is gone or the files cannot be parsed.                     */
int lg_proc_sample (pid_t pid, lg_proc_sample_t *sample);

/*  Writes `report` (borrowed) as indented JSON, keys in the order they
    were set, to the file `output`, or to stdout when it is NULL. Returns
    0, or -1 after saying on stderr that it could not.                    */
int lg_json_write (json_t *report, const char *output);

#endif
