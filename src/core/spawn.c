/*  spawn.c: checking the spawn list of a spawn task.

    Bounded on purpose: a spawn list is user output that becomes controller
    memory, so its entry count has a ceiling and every value must be a
    scalar the placeholder filler can use as one argument.                 */
#include "shoal/spawn.h"

#include "shoal/protocol.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* Checked before anything is built: a list over the limit costs no
       memory, however long it is. */
    if (shoal_spawn_scan (text, len, max_entries, NULL, NULL, NULL, err))
        return NULL;
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

/* ---- scanning the text ------------------------------------------------- */

/*  The keys of one entry, to find a duplicate: decoded text, with a hash
    index once there are more than a few.                                  */
typedef struct {
    const char *text;            /* the key in the list when not escaped   */
    size_t offset;               /* else: where in `decoded` it is         */
    bool in_decoded;
    size_t size;                 /* decoded length                         */
    uint64_t hash;
} s_key_t;

typedef struct {
    s_key_t *keys;
    size_t count, cap;
    char *decoded;               /* escaped keys, decoded one after another */
    size_t decoded_size, decoded_cap;
    uint32_t *index;             /* open addressing: key number + 1, 0 free */
    size_t index_cap;            /* a power of two, or 0 below S_KEYS_LINEAR */
} s_keys_t;

#define S_KEYS_LINEAR 16

static uint64_t
s_hash (const char *text, size_t size)
{
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ (unsigned char) text[i]) * 1099511628211ULL;
    return hash;
}

static const char *
s_key_text (const s_keys_t *keys, const s_key_t *key)
{
    return key->in_decoded ? keys->decoded + key->offset : key->text;
}

static bool
s_key_equal (const s_keys_t *keys, const s_key_t *a, const s_key_t *b)
{
    return a->hash == b->hash && a->size == b->size
           && memcmp (s_key_text (keys, a), s_key_text (keys, b), a->size)
                  == 0;
}

static void
s_index_put (s_keys_t *keys, size_t number)
{
    size_t mask = keys->index_cap - 1;
    size_t slot = keys->keys[number].hash & mask;
    while (keys->index[slot])
        slot = (slot + 1) & mask;
    keys->index[slot] = (uint32_t) number + 1;
}

/*  Adds key `string`; returns 1 when the entry had it already, -1 when
    out of memory, 0 otherwise.                                           */
static int
s_keys_add (s_keys_t *keys, const shoal_jscan_string_t *string)
{
    s_key_t key = { .text = string->raw, .size = string->size };
    if (string->escaped) {
        if (keys->decoded_size + string->size + 1 > keys->decoded_cap) {
            size_t cap = (keys->decoded_size + string->size + 1) * 2;
            char *grown = realloc (keys->decoded, cap);
            if (!grown)
                return -1;
            keys->decoded = grown;
            keys->decoded_cap = cap;
        }
        key.offset = keys->decoded_size;
        key.in_decoded = true;
        key.size = shoal_jscan_decode (string, keys->decoded + key.offset,
                                       string->size);
        keys->decoded_size += key.size + 1;
    }
    key.hash = s_hash (s_key_text (keys, &key), key.size);
    if (keys->count < S_KEYS_LINEAR) {
        for (size_t i = 0; i < keys->count; i++)
            if (s_key_equal (keys, &keys->keys[i], &key))
                return 1;
    }
    else {
        size_t mask = keys->index_cap - 1;
        for (size_t slot = key.hash & mask; keys->index[slot];
             slot = (slot + 1) & mask)
            if (s_key_equal (keys, &keys->keys[keys->index[slot] - 1], &key))
                return 1;
    }
    if (keys->count == keys->cap) {
        size_t cap = keys->cap ? keys->cap * 2 : 32;
        s_key_t *grown = realloc (keys->keys, cap * sizeof *grown);
        if (!grown)
            return -1;
        keys->keys = grown;
        keys->cap = cap;
    }
    keys->keys[keys->count++] = key;
    if (keys->count >= S_KEYS_LINEAR && keys->count * 2 > keys->index_cap) {
        size_t cap = keys->index_cap ? keys->index_cap * 2 : 64;
        while (cap < keys->count * 2)
            cap *= 2;
        uint32_t *index = calloc (cap, sizeof *index);
        if (!index)
            return -1;
        free (keys->index);
        keys->index = index;
        keys->index_cap = cap;
        for (size_t i = 0; i < keys->count; i++)
            s_index_put (keys, i);
    }
    else if (keys->count > S_KEYS_LINEAR)
        s_index_put (keys, keys->count - 1);
    return 0;
}

static void
s_keys_reset (s_keys_t *keys)
{
    keys->count = 0;
    keys->decoded_size = 0;
    if (keys->index)
        memset (keys->index, 0, keys->index_cap * sizeof *keys->index);
}

/*  What the first pass found wrong that is not a syntax error; a syntax
    error anywhere in the text is reported first, as a parser would.     */
typedef struct {
    int code;
    shoal_error_t err;
} s_refusal_t;

/*  Scans one entry, an object at the scanner. Returns false on a syntax
    error (in `scan`) or out of memory (*oom).                            */
static bool
s_scan_entry (shoal_jscan_t *scan, size_t index, s_keys_t *keys,
              s_refusal_t *refusal, bool *oom)
{
    s_keys_reset (keys);
    scan->pos++;   /* '{' */
    if (shoal_jscan_peek (scan) == '}') {
        scan->pos++;
        return true;
    }
    while (true) {
        shoal_jscan_string_t key;
        shoal_jscan_peek (scan);
        size_t key_pos = scan->pos;
        if (!shoal_jscan_string (scan, &key))
            return false;
        int added = s_keys_add (keys, &key);
        if (added < 0) {
            *oom = true;
            return false;
        }
        if (added > 0) {
            scan->pos = key_pos;
            scan->error = "duplicate object key";
            scan->error_pos = key_pos;
            return false;
        }
        if (!shoal_jscan_expect (scan, ':'))
            return false;
        shoal_jscan_type_t type = shoal_jscan_value (scan, NULL);
        if (type == SHOAL_JSCAN_ERROR)
            return false;
        if (!refusal->code && (type == SHOAL_JSCAN_OBJECT
                               || type == SHOAL_JSCAN_ARRAY
                               || type == SHOAL_JSCAN_NULL)) {
            const s_key_t *last = &keys->keys[keys->count - 1];
            char name[sizeof refusal->err.field];
            snprintf (name, sizeof name, "%.*s", (int) last->size,
                      s_key_text (keys, last));
            refusal->code = shoal_error_set (
                &refusal->err, SHOAL_EINVAL, name,
                "%s entry %zu key '%s' is not a string, number or boolean",
                SHOAL_SPAWN_FILE, index, name);
        }
        int next = shoal_jscan_peek (scan);
        if (next == '}') {
            scan->pos++;
            return true;
        }
        if (next != ',') {
            shoal_jscan_expect (scan, ',');
            return false;
        }
        scan->pos++;
    }
}

/*  The first pass: checks everything, counts the entries.                */
static int
s_scan_check (const char *text, size_t len, size_t max_entries,
              size_t *count, shoal_error_t *err)
{
    shoal_jscan_t scan;
    shoal_jscan_init (&scan, text, len);
    s_refusal_t refusal = { 0 };
    s_keys_t keys = { 0 };
    bool oom = false;
    size_t index = 0;
    int rc = 0;
    int first = shoal_jscan_peek (&scan);
    if (first == '{') {
        if (shoal_jscan_value (&scan, NULL) && shoal_jscan_end (&scan))
            refusal.code = shoal_error_set (&refusal.err, SHOAL_EINVAL,
                                            SHOAL_SPAWN_FILE,
                                            "%s is not a JSON array",
                                            SHOAL_SPAWN_FILE);
    }
    else if (first != '[') {
        scan.error = "'[' or '{' expected";
        scan.error_pos = scan.pos;
    }
    else {
        scan.pos++;
        bool ok = true;
        if (shoal_jscan_peek (&scan) == ']')
            scan.pos++;
        else
            while (ok) {
                if (index == max_entries) {
                    rc = shoal_error_set (
                        err, SHOAL_ELIMIT, SHOAL_SPAWN_FILE,
                        "%s has more than %zu entries, over the limit of "
                        "%zu", 
                        SHOAL_SPAWN_FILE, max_entries, max_entries);
                    break;
                }
                if (shoal_jscan_peek (&scan) == '{')
                    ok = s_scan_entry (&scan, index, &keys, &refusal, &oom);
                else {
                    ok = shoal_jscan_value (&scan, NULL) != SHOAL_JSCAN_ERROR;
                    if (ok && !refusal.code)
                        refusal.code = shoal_error_set (
                            &refusal.err, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                            "%s entry %zu is not an object",
                            SHOAL_SPAWN_FILE, index);
                }
                if (!ok)
                    break;
                index++;
                int next = shoal_jscan_peek (&scan);
                if (next == ']') {
                    scan.pos++;
                    break;
                }
                if (next != ',') {
                    scan.error = "',' or ']' expected";
                    scan.error_pos = scan.pos;
                    break;
                }
                scan.pos++;
            }
        if (!rc && !oom && !scan.error)
            shoal_jscan_end (&scan);
    }
    free (keys.keys);
    free (keys.decoded);
    free (keys.index);
    if (rc)
        return rc;
    if (oom)
        return shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
    if (scan.error) {
        int line, column;
        shoal_jscan_position (&scan, scan.error_pos, &line, &column);
        return shoal_error_set_at (err, SHOAL_EINVAL, SHOAL_SPAWN_FILE, line,
                                   column, SHOAL_SPAWN_FILE,
                                   "not valid JSON: %s", scan.error);
    }
    if (refusal.code) {
        if (err)
            *err = refusal.err;
        return refusal.code;
    }
    if (count)
        *count = index;
    return 0;
}

int
shoal_spawn_scan (const char *text, size_t len, size_t max_entries,
                  shoal_spawn_entry_fn *fn, void *arg, size_t *count,
                  shoal_error_t *err)
{
    size_t entries = 0;
    int rc = s_scan_check (text, len, max_entries, &entries, err);
    if (rc)
        return rc;
    if (count)
        *count = entries;
    if (!fn)
        return 0;
    /* Known good: walk the entries again, handing each one over. */
    shoal_jscan_t scan;
    shoal_jscan_init (&scan, text, len);
    shoal_jscan_expect (&scan, '[');
    for (size_t index = 0; index < entries; index++) {
        shoal_jscan_peek (&scan);
        size_t start = scan.pos;
        shoal_jscan_value (&scan, NULL);
        rc = fn (arg, index, text + start, scan.pos - start);
        if (rc)
            return rc;
        shoal_jscan_peek (&scan);
        scan.pos++;   /* ',' or ']' */
    }
    return 0;
}
