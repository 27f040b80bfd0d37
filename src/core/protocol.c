/*  protocol.c: the wire codec, driven by one table of commands and fields.

    Every command's body is a JSON object; the table below says which
    fields it carries, their JSON type, and which are required. Decoding
    rejects anything that does not match, so the controller and the worker
    act only on well-formed messages; encoding checks the same table so a
    sender's bug shows up in its own tests rather than on the other side. */
#include "shoal/protocol.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;   /* key in the body object                          */
    json_type type;     /* JSON_INTEGER, JSON_STRING, ...; JSON_TRUE
                           stands for either boolean                       */
    bool required;      /* absent required field: the message is refused   */
} s_field_t;

#define S_MAX_FIELDS 10

typedef struct {
    const char *name;                   /* command frame text              */
    s_field_t fields[S_MAX_FIELDS];     /* terminated by a NULL name       */
} s_command_t;

static const s_command_t s_commands[SHOAL_MSG_COUNT] = {
    [SHOAL_MSG_HELLO] = { "HELLO", {
        { "protocol", JSON_INTEGER, true },
        { "worker", JSON_STRING, true },
        { "host", JSON_STRING, true },
        { "slots", JSON_INTEGER, true },
        { "queue", JSON_INTEGER, false },
        { "running", JSON_INTEGER, false },
        { "tasks", JSON_ARRAY, false },
        { "instance", JSON_STRING, false },
    } },
    [SHOAL_MSG_WELCOME] = { "WELCOME", {
        { "controller", JSON_STRING, true },
        { "heartbeat_ms", JSON_INTEGER, true },
    } },
    [SHOAL_MSG_HEARTBEAT] = { "HEARTBEAT", {
        { "draining", JSON_TRUE, false },   /* worker: take no new tasks */
        { "heartbeat_ms", JSON_INTEGER, false }, /* controller: the period */
    } },
    [SHOAL_MSG_TASK] = { "TASK", {
        { "job", JSON_STRING, true },
        { "task", JSON_INTEGER, true },
        { "attempt", JSON_INTEGER, true },
        { "kind", JSON_STRING, true },
        { "command", JSON_STRING, true },
        { "args", JSON_ARRAY, true },
        { "inputs", JSON_ARRAY, true },
        { "params", JSON_OBJECT, true },
        { "timeout_ms", JSON_INTEGER, false },
    } },
    [SHOAL_MSG_RESULT] = { "RESULT", {
        { "job", JSON_STRING, true },
        { "task", JSON_INTEGER, true },
        { "attempt", JSON_INTEGER, true },
        { "status", JSON_STRING, true },
        { "exit_code", JSON_INTEGER, false },
        { "signal", JSON_INTEGER, false },
        { "error", JSON_STRING, false },
        { "duration_ms", JSON_INTEGER, false },
        { "spawn", JSON_ARRAY, false },
    } },
    [SHOAL_MSG_CANCEL] = { "CANCEL", {
        { "job", JSON_STRING, true },
        { "task", JSON_INTEGER, true },
        { "attempt", JSON_INTEGER, true },
    } },
    [SHOAL_MSG_BYE] = { "BYE", { { NULL, 0, false } } },
    [SHOAL_MSG_RECONNECT] = { "RECONNECT", { { NULL, 0, false } } },
};

static const char *
s_type_name (json_type type)
{
    switch (type) {
        case JSON_OBJECT:  return "an object";
        case JSON_ARRAY:   return "an array";
        case JSON_STRING:  return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL:    return "a number";
        case JSON_TRUE:
        case JSON_FALSE:   return "a boolean";
        default:           return "null";
    }
}

const char *
shoal_msg_name (shoal_msg_type_t type)
{
    return (unsigned) type < SHOAL_MSG_COUNT ? s_commands[type].name : "?";
}

/*  Checks `body` against the fields of `type`; unknown fields are allowed
    so a newer peer can add optional ones without breaking an older one.   */
static int
s_check_body (shoal_msg_type_t type, json_t *body, shoal_error_t *err)
{
    const s_command_t *command = &s_commands[type];
    if (!json_is_object (body))
        return shoal_error_set (err, SHOAL_EPROTO, NULL,
                                "%s body is not a JSON object", command->name);
    for (const s_field_t *field = command->fields; field->name; field++) {
        json_t *value = json_object_get (body, field->name);
        if (!value) {
            if (field->required)
                return shoal_error_set (err, SHOAL_EPROTO, field->name,
                                        "%s lacks field '%s'", command->name,
                                        field->name);
            continue;
        }
        bool fits = field->type == JSON_TRUE ? json_is_boolean (value)
                                             : json_typeof (value)
                                                   == field->type;
        if (!fits)
            return shoal_error_set (err, SHOAL_EPROTO, field->name,
                                    "%s field '%s' is not %s", command->name,
                                    field->name, s_type_name (field->type));
        if (field->type == JSON_INTEGER && json_integer_value (value) < 0)
            return shoal_error_set (err, SHOAL_EPROTO, field->name,
                                    "%s field '%s' is negative",
                                    command->name, field->name);
    }
    if (type == SHOAL_MSG_HELLO) {
        json_int_t version = json_integer_value (
            json_object_get (body, "protocol"));
        if (version != SHOAL_PROTOCOL_VERSION)
            return shoal_error_set (err, SHOAL_EPROTO, "protocol",
                                    "protocol version %lld is not supported "
                                    "(this side speaks %d)",
                                    (long long) version,
                                    SHOAL_PROTOCOL_VERSION);
        json_int_t slots = json_integer_value (json_object_get (body, "slots"));
        if (slots < 1 || slots > 4096)
            return shoal_error_set (err, SHOAL_EPROTO, "slots",
                                    "HELLO slots %lld is outside 1..4096",
                                    (long long) slots);
        json_int_t queue = json_integer_value (json_object_get (body,
                                                                "queue"));
        if (queue > slots)
            return shoal_error_set (err, SHOAL_EPROTO, "queue",
                                    "HELLO queue %lld is more than its %lld "
                                    "slots", (long long) queue,
                                    (long long) slots);
    }
    return 0;
}

int
shoal_msg_decode (const void *command, size_t command_size, const void *body,
                  size_t body_size, shoal_msg_type_t *type, json_t **body_out,
                  shoal_error_t *err)
{
    *body_out = NULL;
    int found = -1;
    for (int i = 0; i < SHOAL_MSG_COUNT; i++) {
        const char *name = s_commands[i].name;
        if (strlen (name) == command_size
            && memcmp (name, command, command_size) == 0) {
            found = i;
            break;
        }
    }
    if (found < 0)
        return shoal_error_set (err, SHOAL_EPROTO, "command",
                                "unknown command (%zu bytes)", command_size);
    if (body_size > SHOAL_MSG_MAX_SIZE)
        return shoal_error_set (err, SHOAL_ELIMIT, "body",
                                "%s body of %zu bytes is over the %d byte limit",
                                s_commands[found].name, body_size,
                                SHOAL_MSG_MAX_SIZE);
    json_error_t json_err;
    json_t *parsed = json_loadb ((const char *) body, body_size,
                                 JSON_REJECT_DUPLICATES, &json_err);
    if (!parsed)
        return shoal_error_set (err, SHOAL_EPROTO, "body",
                                "%s body is not JSON: %s",
                                s_commands[found].name, json_err.text);
    int rc = s_check_body ((shoal_msg_type_t) found, parsed, err);
    if (rc) {
        json_decref (parsed);
        return rc;
    }
    *type = (shoal_msg_type_t) found;
    *body_out = parsed;
    return 0;
}

char *
shoal_msg_encode (shoal_msg_type_t type, json_t *body, size_t *size,
                  shoal_error_t *err)
{
    if ((unsigned) type >= SHOAL_MSG_COUNT) {
        shoal_error_set (err, SHOAL_EPROTO, "command", "no such command %d",
                         (int) type);
        return NULL;
    }
    if (s_check_body (type, body, err))
        return NULL;
    char *text = json_dumps (body, JSON_COMPACT);
    if (!text) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "cannot encode %s",
                         s_commands[type].name);
        return NULL;
    }
    *size = strlen (text);
    return text;
}

/* ---- scanning JSON text without building it -------------------------- */

void
shoal_jscan_init (shoal_jscan_t *self, const char *text, size_t size)
{
    *self = (shoal_jscan_t) { .text = text, .size = size };
}

/*  Records the first syntax error; returns false for `return s_fail()`. */
static bool
s_fail (shoal_jscan_t *self, const char *why)
{
    if (!self->error) {
        self->error = why;
        self->error_pos = self->pos;
    }
    return false;
}

static shoal_jscan_type_t
s_fail_type (shoal_jscan_t *self, const char *why)
{
    s_fail (self, why);
    return SHOAL_JSCAN_ERROR;
}

int
shoal_jscan_peek (shoal_jscan_t *self)
{
    while (self->pos < self->size) {
        char c = self->text[self->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return (unsigned char) c;
        self->pos++;
    }
    return -1;
}

bool
shoal_jscan_expect (shoal_jscan_t *self, char c)
{
    if (shoal_jscan_peek (self) != (unsigned char) c)
        return s_fail (self, c == ':' ? "':' expected"
                             : c == '"' ? "string expected"
                                        : "unexpected token");
    self->pos++;
    return true;
}

bool
shoal_jscan_end (shoal_jscan_t *self)
{
    if (self->error)
        return false;
    if (shoal_jscan_peek (self) >= 0)
        return s_fail (self, "end of file expected");
    return true;
}

static int
s_hex4 (const char *p)
{
    int value = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0)
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

/*  Length of the valid UTF-8 sequence at `p` (at most `left` bytes), or
    0: the rules of jansson's utf8_check_full (no overlong forms, no
    surrogates, nothing past U+10FFFF).                                    */
static size_t
s_utf8_length (const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t length;
    uint32_t value;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        length = 2, value = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        length = 3, value = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        length = 4, value = c & 0x07;
    else
        return 0;
    if (left < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        value = value << 6 | (p[i] & 0x3F);
    }
    if ((length == 3 && value < 0x800) || (length == 4 && value < 0x10000)
        || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    return length;
}

bool
shoal_jscan_string (shoal_jscan_t *self, shoal_jscan_string_t *out)
{
    if (!shoal_jscan_expect (self, '"'))
        return false;
    const unsigned char *text = (const unsigned char *) self->text;
    size_t start = self->pos;
    bool escaped = false;
    while (true) {
        if (self->pos >= self->size)
            return s_fail (self, "premature end of input in a string");
        unsigned char c = text[self->pos];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            self->pos++;   /* the common case: plain ASCII */
            continue;
        }
        if (c == '"')
            break;
        if (c < 0x20)
            return s_fail (self, "control character in a string");
        if (c == '\\') {
            escaped = true;
            if (self->pos + 1 >= self->size)
                return s_fail (self, "premature end of input in a string");
            char e = (char) text[self->pos + 1];
            if (e != 'u') {
                if (!strchr ("\"\\/bfnrt", e) || !e)
                    return s_fail (self, "invalid escape");
                self->pos += 2;
                continue;
            }
            int unit = self->pos + 6 <= self->size
                           ? s_hex4 (self->text + self->pos + 2) : -1;
            if (unit < 0)
                return s_fail (self, "invalid escape");
            if (unit == 0)
                return s_fail (self, "\\u0000 is not allowed");
            if (unit >= 0xDC00 && unit <= 0xDFFF)
                return s_fail (self, "invalid Unicode escape");
            self->pos += 6;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                int low = self->pos + 6 <= self->size
                              && text[self->pos] == '\\'
                              && text[self->pos + 1] == 'u'
                              ? s_hex4 (self->text + self->pos + 2) : -1;
                if (low < 0xDC00 || low > 0xDFFF)
                    return s_fail (self, "invalid Unicode escape");
                self->pos += 6;
            }
            continue;
        }
        size_t length = s_utf8_length (text + self->pos,
                                       self->size - self->pos);
        if (!length)
            return s_fail (self, "invalid UTF-8");
        self->pos += length;
    }
    if (out)
        *out = (shoal_jscan_string_t) { .raw = self->text + start,
                                        .size = self->pos - start,
                                        .escaped = escaped };
    self->pos++;
    return true;
}

/*  Writes code point `cp` as UTF-8 at `out`; returns its length.         */
static size_t
s_utf8_put (uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | cp >> 6);
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | cp >> 12);
        out[1] = (char) (0x80 | (cp >> 6 & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | cp >> 18);
    out[1] = (char) (0x80 | (cp >> 12 & 0x3F));
    out[2] = (char) (0x80 | (cp >> 6 & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

size_t
shoal_jscan_decode (const shoal_jscan_string_t *string, char *out,
                    size_t size)
{
    if (string->size > size)
        return (size_t) -1;
    if (!string->escaped) {
        memcpy (out, string->raw, string->size);
        out[string->size] = '\0';
        return string->size;
    }
    /* Checked already: every escape is complete and valid. An escape is
       never shorter than what it decodes to (\uXXXX: at most 3 bytes,
       a surrogate pair of 12: 4). */
    const char *p = string->raw;
    const char *end = p + string->size;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
            case 'b': out[n++] = '\b'; break;
            case 'f': out[n++] = '\f'; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 't': out[n++] = '\t'; break;
            case 'u': {
                uint32_t cp = (uint32_t) s_hex4 (p);
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t low = (uint32_t) s_hex4 (p + 2);
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                n += s_utf8_put (cp, out + n);
                break;
            }
            default: out[n++] = e; break;   /* " \ / */
        }
    }
    out[n] = '\0';
    return n;
}

/*  A number, checked like jansson: integers must fit a long long, reals
    must not overflow.                                                     */
static shoal_jscan_type_t
s_number (shoal_jscan_t *self, long long *integer)
{
    const char *text = self->text;
    size_t start = self->pos, p = start, n = self->size;
    bool real = false;
    if (p < n && text[p] == '-')
        p++;
    if (p < n && text[p] == '0')
        p++;
    else if (p < n && text[p] >= '1' && text[p] <= '9')
        while (p < n && text[p] >= '0' && text[p] <= '9')
            p++;
    else {
        self->pos = p;
        return s_fail_type (self, "invalid number");
    }
    if (p < n && text[p] == '.') {
        real = true;
        p++;
        if (!(p < n && text[p] >= '0' && text[p] <= '9')) {
            self->pos = p;
            return s_fail_type (self, "invalid number");
        }
        while (p < n && text[p] >= '0' && text[p] <= '9')
            p++;
    }
    if (p < n && (text[p] == 'e' || text[p] == 'E')) {
        real = true;
        p++;
        if (p < n && (text[p] == '+' || text[p] == '-'))
            p++;
        if (!(p < n && text[p] >= '0' && text[p] <= '9')) {
            self->pos = p;
            return s_fail_type (self, "invalid number");
        }
        while (p < n && text[p] >= '0' && text[p] <= '9')
            p++;
    }
    if (p < n && ((text[p] >= '0' && text[p] <= '9') || text[p] == '.'
                  || text[p] == 'e' || text[p] == 'E' || text[p] == '-'
                  || text[p] == '+')) {
        self->pos = p;   /* "01", "1.2.3": jansson refuses these too */
        return s_fail_type (self, "invalid number");
    }
    size_t length = p - start;
    if (!real && length <= 18) {
        /* At most 18 digits cannot overflow: no strtoll needed. */
        size_t i = start;
        bool negative = text[i] == '-';
        if (negative)
            i++;
        long long value = 0;
        for (; i < p; i++)
            value = value * 10 + (text[i] - '0');
        if (integer)
            *integer = negative ? -value : value;
        self->pos = p;
        return SHOAL_JSCAN_INTEGER;
    }
    /* The range check needs a terminated copy. */
    char small[64];
    char *copy = length < sizeof small ? small : malloc (length + 1);
    if (!copy)
        return s_fail_type (self, "out of memory");
    memcpy (copy, text + start, length);
    copy[length] = '\0';
    bool ok = true;
    errno = 0;
    if (real) {
        double value = strtod (copy, NULL);
        ok = !(errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL));
    }
    else {
        long long value = strtoll (copy, NULL, 10);
        ok = errno != ERANGE;
        if (ok && integer)
            *integer = value;
    }
    if (copy != small)
        free (copy);
    if (!ok)
        return s_fail_type (self, real ? "real number overflow"
                                  : "too big integer");
    self->pos = p;
    return real ? SHOAL_JSCAN_REAL : SHOAL_JSCAN_INTEGER;
}

static bool
s_word (shoal_jscan_t *self, const char *word)
{
    size_t length = strlen (word);
    if (self->size - self->pos < length
        || memcmp (self->text + self->pos, word, length) != 0)
        return s_fail (self, "invalid token");
    self->pos += length;
    return true;
}

static shoal_jscan_type_t
s_value (shoal_jscan_t *self, long long *integer, int depth)
{
    int c = shoal_jscan_peek (self);
    switch (c) {
        case '{':
        case '[': {
            if (depth >= SHOAL_JSCAN_MAX_DEPTH)
                return s_fail_type (self, "maximum parsing depth reached");
            self->pos++;
            char close = c == '{' ? '}' : ']';
            if (shoal_jscan_peek (self) == close) {
                self->pos++;
                return c == '{' ? SHOAL_JSCAN_OBJECT : SHOAL_JSCAN_ARRAY;
            }
            while (true) {
                if (c == '{' && !(shoal_jscan_string (self, NULL)
                                  && shoal_jscan_expect (self, ':')))
                    return SHOAL_JSCAN_ERROR;
                if (!s_value (self, NULL, depth + 1))
                    return SHOAL_JSCAN_ERROR;
                int next = shoal_jscan_peek (self);
                self->pos++;
                if (next == close)
                    return c == '{' ? SHOAL_JSCAN_OBJECT : SHOAL_JSCAN_ARRAY;
                if (next != ',') {
                    self->pos--;
                    return s_fail_type (self, "',' or closing bracket expected");
                }
            }
        }
        case '"':
            return shoal_jscan_string (self, NULL) ? SHOAL_JSCAN_STRING
                                                   : SHOAL_JSCAN_ERROR;
        case 't':
            return s_word (self, "true") ? SHOAL_JSCAN_TRUE
                                         : SHOAL_JSCAN_ERROR;
        case 'f':
            return s_word (self, "false") ? SHOAL_JSCAN_FALSE
                                          : SHOAL_JSCAN_ERROR;
        case 'n':
            return s_word (self, "null") ? SHOAL_JSCAN_NULL
                                         : SHOAL_JSCAN_ERROR;
        default:
            if (c == '-' || (c >= '0' && c <= '9'))
                return s_number (self, integer);
            return s_fail_type (self, c < 0 ? "premature end of input"
                                       : "invalid token");
    }
}

shoal_jscan_type_t
shoal_jscan_value (shoal_jscan_t *self, long long *integer)
{
    return s_value (self, integer, 1);
}

void
shoal_jscan_position (const shoal_jscan_t *self, size_t pos, int *line,
                      int *column)
{
    int l = 1, col = 1;
    for (size_t i = 0; i < pos && i < self->size; i++) {
        unsigned char c = (unsigned char) self->text[i];
        if (c == '\n') {
            l++;
            col = 1;
        }
        else if ((c & 0xC0) != 0x80)
            col++;
    }
    *line = l;
    *column = col;
}

/* ---- fast paths for the hot messages ---------------------------------- */

int
shoal_msg_command (const void *command, size_t size)
{
    for (int i = 0; i < SHOAL_MSG_COUNT; i++) {
        const char *name = s_commands[i].name;
        if (strlen (name) == size && memcmp (name, command, size) == 0)
            return i;
    }
    return -1;
}

int
shoal_msg_heartbeat_fast (const void *body, size_t size, bool *draining)
{
    /* What workers send, byte for byte; anything else takes the slow,
       checking path. */
    static const struct {
        const char *text;
        bool draining;
    } known[] = {
        { "{}", false },
        { "{\"draining\":true}", true },
        { "{\"draining\":false}", false },
        { "{\"draining\": true}", true },
        { "{\"draining\": false}", false },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (size == strlen (known[i].text)
            && memcmp (body, known[i].text, size) == 0) {
            *draining = known[i].draining;
            return 0;
        }
    return 1;
}

bool
shoal_heartbeat_answer_due (int64_t silent, int64_t period)
{
    return silent >= period / 2;
}

int64_t
shoal_heartbeat_own_after (int64_t period)
{
    return period + period / 4;
}

bool
shoal_heartbeat_own_due (int64_t silent, int64_t period)
{
    return silent >= shoal_heartbeat_own_after (period);
}

size_t
shoal_msg_heartbeat_text (char *buf, size_t size, int64_t heartbeat_ms)
{
    int n = snprintf (buf, size, "{\"heartbeat_ms\":%lld}",
                      (long long) heartbeat_ms);
    return n > 0 && (size_t) n < size ? (size_t) n : 0;
}

int
shoal_msg_heartbeat_period (const void *body, size_t size,
                            int64_t *heartbeat_ms)
{
    /* What controllers send: {} (before the field existed) or exactly
       what shoal_msg_heartbeat_text writes. */
    static const char prefix[] = "{\"heartbeat_ms\":";
    const char *text = body;
    *heartbeat_ms = 0;
    if (size == 2 && memcmp (text, "{}", 2) == 0)
        return 0;
    size_t plen = sizeof prefix - 1;
    if (size > plen + 1 && size <= plen + 19 && memcmp (text, prefix, plen) == 0
        && text[size - 1] == '}' && text[plen] >= '1' && text[plen] <= '9') {
        int64_t value = 0;
        size_t i = plen;
        while (i < size - 1 && text[i] >= '0' && text[i] <= '9')
            value = value * 10 + (text[i++] - '0');
        if (i == size - 1) {
            *heartbeat_ms = value;
            return 0;
        }
    }
    /* Anything else: the full decoder judges it. */
    shoal_msg_type_t type;
    json_t *decoded = NULL;
    shoal_error_t err;
    shoal_error_clear (&err);
    if (shoal_msg_decode ("HEARTBEAT", 9, body, size, &type, &decoded, &err))
        return -1;
    json_t *value = json_object_get (decoded, "heartbeat_ms");
    if (value && json_integer_value (value) > 0)
        *heartbeat_ms = json_integer_value (value);
    json_decref (decoded);
    return 0;
}

/*  The fields of a RESULT, in the order of the table above.             */
enum { S_R_JOB, S_R_TASK, S_R_ATTEMPT, S_R_STATUS, S_R_EXIT_CODE,
       S_R_SIGNAL, S_R_ERROR, S_R_DURATION, S_R_SPAWN, S_R_COUNT };

int
shoal_msg_result_fast (const void *body, size_t size, shoal_result_wire_t *out)
{
    const s_field_t *fields = s_commands[SHOAL_MSG_RESULT].fields;
    if (size > SHOAL_MSG_MAX_SIZE)
        return 1;
    shoal_jscan_t scan;
    shoal_jscan_init (&scan, body, size);
    memset (out, 0, offsetof (shoal_result_wire_t, error));
    out->error[0] = '\0';
    out->spawn = NULL;
    out->spawn_size = 0;
    unsigned seen = 0;
    if (!shoal_jscan_expect (&scan, '{'))
        return 1;
    if (shoal_jscan_peek (&scan) == '}')
        return 1;   /* lacks the required fields */
    while (true) {
        shoal_jscan_string_t key;
        if (!shoal_jscan_string (&scan, &key) || key.escaped
            || !shoal_jscan_expect (&scan, ':'))
            return 1;
        int field = -1;
        for (int i = 0; i < S_R_COUNT; i++)
            if (strlen (fields[i].name) == key.size
                && memcmp (fields[i].name, key.raw, key.size) == 0) {
                field = i;
                break;
            }
        if (field < 0 || seen & (1u << field))
            return 1;   /* unknown or duplicate: let the slow path judge */
        seen |= 1u << field;
        shoal_jscan_peek (&scan);
        size_t value_start = scan.pos;
        long long integer = 0;
        shoal_jscan_string_t text;
        shoal_jscan_type_t type;
        if (scan.pos < scan.size && scan.text[scan.pos] == '"')
            type = shoal_jscan_string (&scan, &text) ? SHOAL_JSCAN_STRING
                                                     : SHOAL_JSCAN_ERROR;
        else
            type = shoal_jscan_value (&scan, &integer);
        if (fields[field].type == JSON_INTEGER) {
            if (type != SHOAL_JSCAN_INTEGER || integer < 0)
                return 1;
            long long *slot[S_R_COUNT] = {
                [S_R_TASK] = &out->task, [S_R_ATTEMPT] = &out->attempt,
                [S_R_EXIT_CODE] = &out->exit_code,
                [S_R_SIGNAL] = &out->signal,
                [S_R_DURATION] = &out->duration_ms,
            };
            *slot[field] = integer;
            out->has_exit_code |= field == S_R_EXIT_CODE;
            out->has_signal |= field == S_R_SIGNAL;
            out->has_duration |= field == S_R_DURATION;
        }
        else if (fields[field].type == JSON_STRING) {
            if (type != SHOAL_JSCAN_STRING)
                return 1;
            char *buffer = field == S_R_JOB ? out->job
                           : field == S_R_STATUS ? out->status
                                                 : out->error;
            size_t room = field == S_R_JOB ? sizeof out->job
                          : field == S_R_STATUS ? sizeof out->status
                                                : sizeof out->error;
            if (shoal_jscan_decode (&text, buffer, room - 1) == (size_t) -1)
                return 1;
            out->has_error |= field == S_R_ERROR;
        }
        else {   /* spawn */
            if (type != SHOAL_JSCAN_ARRAY)
                return 1;
            out->spawn = (const char *) body + value_start;
            out->spawn_size = scan.pos - value_start;
        }
        int next = shoal_jscan_peek (&scan);
        scan.pos++;
        if (next == '}')
            break;
        if (next != ',')
            return 1;
    }
    if (!shoal_jscan_end (&scan))
        return 1;
    for (int i = 0; i < S_R_COUNT; i++)
        if (fields[i].required && !(seen & (1u << i)))
            return 1;
    /* A job id or status with a NUL inside cannot be what it claims. */
    if (strlen (out->job) == 0 && seen & (1u << S_R_JOB))
        return 1;
    return 0;
}
