/*  fuzz_spawn.c: the spawn.json checker on arbitrary bytes.

    spawn.json is written by a user's program and read by the worker, then
    sent on to the controller: a hostile file must be refused cleanly. The
    entry limit is small here so that the bound is reached by short
    inputs. An accepted list must pass shoal_spawn_check again and hold
    only flat objects of scalars, no more than the limit of them.          */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "shoal/spawn.h"

#define MAX_ENTRIES 4

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    shoal_error_t err;
    json_t *list = shoal_spawn_parse ((const char *) data, size, MAX_ENTRIES,
                                      &err);
    if (!list) {
        FUZZ_CHECK (err.code == SHOAL_EINVAL || err.code == SHOAL_ELIMIT,
                    "refused with code %d: %s", err.code, err.message);
        FUZZ_CHECK (memchr (err.message, '\0', sizeof err.message),
                    "message is not terminated");
        return 0;
    }
    FUZZ_CHECK (json_is_array (list), "accepted a non-array");
    FUZZ_CHECK (json_array_size (list) <= MAX_ENTRIES,
                "accepted %zu entries over a limit of %d",
                json_array_size (list), MAX_ENTRIES);
    FUZZ_CHECK (shoal_spawn_check (list, MAX_ENTRIES, &err) == 0,
                "an accepted list fails the check: %s", err.message);
    size_t index;
    json_t *entry;
    json_array_foreach (list, index, entry) {
        FUZZ_CHECK (json_is_object (entry), "entry %zu is not an object",
                    index);
        const char *key;
        json_t *value;
        json_object_foreach (entry, key, value)
            FUZZ_CHECK (json_is_string (value) || json_is_number (value)
                            || json_is_boolean (value),
                        "entry %zu key '%s' is not a scalar", index, key);
    }
    //  A limit one below the length of the list refuses it.
    if (json_array_size (list) > 0)
        FUZZ_CHECK (shoal_spawn_check (list, json_array_size (list) - 1, &err)
                        == SHOAL_ELIMIT,
                    "a list of %zu passes a limit of %zu",
                    json_array_size (list), json_array_size (list) - 1);
    json_decref (list);
    return 0;
}
