/*  stats.c: log-linear histograms, the monotonic clock, /proc figures.

    Bucket i < 128 holds the value i. Above that a value v with highest
    set bit e (e >= 7) goes to bucket 128 + (e - 7) * 64 + the six bits
    after the highest one: the bucket is [m << (e - 6), (m + 1) << (e - 6))
    with m in 64..127, so its width is under 1/64 of its lower edge.       */
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t
s_bucket (uint64_t value)
{
    if (value < LG_HIST_LINEAR)
        return (size_t) value;
    unsigned e = 63u - (unsigned) __builtin_clzll (value);
    unsigned sub = (unsigned) (value >> (e - LG_HIST_SUB_BITS))
                   & (LG_HIST_SUB - 1);
    return LG_HIST_LINEAR + (size_t) (e - 7) * LG_HIST_SUB + sub;
}

/*  The largest value bucket `index` holds.                                */
static uint64_t
s_bucket_top (size_t index)
{
    if (index < LG_HIST_LINEAR)
        return index;
    unsigned e = (unsigned) ((index - LG_HIST_LINEAR) / LG_HIST_SUB) + 7;
    uint64_t m = LG_HIST_SUB + (index - LG_HIST_LINEAR) % LG_HIST_SUB;
    return ((m + 1) << (e - LG_HIST_SUB_BITS)) - 1;
}

void
lg_hist_reset (lg_hist_t *hist)
{
    memset (hist, 0, sizeof *hist);
}

void
lg_hist_record (lg_hist_t *hist, uint64_t value)
{
    hist->buckets[s_bucket (value)]++;
    if (hist->count == 0 || value < hist->min)
        hist->min = value;
    if (value > hist->max)
        hist->max = value;
    hist->count++;
    hist->sum += (double) value;
}

void
lg_hist_merge (lg_hist_t *into, const lg_hist_t *from)
{
    if (from->count == 0)
        return;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
}

uint64_t
lg_hist_quantile (const lg_hist_t *hist, double q)
{
    if (hist->count == 0)
        return 0;
    /* The rank of the value we want, 1-based: ceil(q * count). */
    double want = q * (double) hist->count;
    uint64_t rank = (uint64_t) want;
    if ((double) rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += hist->buckets[i];
        if (seen >= rank) {
            uint64_t top = s_bucket_top (i);
            return top < hist->max ? top : hist->max;
        }
    }
    return hist->max;
}

json_t *
lg_hist_to_json (const lg_hist_t *hist, double scale)
{
    double mean = hist->count ? hist->sum / (double) hist->count : 0.0;
    return json_pack ("{s:I, s:f, s:f, s:f, s:f}",
                      "count", (json_int_t) hist->count,
                      "p50", (double) lg_hist_quantile (hist, 0.50) / scale,
                      "p99", (double) lg_hist_quantile (hist, 0.99) / scale,
                      "max", (double) hist->max / scale,
                      "mean", mean / scale);
}

int
lg_json_write (json_t *report, const char *output)
{
    int flags = JSON_INDENT (2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (6);
    int rc = output ? json_dump_file (report, output, flags)
                    : json_dumpf (report, stdout, flags);
    if (!output)
        fputc ('\n', stdout);
    if (rc) {
        fprintf (stderr, "shoal-loadgen: cannot write %s\n",
                 output ? output : "the report");
        return -1;
    }
    return 0;
}

int64_t
lg_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*  Reads a small /proc file into `buf` (NUL-terminated). Returns its
    length, or -1.                                                         */
static ssize_t
s_read_file (const char *path, char *buf, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    size_t len = fread (buf, 1, size - 1, file);
    fclose (file);
    buf[len] = '\0';
    return (ssize_t) len;
}

static long
s_status_kib (const char *status, const char *field)
{
    const char *at = strstr (status, field);
    if (!at)
        return -1;
    return strtol (at + strlen (field), NULL, 10);
}

int
lg_proc_sample (pid_t pid, lg_proc_sample_t *sample)
{
    char path[64];
    char buf[8192];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    if (s_read_file (path, buf, sizeof buf) < 0)
        return -1;
    /* The command name is in parentheses and may hold spaces: fields are
       counted from the last ')'. utime and stime are fields 14 and 15,
       so the 12th and 13th after the state (field 3). */
    const char *p = strrchr (buf, ')');
    if (!p)
        return -1;
    p++;
    unsigned long long utime = 0, stime = 0;
    if (sscanf (p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                &utime, &stime) != 2)
        return -1;
    long ticks = sysconf (_SC_CLK_TCK);
    sample->cpu_s = (double) (utime + stime) / (double) (ticks > 0 ? ticks
                                                                    : 100);
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    if (s_read_file (path, buf, sizeof buf) < 0)
        return -1;
    sample->rss_kib = s_status_kib (buf, "VmRSS:");
    sample->hwm_kib = s_status_kib (buf, "VmHWM:");
    return sample->rss_kib < 0 || sample->hwm_kib < 0 ? -1 : 0;
}
