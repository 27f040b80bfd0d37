/*  spawn.c: checking the spawn list of a spawn task.

    Bounded on purpose: a spawn list is user output that becomes controller
    memory, so its entry count has a ceiling and every value must be a
    scalar the placeholder filler can use as one argument.                 */
#include "shoal/spawn.h"

int
shoal_spawn_check (json_t *list, size_t max_entries, shoal_error_t *err)
{
    if (!json_is_array (list))
        return shoal_error_set (err, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                                "%s is not a JSON array", SHOAL_SPAWN_FILE);
    size_t count = json_array_size (list);
    if (count > max_entries)
        return shoal_error_set (err, SHOAL_ELIMIT, SHOAL_SPAWN_FILE,
                                "%s has %zu entries, over the limit of %zu",
                                SHOAL_SPAWN_FILE, count, max_entries);
    size_t index;
    json_t *entry;
    json_array_foreach (list, index, entry) {
        if (!json_is_object (entry))
            return shoal_error_set (err, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                                    "%s entry %zu is not an object",
                                    SHOAL_SPAWN_FILE, index);
        const char *key;
        json_t *value;
        json_object_foreach (entry, key, value) {
            if (!(json_is_string (value) || json_is_number (value)
                  || json_is_boolean (value)))
                return shoal_error_set (
                    err, SHOAL_EINVAL, key,
                    "%s entry %zu key '%s' is not a string, number or "
                    "boolean", SHOAL_SPAWN_FILE, index, key);
        }
    }
    return 0;
}

json_t *
shoal_spawn_parse (const char *text, size_t len, size_t max_entries,
                   shoal_error_t *err)
{
    json_error_t json_err;
    json_t *list = json_loadb (text, len, JSON_REJECT_DUPLICATES, &json_err);
    if (!list) {
        shoal_error_set_at (err, SHOAL_EINVAL, SHOAL_SPAWN_FILE, json_err.line,
                            json_err.column, SHOAL_SPAWN_FILE,
                            "not valid JSON: %s", json_err.text);
        return NULL;
    }
    if (shoal_spawn_check (list, max_entries, err)) {
        json_decref (list);
        return NULL;
    }
    return list;
}
