/*  random.h: random identifiers (job ids, instance ids of processes).    */
#ifndef SHOAL_RANDOM_H
#define SHOAL_RANDOM_H

#include <stddef.h>

/*  Writes `bytes` random bytes (at most 32) as 2 * `bytes` lowercase hex
    digits and a NUL into `out`, which must hold 2 * bytes + 1. Uses the
    kernel's random source; should it fail, a mix of time, pid and a
    counter that is still unique within this process.                     */
void shoal_random_hex (char *out, size_t bytes);

/*  A job id is this many random bytes in hex: 16 characters, made by the
    REST handler thread that takes the submission.                        */
#define SHOAL_JOB_ID_BYTES 8

#endif
