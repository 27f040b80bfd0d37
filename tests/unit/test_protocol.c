/*  test_protocol.c: the wire codec, as a specification.

    Each test states one rule of the protocol in its name. The valid
    bodies below are written out by hand from the table in protocol.h,
    and the refusal tests derive their cases from them (every required
    field removed, every field given the wrong type, every integer made
    negative), so a field added to the table without a test shows up here
    as a round trip that no longer matches.                                */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shoal/protocol.h"

/*  A valid body of each command and the fields the protocol requires.    */
typedef struct {
    shoal_msg_type_t type;
    const char *name;               /* the command frame                   */
    const char *body;               /* a valid body using every field      */
    const char *required[9];        /* required fields, NULL-terminated    */
} s_case_t;

static const s_case_t s_cases[] = {
    { SHOAL_MSG_HELLO, "HELLO",
      "{\"protocol\": 1, \"worker\": \"w1\", \"host\": \"h1\", \"slots\": 4}",
      { "protocol", "worker", "host", "slots" } },
    { SHOAL_MSG_WELCOME, "WELCOME",
      "{\"controller\": \"c1\", \"heartbeat_ms\": 1000}",
      { "controller", "heartbeat_ms" } },
    { SHOAL_MSG_HEARTBEAT, "HEARTBEAT", "{}", { NULL } },
    { SHOAL_MSG_TASK, "TASK",
      "{\"job\": \"j1\", \"task\": 3, \"attempt\": 2, \"kind\": \"task\","
      " \"command\": \"echo\", \"args\": [\"{x}\"],"
      " \"inputs\": [{\"name\": \"x\", \"source\": \"parameter\"}],"
      " \"params\": {\"x\": \"1\"}}",
      { "job", "task", "attempt", "kind", "command", "args", "inputs",
        "params" } },
    { SHOAL_MSG_RESULT, "RESULT",
      "{\"job\": \"j1\", \"task\": 3, \"attempt\": 2, \"status\": \"exited\","
      " \"exit_code\": 0, \"signal\": 0, \"error\": \"\","
      " \"duration_ms\": 12, \"spawn\": [{\"a\": \"b\"}]}",
      { "job", "task", "attempt", "status" } },
    { SHOAL_MSG_CANCEL, "CANCEL",
      "{\"job\": \"j1\", \"task\": 3, \"attempt\": 2}",
      { "job", "task", "attempt" } },
    { SHOAL_MSG_BYE, "BYE", "{}", { NULL } },
    { SHOAL_MSG_RECONNECT, "RECONNECT", "{}", { NULL } },
};

#define S_CASES (sizeof s_cases / sizeof s_cases[0])

static json_t *
s_load (const char *text)
{
    json_error_t error;
    json_t *value = json_loads (text, 0, &error);
    if (!value)
        fail_msg ("test body does not parse: %s: %s", text, error.text);
    return value;
}

/*  Asserts that decoding fails with `code` and err.field == `field`, and
    that nothing is handed back. `what` describes the case on failure.     */
static void
s_assert_refused (const char *what, const char *name, const char *body,
                  size_t body_size, int code, const char *field)
{
    shoal_error_t err;
    shoal_error_clear (&err);
    shoal_msg_type_t type = SHOAL_MSG_COUNT;
    json_t *out = NULL;
    int rc = shoal_msg_decode (name, strlen (name), body, body_size, &type,
                               &out, &err);
    if (rc != code || strcmp (err.field, field) != 0 || out)
        print_error ("case: %s\n  expected code %d field '%s'\n"
                     "  got code %d field '%s' message '%s'\n",
                     what, code, field, rc, err.field, err.message);
    assert_int_equal (rc, code);
    assert_int_equal (err.code, code);
    assert_string_equal (err.field, field);
    assert_null (out);
    assert_true (strlen (err.message) > 0);
}

static void
s_assert_json_refused (const char *what, const char *name, json_t *body,
                       int code, const char *field)
{
    char *text = json_dumps (body, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null (text);
    s_assert_refused (what, name, text, strlen (text), code, field);
    free (text);
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

/* ---- round trips ---------------------------------------------------- */

static void
test_every_command_round_trips (void **state)
{
    for (size_t i = 0; i < S_CASES; i++) {
        const s_case_t *c = &s_cases[i];
        json_t *body = s_load (c->body);
        shoal_error_t err;
        shoal_error_clear (&err);
        size_t size = 0;
        char *text = shoal_msg_encode (c->type, body, &size, &err);
        if (!text)
            fail_msg ("%s does not encode: %s", c->name, err.message);
        assert_int_equal (size, strlen (text));

        const char *name = shoal_msg_name (c->type);
        assert_string_equal (name, c->name);
        shoal_msg_type_t type = SHOAL_MSG_COUNT;
        json_t *decoded = NULL;
        int rc = shoal_msg_decode (name, strlen (name), text, size, &type,
                                   &decoded, &err);
        if (rc)
            fail_msg ("%s does not decode: %s", c->name, err.message);
        assert_int_equal (type, c->type);
        if (!json_equal (body, decoded))
            fail_msg ("%s changed in the round trip: %s", c->name, text);
        free (text);
        json_decref (decoded);
        json_decref (body);
    }
}

static void
test_every_command_has_a_case (void **state)
{
    //  Guards the table above: a new command needs a valid body here.
    assert_int_equal (S_CASES, SHOAL_MSG_COUNT);
    for (size_t i = 0; i < S_CASES; i++)
        assert_int_equal (s_cases[i].type, (shoal_msg_type_t) i);
}

static void
test_name_of_an_unknown_type_is_a_question_mark (void **state)
{
    assert_string_equal (shoal_msg_name (SHOAL_MSG_COUNT), "?");
    assert_string_equal (shoal_msg_name ((shoal_msg_type_t) -1), "?");
}

static void
test_unknown_fields_are_accepted (void **state)
{
    //  A newer peer may add optional fields without breaking this one.
    const char *body = "{\"controller\": \"c\", \"heartbeat_ms\": 5,"
                       " \"extra\": [1, {\"x\": null}]}";
    shoal_msg_type_t type = SHOAL_MSG_COUNT;
    json_t *out = NULL;
    shoal_error_t err;
    shoal_error_clear (&err);
    assert_int_equal (shoal_msg_decode ("WELCOME", 7, body, strlen (body),
                                        &type, &out, &err), 0);
    assert_int_equal (type, SHOAL_MSG_WELCOME);
    assert_non_null (json_object_get (out, "extra"));
    json_decref (out);
}

static void
test_optional_result_fields_may_be_absent (void **state)
{
    const char *body = "{\"job\": \"j\", \"task\": 0, \"attempt\": 0,"
                       " \"status\": \"error\"}";
    shoal_msg_type_t type = SHOAL_MSG_COUNT;
    json_t *out = NULL;
    assert_int_equal (shoal_msg_decode ("RESULT", 6, body, strlen (body),
                                        &type, &out, NULL), 0);
    assert_int_equal (type, SHOAL_MSG_RESULT);
    json_decref (out);
}

/* ---- refusals ------------------------------------------------------- */

static void
test_unknown_command_is_refused_naming_command (void **state)
{
    const char *names[] = { "NOPE", "hello", "HELL", "HELLOO", "", "TASK " };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        s_assert_refused (names[i], names[i], "{}", 2, SHOAL_EPROTO,
                          "command");
}

static void
test_command_frame_with_a_nul_byte_is_refused (void **state)
{
    shoal_msg_type_t type;
    json_t *out = NULL;
    shoal_error_t err;
    shoal_error_clear (&err);
    assert_int_equal (shoal_msg_decode ("BYE\0", 4, "{}", 2, &type, &out,
                                        &err), SHOAL_EPROTO);
    assert_string_equal (err.field, "command");
    assert_null (out);
}

static void
test_body_that_is_not_json_is_refused_naming_body (void **state)
{
    const char *bodies[] = { "", "not json", "{", "{\"a\": }", "{} {}",
                             "{\"a\": 1, \"a\": 2}" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        s_assert_refused (bodies[i], "HEARTBEAT", bodies[i],
                          strlen (bodies[i]), SHOAL_EPROTO, "body");
}

static void
test_body_that_is_an_array_is_refused_as_not_an_object (void **state)
{
    //  There is no one field to blame here, so err.field stays empty and
    //  the message says what the body is not.
    const char *bodies[] = { "[]", "[{}]" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        s_assert_refused (bodies[i], "BYE", bodies[i], strlen (bodies[i]),
                          SHOAL_EPROTO, "");
        shoal_error_t err;
        shoal_error_clear (&err);
        shoal_msg_type_t type;
        json_t *out = NULL;
        shoal_msg_decode ("BYE", 3, bodies[i], strlen (bodies[i]), &type,
                          &out, &err);
        s_assert_contains (err.message, "not a JSON object");
    }
}

static void
test_body_that_is_a_bare_scalar_is_refused_naming_body (void **state)
{
    //  The parser only takes an object or array at the top, so a bare
    //  scalar fails as JSON, before the object check.
    const char *bodies[] = { "\"text\"", "1", "null", "true" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        s_assert_refused (bodies[i], "BYE", bodies[i], strlen (bodies[i]),
                          SHOAL_EPROTO, "body");
}

static void
test_missing_required_field_is_refused_naming_it (void **state)
{
    for (size_t i = 0; i < S_CASES; i++) {
        const s_case_t *c = &s_cases[i];
        for (const char *const *field = c->required; *field; field++) {
            json_t *body = s_load (c->body);
            assert_int_equal (json_object_del (body, *field), 0);
            char what[128];
            snprintf (what, sizeof what, "%s without %s", c->name, *field);
            s_assert_json_refused (what, c->name, body, SHOAL_EPROTO, *field);
            json_decref (body);
        }
    }
}

/*  A value of another JSON type than `value`.                             */
static json_t *
s_other_type (json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_INTEGER: return json_string ("1");
        case JSON_STRING:  return json_integer (1);
        case JSON_ARRAY:   return json_object ();
        case JSON_OBJECT:  return json_array ();
        default:           return json_null ();
    }
}

static void
test_field_of_wrong_type_is_refused_naming_it (void **state)
{
    for (size_t i = 0; i < S_CASES; i++) {
        const s_case_t *c = &s_cases[i];
        json_t *valid = s_load (c->body);
        const char *key;
        json_t *value;
        json_object_foreach (valid, key, value) {
            json_t *body = json_deep_copy (valid);
            json_object_set_new (body, key, s_other_type (value));
            char what[128];
            snprintf (what, sizeof what, "%s with %s of another type",
                      c->name, key);
            s_assert_json_refused (what, c->name, body, SHOAL_EPROTO, key);
            json_object_set_new (body, key, json_null ());
            s_assert_json_refused (what, c->name, body, SHOAL_EPROTO, key);
            json_decref (body);
        }
        json_decref (valid);
    }
}

static void
test_draining_flag_must_be_a_boolean (void **state)
{
    const char *good[] = { "{\"draining\": true}", "{\"draining\": false}" };
    for (size_t i = 0; i < 2; i++) {
        shoal_msg_type_t type;
        json_t *out = NULL;
        assert_int_equal (shoal_msg_decode ("HEARTBEAT", 9, good[i],
                                            strlen (good[i]), &type, &out,
                                            NULL), 0);
        json_decref (out);
    }
    const char *bad = "{\"draining\": 1}";
    s_assert_refused (bad, "HEARTBEAT", bad, strlen (bad), SHOAL_EPROTO,
                      "draining");
}

static void
test_real_number_for_an_integer_field_is_refused (void **state)
{
    const char *body = "{\"job\": \"j\", \"task\": 1.5, \"attempt\": 1}";
    s_assert_refused ("task 1.5", "CANCEL", body, strlen (body), SHOAL_EPROTO,
                      "task");
}

static void
test_negative_integer_is_refused_naming_it (void **state)
{
    for (size_t i = 0; i < S_CASES; i++) {
        const s_case_t *c = &s_cases[i];
        json_t *valid = s_load (c->body);
        const char *key;
        json_t *value;
        json_object_foreach (valid, key, value) {
            if (!json_is_integer (value))
                continue;
            json_t *body = json_deep_copy (valid);
            json_object_set_new (body, key, json_integer (-1));
            char what[128];
            snprintf (what, sizeof what, "%s with %s = -1", c->name, key);
            s_assert_json_refused (what, c->name, body, SHOAL_EPROTO, key);
            json_decref (body);
        }
        json_decref (valid);
    }
}

static void
test_other_protocol_version_is_refused_naming_protocol (void **state)
{
    const char *bodies[] = {
        "{\"protocol\": 0, \"worker\": \"w\", \"host\": \"h\", \"slots\": 1}",
        "{\"protocol\": 2, \"worker\": \"w\", \"host\": \"h\", \"slots\": 1}",
    };
    for (size_t i = 0; i < 2; i++)
        s_assert_refused (bodies[i], "HELLO", bodies[i], strlen (bodies[i]),
                          SHOAL_EPROTO, "protocol");
}

static void
test_slots_outside_1_to_4096_are_refused_naming_slots (void **state)
{
    const char *bodies[] = {
        "{\"protocol\": 1, \"worker\": \"w\", \"host\": \"h\", \"slots\": 0}",
        "{\"protocol\": 1, \"worker\": \"w\", \"host\": \"h\", \"slots\": 4097}",
    };
    for (size_t i = 0; i < 2; i++)
        s_assert_refused (bodies[i], "HELLO", bodies[i], strlen (bodies[i]),
                          SHOAL_EPROTO, "slots");
}

static void
test_slots_of_1_and_4096_are_accepted (void **state)
{
    const char *bodies[] = {
        "{\"protocol\": 1, \"worker\": \"w\", \"host\": \"h\", \"slots\": 1}",
        "{\"protocol\": 1, \"worker\": \"w\", \"host\": \"h\", \"slots\": 4096}",
    };
    for (size_t i = 0; i < 2; i++) {
        shoal_msg_type_t type;
        json_t *out = NULL;
        assert_int_equal (shoal_msg_decode ("HELLO", 5, bodies[i],
                                            strlen (bodies[i]), &type, &out,
                                            NULL), 0);
        json_decref (out);
    }
}

static void
test_body_over_the_size_limit_is_refused_with_elimit (void **state)
{
    //  calloc: the pages are never touched, the size alone is refused.
    char *body = calloc (1, (size_t) SHOAL_MSG_MAX_SIZE + 1);
    assert_non_null (body);
    s_assert_refused ("oversized", "RESULT", body,
                      (size_t) SHOAL_MSG_MAX_SIZE + 1, SHOAL_ELIMIT, "body");
    //  At the limit the size is fine; these zero bytes are not JSON.
    s_assert_refused ("at the limit", "RESULT", body, SHOAL_MSG_MAX_SIZE,
                      SHOAL_EPROTO, "body");
    free (body);
}

static void
test_error_struct_may_be_null (void **state)
{
    shoal_msg_type_t type;
    json_t *out = NULL;
    assert_int_equal (shoal_msg_decode ("NOPE", 4, "{}", 2, &type, &out, NULL),
                      SHOAL_EPROTO);
    assert_int_equal (shoal_msg_decode ("BYE", 3, "[", 1, &type, &out, NULL),
                      SHOAL_EPROTO);
    assert_null (out);
}

/* ---- encoding ------------------------------------------------------- */

static void
test_encode_refuses_a_body_decode_would_refuse (void **state)
{
    json_t *body = s_load ("{\"job\": \"j\", \"task\": 1}");
    shoal_error_t err;
    shoal_error_clear (&err);
    size_t size = 0;
    assert_null (shoal_msg_encode (SHOAL_MSG_CANCEL, body, &size, &err));
    assert_int_equal (err.code, SHOAL_EPROTO);
    assert_string_equal (err.field, "attempt");
    json_decref (body);

    body = s_load ("{\"protocol\": 1, \"worker\": \"w\", \"host\": \"h\","
                   " \"slots\": 5000}");
    assert_null (shoal_msg_encode (SHOAL_MSG_HELLO, body, &size, &err));
    assert_string_equal (err.field, "slots");
    json_decref (body);
}

static void
test_encode_refuses_an_unknown_type_naming_command (void **state)
{
    json_t *body = json_object ();
    shoal_error_t err;
    shoal_error_clear (&err);
    size_t size = 0;
    assert_null (shoal_msg_encode (SHOAL_MSG_COUNT, body, &size, &err));
    assert_int_equal (err.code, SHOAL_EPROTO);
    assert_string_equal (err.field, "command");
    json_decref (body);
}

static void
test_encoded_body_is_compact_json (void **state)
{
    json_t *body = s_load ("{ \"job\" : \"j\" , \"task\" : 1 , "
                           "\"attempt\" : 2 }");
    size_t size = 0;
    char *text = shoal_msg_encode (SHOAL_MSG_CANCEL, body, &size, NULL);
    assert_non_null (text);
    assert_null (strchr (text, ' '));
    assert_null (strchr (text, '\n'));
    free (text);
    json_decref (body);
}

/* ---- the fast paths --------------------------------------------------- */

/*  The fast RESULT reader never accepts what the full decoder refuses,
    and where it accepts, it reads the same values.                        */
static void
test_fast_result_agrees_with_the_decoder (void **state)
{
    static const char *bodies[] = {
        "{\"job\": \"j1\", \"task\": 3, \"attempt\": 2, \"status\": \"exited\","
        " \"exit_code\": 0, \"duration_ms\": 12}",
        "{\"job\":\"j\\u0031\",\"task\":0,\"attempt\":1,\"status\":\"error\","
        "\"error\":\"no \\\"such\\\" file\\n\"}",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"exited\","
        " \"exit_code\": 0, \"spawn\": [{\"i\": 1}, {\"s\": \"x]\"}]}",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"signaled\","
        " \"signal\": 9}",
        "{\"job\": \"j1\", \"task\": -1, \"attempt\": 1, \"status\": \"exited\"}",
        "{\"job\": \"j1\", \"task\": 1.5, \"attempt\": 1, \"status\": \"exited\"}",
        "{\"job\": \"j1\", \"attempt\": 1, \"status\": \"exited\"}",
        "{\"job\": \"j1\", \"task\": 1, \"task\": 2, \"attempt\": 1,"
        " \"status\": \"exited\"}",
        "{\"job\": 1, \"task\": 1, \"attempt\": 1, \"status\": \"exited\"}",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"exited\","
        " \"spawn\": {}}",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"exited\","
        " \"extra\": [1, 2]}",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"exited\"} x",
        "{\"job\": \"j1\", \"task\": 1, \"attempt\": 1, \"status\": \"exited\",}",
        "{\"job\": \"j1\", \"task\": 99999999999999999999, \"attempt\": 1,"
        " \"status\": \"exited\"}",
        "[]", "", "{}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        const char *body = bodies[i];
        shoal_result_wire_t wire;
        int fast = shoal_msg_result_fast (body, strlen (body), &wire);
        shoal_msg_type_t type;
        json_t *decoded = NULL;
        int slow = shoal_msg_decode ("RESULT", 6, body, strlen (body), &type,
                                     &decoded, NULL);
        if (fast == 0 && slow != 0)
            fail_msg ("fast path accepts what the decoder refuses: %s", body);
        if (fast == 0) {
            assert_string_equal (wire.job, json_string_value (
                                     json_object_get (decoded, "job")));
            assert_int_equal (wire.task, json_integer_value (
                                  json_object_get (decoded, "task")));
            assert_int_equal (wire.attempt, json_integer_value (
                                  json_object_get (decoded, "attempt")));
            assert_string_equal (wire.status, json_string_value (
                                     json_object_get (decoded, "status")));
            json_t *error = json_object_get (decoded, "error");
            assert_int_equal (wire.has_error, error != NULL);
            if (error)
                assert_string_equal (wire.error, json_string_value (error));
            json_t *spawn = json_object_get (decoded, "spawn");
            assert_int_equal (wire.spawn != NULL, spawn != NULL);
            if (spawn) {
                json_t *again = json_loadb (wire.spawn, wire.spawn_size, 0,
                                            NULL);
                assert_true (json_equal (again, spawn));
                json_decref (again);
            }
        }
        json_decref (decoded);
    }
    /* What workers send takes the fast path. */
    shoal_result_wire_t wire;
    assert_int_equal (shoal_msg_result_fast (bodies[0], strlen (bodies[0]),
                                             &wire), 0);
    assert_int_equal (wire.duration_ms, 12);
    assert_true (wire.has_exit_code && wire.has_duration);
}

static void
test_fast_heartbeat_reads_what_workers_send (void **state)
{
    bool draining = true;
    assert_int_equal (shoal_msg_heartbeat_fast ("{}", 2, &draining), 0);
    assert_false (draining);
    const char *drain = "{\"draining\":true}";
    assert_int_equal (shoal_msg_heartbeat_fast (drain, strlen (drain),
                                                &draining), 0);
    assert_true (draining);
    /* Anything else goes to the full decoder. */
    assert_int_equal (shoal_msg_heartbeat_fast ("{ }", 3, &draining), 1);
    assert_int_equal (shoal_msg_heartbeat_fast ("{", 1, &draining), 1);
    assert_int_equal (shoal_msg_command ("HEARTBEAT", 9), SHOAL_MSG_HEARTBEAT);
    assert_int_equal (shoal_msg_command ("HEARTBEATS", 10), -1);
    assert_int_equal (shoal_msg_command ("BYE\0", 4), -1);
}

/*  A worker answers the controller's HEARTBEAT once it has been silent
    for half a period, never the answer to one of its own; its own clock
    waits 1.25 periods, so a live controller's HEARTBEAT comes first.     */
static void
test_heartbeat_answer_and_own_clock (void **state)
{
    (void) state;
    assert_false (shoal_heartbeat_answer_due (0, 4000));
    assert_false (shoal_heartbeat_answer_due (1999, 4000));
    assert_true (shoal_heartbeat_answer_due (2000, 4000));
    assert_true (shoal_heartbeat_answer_due (60000, 4000));
    assert_int_equal (shoal_heartbeat_own_after (4000), 5000);
    assert_int_equal (shoal_heartbeat_own_after (100), 125);
    assert_false (shoal_heartbeat_own_due (4000, 4000));
    assert_false (shoal_heartbeat_own_due (4999, 4000));
    assert_true (shoal_heartbeat_own_due (5000, 4000));
    /* Any unit: the load generator counts in nanoseconds. */
    assert_true (shoal_heartbeat_own_due (5000000000, 4000000000));
    assert_false (shoal_heartbeat_answer_due (1999999999, 4000000000));
    /* Its own clock stays well inside the controller's patience. */
    assert_true (shoal_heartbeat_own_after (60000)
                 < 60000 * SHOAL_HEARTBEAT_LIVENESS);
}

/*  The controller's HEARTBEAT tells the period; one without the field
    (an older controller) leaves the period as it is.                     */
static void
test_heartbeat_period_field (void **state)
{
    char text[40];
    size_t size = shoal_msg_heartbeat_text (text, sizeof text, 4000);
    assert_string_equal (text, "{\"heartbeat_ms\":4000}");
    assert_int_equal (size, strlen (text));
    int64_t period = 0;
    assert_int_equal (shoal_msg_heartbeat_period (text, size, &period), 0);
    assert_int_equal (period, 4000);
    /* The full decoder accepts it, and reads the same value. */
    shoal_msg_type_t type;
    json_t *body = NULL;
    shoal_error_t err = { 0 };
    assert_int_equal (shoal_msg_decode ("HEARTBEAT", 9, text, size, &type,
                                        &body, &err), 0);
    assert_int_equal (type, SHOAL_MSG_HEARTBEAT);
    assert_int_equal (json_integer_value (json_object_get (body,
                                                           "heartbeat_ms")),
                      4000);
    json_decref (body);
    /* Absent: 0, keep the period. */
    period = 7;
    assert_int_equal (shoal_msg_heartbeat_period ("{}", 2, &period), 0);
    assert_int_equal (period, 0);
    const char *drain = "{\"draining\":true}";
    assert_int_equal (shoal_msg_heartbeat_period (drain, strlen (drain),
                                                  &period), 0);
    assert_int_equal (period, 0);
    /* Other spellings take the decoder; a wrong type is refused. */
    const char *spaced = "{ \"heartbeat_ms\" : 2000 }";
    assert_int_equal (shoal_msg_heartbeat_period (spaced, strlen (spaced),
                                                  &period), 0);
    assert_int_equal (period, 2000);
    const char *wrong = "{\"heartbeat_ms\":\"2000\"}";
    assert_int_equal (shoal_msg_heartbeat_period (wrong, strlen (wrong),
                                                  &period), -1);
    const char *junk = "{\"heartbeat_ms\":20x0}";
    assert_int_equal (shoal_msg_heartbeat_period (junk, strlen (junk),
                                                  &period), -1);
    assert_int_equal (shoal_msg_heartbeat_period ("{", 1, &period), -1);
    /* A worker's HEARTBEAT carrying it still reads as before. */
    bool draining = true;
    assert_int_equal (shoal_msg_heartbeat_fast ("{}", 2, &draining), 0);
    assert_int_equal (shoal_msg_heartbeat_text (text, 8, 4000), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_command_round_trips),
        cmocka_unit_test (test_every_command_has_a_case),
        cmocka_unit_test (test_name_of_an_unknown_type_is_a_question_mark),
        cmocka_unit_test (test_unknown_fields_are_accepted),
        cmocka_unit_test (test_optional_result_fields_may_be_absent),
        cmocka_unit_test (test_unknown_command_is_refused_naming_command),
        cmocka_unit_test (test_command_frame_with_a_nul_byte_is_refused),
        cmocka_unit_test (test_body_that_is_not_json_is_refused_naming_body),
        cmocka_unit_test (
            test_body_that_is_an_array_is_refused_as_not_an_object),
        cmocka_unit_test (
            test_body_that_is_a_bare_scalar_is_refused_naming_body),
        cmocka_unit_test (test_missing_required_field_is_refused_naming_it),
        cmocka_unit_test (test_field_of_wrong_type_is_refused_naming_it),
        cmocka_unit_test (test_draining_flag_must_be_a_boolean),
        cmocka_unit_test (test_real_number_for_an_integer_field_is_refused),
        cmocka_unit_test (test_negative_integer_is_refused_naming_it),
        cmocka_unit_test (
            test_other_protocol_version_is_refused_naming_protocol),
        cmocka_unit_test (
            test_slots_outside_1_to_4096_are_refused_naming_slots),
        cmocka_unit_test (test_slots_of_1_and_4096_are_accepted),
        cmocka_unit_test (test_body_over_the_size_limit_is_refused_with_elimit),
        cmocka_unit_test (test_error_struct_may_be_null),
        cmocka_unit_test (test_encode_refuses_a_body_decode_would_refuse),
        cmocka_unit_test (test_encode_refuses_an_unknown_type_naming_command),
        cmocka_unit_test (test_encoded_body_is_compact_json),
        cmocka_unit_test (test_fast_result_agrees_with_the_decoder),
        cmocka_unit_test (test_fast_heartbeat_reads_what_workers_send),
        cmocka_unit_test (test_heartbeat_period_field),
        cmocka_unit_test (test_heartbeat_answer_and_own_clock),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
