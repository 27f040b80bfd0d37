/*  protocol.c: the wire codec, driven by one table of commands and fields.

    Every command's body is a JSON object; the table below says which
    fields it carries, their JSON type, and which are required. Decoding
    rejects anything that does not match, so the controller and the worker
    act only on well-formed messages; encoding checks the same table so a
    sender's bug shows up in its own tests rather than on the other side. */
#include "shoal/protocol.h"

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
