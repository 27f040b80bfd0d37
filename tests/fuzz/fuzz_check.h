/*  fuzz_check.h: the one assertion the fuzz targets use.

    A target checks properties the headers promise (a decoded message
    encodes again, a filled template stays under its bound, ...). A broken
    promise must stop the run with a report libFuzzer keeps as a crash
    input, whatever -DNDEBUG says, so this prints both sides and aborts.   */
#ifndef SHOAL_FUZZ_CHECK_H
#define SHOAL_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                              \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf (stderr, "%s:%d: check failed: %s\n  ", __FILE__,      \
                     __LINE__, #cond);                                     \
            fprintf (stderr, __VA_ARGS__);                                 \
            fprintf (stderr, "\n");                                        \
            abort ();                                                      \
        }                                                                  \
    } while (0)

#endif
