/*  fuzz_protocol.c: the wire decoder on arbitrary frames.

    Both frames of a message come from the network. The input is split in
    two: the first byte is the command length (modulo 32, cut to what
    follows), then the command bytes, then the body. Each frame is copied
    to a buffer of its own exact size, as ZeroMQ hands them over, so a
    read past either end is caught.

    A message that decodes must encode again (the codec checks the same
    table both ways), and the encoded text must decode to an equal body
    under the same command.                                                */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "shoal/protocol.h"
#include "shoal/spawn.h"

static void *
s_frame (const uint8_t *data, size_t size)
{
    void *frame = malloc (size ? size : 1);
    FUZZ_CHECK (frame, "out of memory");
    if (size)
        memcpy (frame, data, size);
    return frame;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t command_size = data[0] % 32;
    if (command_size > size - 1)
        command_size = size - 1;
    void *command = s_frame (data + 1, command_size);
    size_t body_size = size - 1 - command_size;
    void *body = s_frame (data + 1 + command_size, body_size);

    shoal_msg_type_t type = SHOAL_MSG_COUNT;
    json_t *decoded = (json_t *) 1;
    shoal_error_t err;
    int rc = shoal_msg_decode (command, command_size, body, body_size, &type,
                               &decoded, &err);

    /* The body as a RESULT and a HEARTBEAT through the fast paths: they
       may hand a message to the decoder above, never accept one it
       refuses, and read what it reads. */
    shoal_msg_type_t as_type;
    json_t *as = NULL;
    shoal_result_wire_t wire;
    bool fast = shoal_msg_result_fast (body, body_size, &wire) == 0;
    if (fast && shoal_msg_decode ("RESULT", 6, body, body_size, &as_type,
                                  &as, NULL) != 0) {
        /* The one allowed difference: the fast path hands a spawn list on
           as text, unchecked inside, and the decoder's strict parse also
           refuses a duplicate key within an entry. Such a list must then
           be refused by the spawn scanner, which fails the spawn task. */
        shoal_error_t spawn_err;
        FUZZ_CHECK (wire.spawn != NULL
                        && shoal_spawn_scan (wire.spawn, wire.spawn_size,
                                             SIZE_MAX, NULL, NULL, NULL,
                                             &spawn_err) != 0,
                    "fast RESULT accepts what the decoder refuses");
        fast = false;
    }
    if (fast) {
        FUZZ_CHECK (strcmp (wire.job, json_string_value (json_object_get (
                                          as, "job"))) == 0
                        && wire.task == json_integer_value (json_object_get (
                                            as, "task"))
                        && wire.attempt == json_integer_value (
                               json_object_get (as, "attempt"))
                        && strcmp (wire.status, json_string_value (
                                       json_object_get (as, "status"))) == 0
                        && wire.has_error == (json_object_get (as, "error")
                                              != NULL)
                        && (wire.spawn != NULL) == (json_object_get (as,
                                                                     "spawn")
                                                    != NULL),
                    "fast RESULT reads other values than the decoder");
        if (wire.has_error)
            FUZZ_CHECK (strcmp (wire.error, json_string_value (
                                    json_object_get (as, "error"))) == 0,
                        "fast RESULT reads another error");
        json_decref (as);
        as = NULL;
    }
    bool draining;
    if (shoal_msg_heartbeat_fast (body, body_size, &draining) == 0) {
        FUZZ_CHECK (shoal_msg_decode ("HEARTBEAT", 9, body, body_size,
                                      &as_type, &as, NULL) == 0,
                    "fast HEARTBEAT accepts what the decoder refuses");
        FUZZ_CHECK (draining == json_is_true (json_object_get (as,
                                                               "draining")),
                    "fast HEARTBEAT reads another draining");
        json_decref (as);
    }
    if (rc) {
        FUZZ_CHECK (rc == SHOAL_EPROTO || rc == SHOAL_ELIMIT,
                    "decode failed with code %d", rc);
        FUZZ_CHECK (err.code == rc, "err.code %d, returned %d", err.code, rc);
        FUZZ_CHECK (decoded == NULL, "a failed decode handed back a body");
        FUZZ_CHECK (memchr (err.message, '\0', sizeof err.message),
                    "message is not terminated");
        goto done;
    }
    FUZZ_CHECK ((unsigned) type < SHOAL_MSG_COUNT, "decoded type %d",
                (int) type);
    FUZZ_CHECK (json_is_object (decoded), "decoded body is not an object");
    const char *name = shoal_msg_name (type);
    FUZZ_CHECK (strlen (name) == command_size
                    && memcmp (name, command, command_size) == 0,
                "decoded as %s from a %zu byte command", name, command_size);

    size_t encoded_size = 0;
    char *encoded = shoal_msg_encode (type, decoded, &encoded_size, &err);
    FUZZ_CHECK (encoded, "%s decoded but does not encode: %s", name,
                err.message);
    FUZZ_CHECK (encoded_size == strlen (encoded), "size %zu, strlen %zu",
                encoded_size, strlen (encoded));

    shoal_msg_type_t again_type = SHOAL_MSG_COUNT;
    json_t *again = NULL;
    rc = shoal_msg_decode (name, strlen (name), encoded, encoded_size,
                           &again_type, &again, &err);
    FUZZ_CHECK (rc == 0, "%s re-encoded as '%s' does not decode: %s", name,
                encoded, err.message);
    FUZZ_CHECK (again_type == type, "%s decodes again as %s", name,
                shoal_msg_name (again_type));
    FUZZ_CHECK (json_equal (decoded, again), "%s changes on a round trip: %s",
                name, encoded);
    json_decref (again);
    free (encoded);
    json_decref (decoded);
done:
    free (command);
    free (body);
    return 0;
}
