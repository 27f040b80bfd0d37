/*  spawn.h: the spawn list a spawn task leaves in spawn.json.

    A spawn list is a JSON array of flat objects whose values are strings,
    numbers or booleans; each element becomes the params overlay of one
    task of the stage. The worker checks the file it reads and the
    controller checks the list it receives: neither trusts the other.      */
#ifndef SHOAL_SPAWN_H
#define SHOAL_SPAWN_H

#include <stddef.h>
#include <jansson.h>

#include "shoal/error.h"

/*  Default bound on the entries of one spawn list (the controller's
    --max-spawn-entries changes it there).                                 */
#define SHOAL_SPAWN_MAX_ENTRIES 1000000

/*  Name of the file a spawn task writes in its job directory.             */
#define SHOAL_SPAWN_FILE "spawn.json"

/*  Checks `list` (borrowed). Returns 0 or SHOAL_EINVAL / SHOAL_ELIMIT with
    a message saying which entry and key is wrong.                         */
int shoal_spawn_check (json_t *list, size_t max_entries, shoal_error_t *err);

/*  Parses and checks spawn.json text. Returns a new reference or NULL
    with `err` set (a JSON syntax error names line and column).            */
json_t *shoal_spawn_parse (const char *text, size_t len, size_t max_entries,
                           shoal_error_t *err);

/*  Called by shoal_spawn_scan for each entry of a good list: `text` and
    `size` are the entry's JSON object as it stands in the list (borrowed).
    Returns 0 to go on; anything else stops the scan and is returned.     */
typedef int (shoal_spawn_entry_fn) (void *arg, size_t index,
                                    const char *text, size_t size);

/*  Checks spawn list text without building it in memory: the same rules
    and messages as shoal_spawn_parse, in O(1) memory beyond the keys of
    one entry; past `max_entries` it stops at once. When the whole list is
    good, sets *count (may be NULL) and, with `fn`, calls it for each
    entry in order (a second pass). Returns 0, SHOAL_EINVAL or
    SHOAL_ELIMIT with `err` set, or what `fn` returned.                    */
int shoal_spawn_scan (const char *text, size_t len, size_t max_entries,
                      shoal_spawn_entry_fn *fn, void *arg, size_t *count,
                      shoal_error_t *err);

#endif
