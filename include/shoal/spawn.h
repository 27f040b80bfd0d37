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

/*  Default bound on the entries of one spawn list.                        */
#define SHOAL_SPAWN_MAX_ENTRIES 100000

/*  Name of the file a spawn task writes in its job directory.             */
#define SHOAL_SPAWN_FILE "spawn.json"

/*  Checks `list` (borrowed). Returns 0 or SHOAL_EINVAL / SHOAL_ELIMIT with
    a message saying which entry and key is wrong.                         */
int shoal_spawn_check (json_t *list, size_t max_entries, shoal_error_t *err);

/*  Parses and checks spawn.json text. Returns a new reference or NULL
    with `err` set (a JSON syntax error names line and column).            */
json_t *shoal_spawn_parse (const char *text, size_t len, size_t max_entries,
                           shoal_error_t *err);

#endif
