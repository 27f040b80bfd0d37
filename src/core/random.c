/*  random.c: random hex identifiers.                                     */
#include "shoal/random.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
shoal_random_hex (char *out, size_t bytes)
{
    unsigned char raw[32];
    if (bytes > sizeof raw)
        bytes = sizeof raw;
    if (getrandom (raw, bytes, 0) != (ssize_t) bytes) {
        /* getrandom does not fail for <= 256 bytes on Linux >= 3.17; this
           only keeps ids unique within the process should it ever. */
        static _Atomic uint64_t counter;   /* HTTP threads call this too */
        struct timespec now;
        clock_gettime (CLOCK_MONOTONIC, &now);
        uint64_t mix = ((uint64_t) now.tv_nsec ^ (uint64_t) now.tv_sec << 30)
                       ^ ((uint64_t) getpid () << 40) ^ ++counter;
        for (size_t i = 0; i < bytes; i++)
            raw[i] = (unsigned char) (mix >> ((i % 8) * 8));
    }
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
}
