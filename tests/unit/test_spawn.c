/*  test_spawn.c: the rules a spawn list must follow, as a specification.

    A spawn list is written by user code and becomes controller memory and
    task parameters, so every rule here is a refusal with a message that
    lets the author of the spawn task find the mistake: which entry, which
    key, which line and column.                                            */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "shoal/spawn.h"

static json_t *
s_parse (const char *text, size_t max_entries, shoal_error_t *err)
{
    shoal_error_clear (err);
    return shoal_spawn_parse (text, strlen (text), max_entries, err);
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

/*  Asserts that `text` is refused with `code`, err.field == `field` and a
    message containing `part`.                                             */
static void
s_assert_refused (const char *text, size_t max_entries, int code,
                  const char *field, const char *part)
{
    shoal_error_t err;
    json_t *list = s_parse (text, max_entries, &err);
    if (list || err.code != code || strcmp (err.field, field) != 0)
        print_error ("spawn.json: %s\n  expected code %d field '%s'\n"
                     "  got code %d field '%s' message '%s'\n",
                     text, code, field, err.code, err.field, err.message);
    assert_null (list);
    assert_int_equal (err.code, code);
    assert_string_equal (err.field, field);
    s_assert_contains (err.message, part);
}

/* ---- accepted ------------------------------------------------------- */

static void
test_list_of_flat_objects_is_accepted (void **state)
{
    const char *text = "[{\"s\": \"x\", \"i\": 1, \"r\": 1.5, \"t\": true,"
                       " \"f\": false}, {\"s\": \"y\"}, {}]";
    shoal_error_t err;
    json_t *list = s_parse (text, SHOAL_SPAWN_MAX_ENTRIES, &err);
    if (!list)
        fail_msg ("refused: %s", err.message);
    json_t *expected = json_loads (text, 0, NULL);
    assert_true (json_equal (list, expected));
    json_decref (expected);
    json_decref (list);
}

static void
test_empty_list_is_accepted (void **state)
{
    shoal_error_t err;
    json_t *list = s_parse ("[]", SHOAL_SPAWN_MAX_ENTRIES, &err);
    assert_non_null (list);
    assert_int_equal (json_array_size (list), 0);
    json_decref (list);
}

static void
test_list_of_exactly_max_entries_is_accepted (void **state)
{
    shoal_error_t err;
    json_t *list = s_parse ("[{}, {}, {}]", 3, &err);
    assert_non_null (list);
    json_decref (list);
}

/* ---- refused -------------------------------------------------------- */

static void
test_value_that_is_not_an_array_is_refused (void **state)
{
    const char *texts[] = { "{\"a\": 1}", "{}" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        s_assert_refused (texts[i], SHOAL_SPAWN_MAX_ENTRIES, SHOAL_EINVAL,
                          SHOAL_SPAWN_FILE, "not a JSON array");
}

static void
test_check_refuses_a_value_that_is_not_an_array (void **state)
{
    json_t *values[] = { json_string ("x"), json_integer (1), json_null (),
                         json_object (), NULL };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        shoal_error_t err;
        shoal_error_clear (&err);
        assert_int_equal (shoal_spawn_check (values[i], 10, &err),
                          SHOAL_EINVAL);
        assert_string_equal (err.field, SHOAL_SPAWN_FILE);
        s_assert_contains (err.message, "not a JSON array");
        json_decref (values[i]);
    }
}

static void
test_entry_that_is_not_an_object_is_refused_naming_its_index (void **state)
{
    s_assert_refused ("[2]", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE, "entry 0");
    s_assert_refused ("[{\"a\": \"1\"}, \"x\"]", 10, SHOAL_EINVAL,
                      SHOAL_SPAWN_FILE, "entry 1 is not an object");
    s_assert_refused ("[{}, {}, [1]]", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "entry 2 is not an object");
    s_assert_refused ("[{}, null]", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "entry 1 is not an object");
}

static void
test_nested_value_is_refused_naming_entry_and_key (void **state)
{
    const char *nested[] = { "{\"b\": 1}", "[1, 2]", "null", "{}", "[]" };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        char text[128];
        snprintf (text, sizeof text,
                  "[{\"a\": \"1\"}, {\"ok\": \"1\", \"bad\": %s}]", nested[i]);
        s_assert_refused (text, 10, SHOAL_EINVAL, "bad", "entry 1 key 'bad'");
    }
}

static void
test_more_entries_than_the_limit_are_refused (void **state)
{
    s_assert_refused ("[{}, {}, {}, {}]", 3, SHOAL_ELIMIT, SHOAL_SPAWN_FILE,
                      "more than 3 entries, over the limit of 3");
}

/*  The limit is found before the rest of the text is read: a list over
    it is refused as such even when it is broken further on.              */
static void
test_limit_is_found_before_the_end (void **state)
{
    s_assert_refused ("[{}, {}, {}, {}, ", 3, SHOAL_ELIMIT, SHOAL_SPAWN_FILE,
                      "over the limit of 3");
}

/* ---- scanning without building ---------------------------------------- */

typedef struct {
    size_t calls;
    char seen[256];              /* the entries handed over, '|' between */
} s_collect_t;

static int
s_collect (void *arg, size_t index, const char *text, size_t size)
{
    s_collect_t *collect = arg;
    assert_int_equal (index, collect->calls);
    collect->calls++;
    size_t used = strlen (collect->seen);
    snprintf (collect->seen + used, sizeof collect->seen - used, "%s%.*s",
              used ? "|" : "", (int) size, text);
    return 0;
}

static void
test_scan_hands_over_each_entry_text (void **state)
{
    const char *text = " [ {\"i\": 1} ,{\"s\": \"a,]}\\\"\"},\n{} ] ";
    s_collect_t collect = { 0 };
    size_t count = 0;
    shoal_error_t err;
    assert_int_equal (shoal_spawn_scan (text, strlen (text), 10, s_collect,
                                        &collect, &count, &err), 0);
    assert_int_equal (count, 3);
    assert_int_equal (collect.calls, 3);
    assert_string_equal (collect.seen,
                         "{\"i\": 1}|{\"s\": \"a,]}\\\"\"}|{}");
}

static int
s_stop (void *arg, size_t index, const char *text, size_t size)
{
    return index == 1 ? SHOAL_ENOMEM : 0;
}

static void
test_scan_stops_when_the_callback_says_so (void **state)
{
    const char *text = "[{}, {}, {}]";
    assert_int_equal (shoal_spawn_scan (text, strlen (text), 10, s_stop, NULL,
                                        NULL, NULL), SHOAL_ENOMEM);
}

static void
test_scan_calls_nothing_for_a_bad_list (void **state)
{
    //  Entry 2 is broken: entries 0 and 1 must not have been handed over.
    const char *text = "[{\"a\": 1}, {}, {\"b\": [1]}]";
    s_collect_t collect = { 0 };
    shoal_error_t err;
    assert_int_equal (shoal_spawn_scan (text, strlen (text), 10, s_collect,
                                        &collect, NULL, &err), SHOAL_EINVAL);
    assert_int_equal (collect.calls, 0);
    s_assert_contains (err.message, "entry 2 key 'b'");
}

/*  The scanner accepts exactly what jansson accepts (the controller reads
    spawn lists with the one and the worker with the other).              */
static void
test_scan_agrees_with_jansson (void **state)
{
    static const char *texts[] = {
        "[{\"a\": \"\\u00e9\\ud83d\\ude00\"}]",   /* escapes, a pair */
        "[{\"a\": \"\\ud83d\"}]",                  /* lone high half   */
        "[{\"a\": \"\\ude00\"}]",                  /* lone low half    */
        "[{\"a\": \"\\u0000\"}]",                  /* NUL              */
        "[{\"a\": \"\\x\"}]",                      /* bad escape       */
        "[{\"a\": \"\xc3\xa9\"}]",                 /* UTF-8 é          */
        "[{\"a\": \"\xc0\xaf\"}]",                 /* overlong         */
        "[{\"a\": \"\xed\xa0\x80\"}]",            /* UTF-8 surrogate  */
        "[{\"a\": \"\xf4\x90\x80\x80\"}]",       /* past U+10FFFF    */
        "[{\"a\": \"\x01\"}]",                      /* control char     */
        "[{\"a\": 01}]", "[{\"a\": -}]", "[{\"a\": 1.}]",
        "[{\"a\": .5}]", "[{\"a\": 1e}]", "[{\"a\": -0}]",
        "[{\"a\": 1E+2}]", "[{\"a\": 9223372036854775807}]",
        "[{\"a\": 9223372036854775808}]", "[{\"a\": -9223372036854775809}]",
        "[{\"a\": 1e400}]", "[{\"a\": 1e-400}]",
        "[{\"a\": tru}]", "[{\"a\": true, }]", "[{}, ]", "[,]",
        "[{\"a\" 1}]", "[{\"a\": 1}", "[{\"a\": 1}]x", " \t\r\n[]\n",
        "[{\"\\u0061\": 1, \"a\": 2}]",            /* escaped duplicate */
        "[{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": 5, \"f\": 6,"
        " \"g\": 7, \"h\": 8, \"i\": 9, \"j\": 10, \"k\": 11, \"l\": 12,"
        " \"m\": 13, \"n\": 14, \"o\": 15, \"p\": 16, \"q\": 17,"
        " \"r\": 18, \"a\": 19}]",                   /* duplicate, hashed */
        "[{\"a\": [[[[{\"x\": [1, {\"y\": null}]}]]]]}]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *text = texts[i];
        json_t *tree = json_loadb (text, strlen (text), JSON_REJECT_DUPLICATES,
                                   NULL);
        bool jansson_ok = tree && shoal_spawn_check (tree, 10, NULL) == 0;
        json_decref (tree);
        shoal_error_t err;
        bool scan_ok = shoal_spawn_scan (text, strlen (text), 10, NULL, NULL,
                                         NULL, &err) == 0;
        if (scan_ok != jansson_ok)
            fail_msg ("'%s': jansson %s, the scanner %s (%s)", text,
                      jansson_ok ? "accepts" : "refuses",
                      scan_ok ? "accepts" : "refuses",
                      scan_ok ? "" : err.message);
    }
}

static void
test_scan_depth_is_bounded (void **state)
{
    size_t depth = 5000;
    char *text = malloc (2 * depth + 16);
    size_t n = 0;
    n += (size_t) sprintf (text, "[{\"a\": ");
    for (size_t i = 0; i < depth; i++)
        text[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        text[n++] = ']';
    n += (size_t) sprintf (text + n, "}]");
    shoal_error_t err;
    assert_int_equal (shoal_spawn_scan (text, n, 10, NULL, NULL, NULL, &err),
                      SHOAL_EINVAL);
    s_assert_contains (err.message, "depth");
    free (text);
}

static void
test_default_limit_is_enforced (void **state)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < (size_t) SHOAL_SPAWN_MAX_ENTRIES + 1; i++)
        json_array_append_new (list, json_object ());
    shoal_error_t err;
    shoal_error_clear (&err);
    assert_int_equal (shoal_spawn_check (list, SHOAL_SPAWN_MAX_ENTRIES, &err),
                      SHOAL_ELIMIT);
    json_array_remove (list, 0);
    assert_int_equal (shoal_spawn_check (list, SHOAL_SPAWN_MAX_ENTRIES, &err),
                      0);
    json_decref (list);
}

static void
test_syntax_error_names_line_and_column (void **state)
{
    //  The '}' after the trailing comma is line 2, column 11.
    shoal_error_t err;
    json_t *list = s_parse ("[\n  {\"a\": 1,}\n]", 10, &err);
    assert_null (list);
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_string_equal (err.field, SHOAL_SPAWN_FILE);
    assert_int_equal (err.line, 2);
    assert_int_equal (err.column, 11);
    if (strncmp (err.message, "spawn.json:2:11: ", 17) != 0)
        fail_msg ("message does not start with the position: %s",
                  err.message);
    s_assert_contains (err.message, "not valid JSON");
}

static void
test_empty_text_is_a_syntax_error (void **state)
{
    s_assert_refused ("", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "not valid JSON");
}

static void
test_bare_scalar_is_a_syntax_error (void **state)
{
    //  Only an array or object may stand at the top of the file.
    s_assert_refused ("\"x\"", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "not valid JSON");
    s_assert_refused ("42", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "not valid JSON");
}

static void
test_duplicate_key_is_refused (void **state)
{
    s_assert_refused ("[{\"a\": 1, \"a\": 2}]", 10, SHOAL_EINVAL,
                      SHOAL_SPAWN_FILE, "duplicate");
}

static void
test_trailing_text_is_refused (void **state)
{
    s_assert_refused ("[{}] [{}]", 10, SHOAL_EINVAL, SHOAL_SPAWN_FILE,
                      "not valid JSON");
}

static void
test_error_struct_may_be_null (void **state)
{
    assert_null (shoal_spawn_parse ("[1]", 3, 10, NULL));
    assert_null (shoal_spawn_parse ("[", 1, 10, NULL));
    assert_int_equal (shoal_spawn_check (NULL, 10, NULL), SHOAL_EINVAL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_list_of_flat_objects_is_accepted),
        cmocka_unit_test (test_empty_list_is_accepted),
        cmocka_unit_test (test_list_of_exactly_max_entries_is_accepted),
        cmocka_unit_test (test_value_that_is_not_an_array_is_refused),
        cmocka_unit_test (test_check_refuses_a_value_that_is_not_an_array),
        cmocka_unit_test (
            test_entry_that_is_not_an_object_is_refused_naming_its_index),
        cmocka_unit_test (test_nested_value_is_refused_naming_entry_and_key),
        cmocka_unit_test (test_more_entries_than_the_limit_are_refused),
        cmocka_unit_test (test_default_limit_is_enforced),
        cmocka_unit_test (test_limit_is_found_before_the_end),
        cmocka_unit_test (test_scan_hands_over_each_entry_text),
        cmocka_unit_test (test_scan_stops_when_the_callback_says_so),
        cmocka_unit_test (test_scan_calls_nothing_for_a_bad_list),
        cmocka_unit_test (test_scan_agrees_with_jansson),
        cmocka_unit_test (test_scan_depth_is_bounded),
        cmocka_unit_test (test_syntax_error_names_line_and_column),
        cmocka_unit_test (test_empty_text_is_a_syntax_error),
        cmocka_unit_test (test_bare_scalar_is_a_syntax_error),
        cmocka_unit_test (test_duplicate_key_is_refused),
        cmocka_unit_test (test_trailing_text_is_refused),
        cmocka_unit_test (test_error_struct_may_be_null),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
