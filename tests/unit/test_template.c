/*  test_template.c: the {placeholder} syntax and how values are filled in.

    The point of templates is that a value can never change the shape of
    a command line, so most of these tests feed hostile values and check
    they come out byte for byte, inside the one argument.                  */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "shoal/template.h"

/*  A lookup over a NULL-terminated list of name, value pairs.             */
static const char *
s_lookup (const char *name, void *arg)
{
    const char *const *pairs = arg;
    for (size_t i = 0; pairs[i]; i += 2)
        if (strcmp (pairs[i], name) == 0)
            return pairs[i + 1];
    return NULL;
}

/*  Fills `tmpl` with a single value for `name`, asserting success.        */
static char *
s_fill_one (const char *tmpl, const char *name, const char *value)
{
    const char *pairs[] = { name, value, NULL };
    shoal_error_t err;
    shoal_error_clear (&err);
    char *out = shoal_template_fill (tmpl, s_lookup, pairs, &err);
    if (!out)
        fail_msg ("fill failed: %s", err.message);
    return out;
}

static void
s_assert_fills_to (const char *tmpl, const char *name, const char *value,
                   const char *expected)
{
    char *out = s_fill_one (tmpl, name, value);
    assert_string_equal (out, expected);
    free (out);
}

/*  Asserts `tmpl` is a syntax error at 1-based byte `column`.             */
static void
s_assert_syntax_error (const char *tmpl, int column, const char *words)
{
    shoal_error_t err;
    shoal_error_clear (&err);
    assert_int_equal (shoal_template_scan (tmpl, NULL, NULL, &err),
                      SHOAL_EINVAL);
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_int_equal (err.column, column);
    if (!strstr (err.message, words))
        fail_msg ("message '%s' does not say '%s'", err.message, words);

    //  Filling refuses it the same way, before any lookup.
    const char *pairs[] = { NULL };
    shoal_error_clear (&err);
    assert_null (shoal_template_fill (tmpl, s_lookup, pairs, &err));
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_int_equal (err.column, column);
}

// ---------------------------------------------------------------- literals

static void
test_plain_text_is_copied_unchanged (void **state)
{
    s_assert_fills_to ("--verbose", "x", "1", "--verbose");
}

static void
test_empty_template_gives_empty_string (void **state)
{
    s_assert_fills_to ("", "x", "1", "");
}

static void
test_double_braces_are_literal_braces (void **state)
{
    s_assert_fills_to ("{{x}}", "x", "1", "{x}");
    s_assert_fills_to ("a{{b", "x", "1", "a{b");
    s_assert_fills_to ("a}}b", "x", "1", "a}b");
    s_assert_fills_to ("{{}}", "x", "1", "{}");
}

static void
test_double_braces_around_a_placeholder (void **state)
{
    s_assert_fills_to ("{{{x}}}", "x", "v", "{v}");
}

// ------------------------------------------------------------ placeholders

static void
test_placeholder_is_replaced (void **state)
{
    s_assert_fills_to ("{url}", "url", "https://example.com/a",
                       "https://example.com/a");
}

static void
test_placeholder_inside_text (void **state)
{
    s_assert_fills_to ("--header=Authorization: {basic_auth}", "basic_auth",
                       "Basic dTpw", "--header=Authorization: Basic dTpw");
}

static void
test_several_placeholders (void **state)
{
    const char *pairs[] = { "a", "1", "b.c", "2", "d-e_f", "3", NULL };
    shoal_error_t err;
    char *out = shoal_template_fill ("{a}/{b.c}:{d-e_f}{a}", s_lookup, pairs,
                                     &err);
    assert_non_null (out);
    assert_string_equal (out, "1/2:31");
    free (out);
}

static void
test_empty_value_gives_empty_text (void **state)
{
    s_assert_fills_to ("x{v}y", "v", "", "xy");
}

/*  Counts placeholders and records their offsets.                         */
typedef struct {
    int count;
    size_t offsets[4];
    char names[4][16];
} s_seen_t;

static int
s_record (const char *name, size_t len, size_t offset, void *arg,
          shoal_error_t *err)
{
    s_seen_t *seen = arg;
    if (seen->count < 4) {
        seen->offsets[seen->count] = offset;
        memcpy (seen->names[seen->count], name, len < 15 ? len : 15);
    }
    seen->count++;
    return 0;
}

static void
test_scan_reports_each_name_and_offset (void **state)
{
    s_seen_t seen = { 0 };
    shoal_error_t err;
    assert_int_equal (shoal_template_scan ("-o {out} {{x}} {in}", s_record,
                                           &seen, &err), 0);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.names[0], "out");
    assert_int_equal (seen.offsets[0], 3);
    assert_string_equal (seen.names[1], "in");
    assert_int_equal (seen.offsets[1], 15);
}

static int
s_refuse (const char *name, size_t len, size_t offset, void *arg,
          shoal_error_t *err)
{
    return shoal_error_set (err, SHOAL_ENOTFOUND, "x", "refused");
}

static void
test_scan_stops_with_the_callbacks_code (void **state)
{
    shoal_error_t err;
    assert_int_equal (shoal_template_scan ("a {x} b", s_refuse, NULL, &err),
                      SHOAL_ENOTFOUND);
    assert_string_equal (err.message, "refused");
}

// --------------------------------------------------------- hostile values

static void
test_value_with_space_stays_one_argument (void **state)
{
    s_assert_fills_to ("{v}", "v", "a b", "a b");
}

static void
test_value_with_quotes_is_verbatim (void **state)
{
    s_assert_fills_to ("'{v}'", "v", "'\"", "''\"'");
}

static void
test_value_with_shell_command_is_verbatim (void **state)
{
    s_assert_fills_to ("{v}", "v", "; rm -rf /", "; rm -rf /");
}

static void
test_value_with_command_substitution_is_verbatim (void **state)
{
    s_assert_fills_to ("--x={v}", "v", "$(reboot)", "--x=$(reboot)");
}

static void
test_value_with_newline_is_verbatim (void **state)
{
    s_assert_fills_to ("{v}", "v", "line\nbreak", "line\nbreak");
}

static void
test_value_with_braces_is_not_expanded (void **state)
{
    const char *pairs[] = { "v", "{other}", "other", "SECRET", NULL };
    shoal_error_t err;
    char *out = shoal_template_fill ("{v}", s_lookup, pairs, &err);
    assert_non_null (out);
    assert_string_equal (out, "{other}");
    free (out);
}

static void
test_value_with_lone_brace_is_verbatim (void **state)
{
    s_assert_fills_to ("{v}", "v", "}{", "}{");
}

// ---------------------------------------------------------- missing values

static void
test_missing_value_is_not_found_with_field (void **state)
{
    const char *pairs[] = { "a", "1", NULL };
    shoal_error_t err;
    shoal_error_clear (&err);
    assert_null (shoal_template_fill ("{a} {output_path}", s_lookup, pairs,
                                      &err));
    assert_int_equal (err.code, SHOAL_ENOTFOUND);
    assert_string_equal (err.field, "output_path");
    assert_string_equal (err.message, "no value for input 'output_path'");
}

static void
test_long_missing_name_is_reported (void **state)
{
    char tmpl[300];
    tmpl[0] = '{';
    memset (tmpl + 1, 'n', 200);
    tmpl[201] = '}';
    tmpl[202] = '\0';
    const char *pairs[] = { NULL };
    shoal_error_t err;
    assert_null (shoal_template_fill (tmpl, s_lookup, pairs, &err));
    assert_int_equal (err.code, SHOAL_ENOTFOUND);
    assert_int_equal (strlen (err.field), sizeof err.field - 1);
}

// ------------------------------------------------------------ syntax errors

static void
test_lone_closing_brace_is_an_error (void **state)
{
    s_assert_syntax_error ("ab}c", 3, "lone '}'");
}

static void
test_unterminated_placeholder_is_an_error (void **state)
{
    s_assert_syntax_error ("x {name", 3, "unterminated");
}

static void
test_lone_opening_brace_at_end_is_an_error (void **state)
{
    s_assert_syntax_error ("abc{", 4, "unterminated");
}

static void
test_empty_placeholder_is_an_error (void **state)
{
    s_assert_syntax_error ("a{}", 2, "empty placeholder");
}

static void
test_invalid_name_character_is_an_error (void **state)
{
    s_assert_syntax_error ("--x={a b}", 5, "invalid character ' '");
}

static void
test_invalid_name_byte_is_an_error (void **state)
{
    s_assert_syntax_error ("{a\tb}", 1, "invalid byte 0x09");
}

static void
test_closing_brace_after_placeholder_is_an_error (void **state)
{
    s_assert_syntax_error ("{a}}", 4, "lone '}'");
}

static void
test_triple_opening_brace_leaves_placeholder_unclosed (void **state)
{
    s_assert_syntax_error ("{{{a", 3, "unterminated");
}

static void
test_syntax_error_wins_over_missing_value (void **state)
{
    const char *pairs[] = { NULL };
    shoal_error_t err;
    assert_null (shoal_template_fill ("{missing} }", s_lookup, pairs, &err));
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_int_equal (err.column, 11);
}

// -------------------------------------------------------------- the bound

static void
test_result_at_the_limit_is_accepted (void **state)
{
    char *value = malloc (SHOAL_TEMPLATE_MAX_ARG);
    assert_non_null (value);
    memset (value, 'v', SHOAL_TEMPLATE_MAX_ARG - 2);
    value[SHOAL_TEMPLATE_MAX_ARG - 2] = '\0';
    char *out = s_fill_one ("a{v}b", "v", value);
    assert_int_equal (strlen (out), SHOAL_TEMPLATE_MAX_ARG);
    free (out);
    free (value);
}

static void
test_result_over_the_limit_is_refused (void **state)
{
    char *value = malloc (SHOAL_TEMPLATE_MAX_ARG);
    assert_non_null (value);
    memset (value, 'v', SHOAL_TEMPLATE_MAX_ARG - 1);
    value[SHOAL_TEMPLATE_MAX_ARG - 1] = '\0';
    const char *pairs[] = { "v", value, NULL };
    shoal_error_t err;
    assert_null (shoal_template_fill ("a{v}b", s_lookup, pairs, &err));
    assert_int_equal (err.code, SHOAL_ELIMIT);
    free (value);
}

static void
test_repeated_placeholders_over_the_limit_are_refused (void **state)
{
    char *value = malloc (50000);
    assert_non_null (value);
    memset (value, 'v', 49999);
    value[49999] = '\0';
    const char *pairs[] = { "v", value, NULL };
    shoal_error_t err;
    assert_null (shoal_template_fill ("{v}{v}{v}", s_lookup, pairs, &err));
    assert_int_equal (err.code, SHOAL_ELIMIT);
    free (value);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_plain_text_is_copied_unchanged),
        cmocka_unit_test (test_empty_template_gives_empty_string),
        cmocka_unit_test (test_double_braces_are_literal_braces),
        cmocka_unit_test (test_double_braces_around_a_placeholder),
        cmocka_unit_test (test_placeholder_is_replaced),
        cmocka_unit_test (test_placeholder_inside_text),
        cmocka_unit_test (test_several_placeholders),
        cmocka_unit_test (test_empty_value_gives_empty_text),
        cmocka_unit_test (test_scan_reports_each_name_and_offset),
        cmocka_unit_test (test_scan_stops_with_the_callbacks_code),
        cmocka_unit_test (test_value_with_space_stays_one_argument),
        cmocka_unit_test (test_value_with_quotes_is_verbatim),
        cmocka_unit_test (test_value_with_shell_command_is_verbatim),
        cmocka_unit_test (test_value_with_command_substitution_is_verbatim),
        cmocka_unit_test (test_value_with_newline_is_verbatim),
        cmocka_unit_test (test_value_with_braces_is_not_expanded),
        cmocka_unit_test (test_value_with_lone_brace_is_verbatim),
        cmocka_unit_test (test_missing_value_is_not_found_with_field),
        cmocka_unit_test (test_long_missing_name_is_reported),
        cmocka_unit_test (test_lone_closing_brace_is_an_error),
        cmocka_unit_test (test_unterminated_placeholder_is_an_error),
        cmocka_unit_test (test_lone_opening_brace_at_end_is_an_error),
        cmocka_unit_test (test_empty_placeholder_is_an_error),
        cmocka_unit_test (test_invalid_name_character_is_an_error),
        cmocka_unit_test (test_invalid_name_byte_is_an_error),
        cmocka_unit_test (test_closing_brace_after_placeholder_is_an_error),
        cmocka_unit_test (test_triple_opening_brace_leaves_placeholder_unclosed),
        cmocka_unit_test (test_syntax_error_wins_over_missing_value),
        cmocka_unit_test (test_result_at_the_limit_is_accepted),
        cmocka_unit_test (test_result_over_the_limit_is_refused),
        cmocka_unit_test (test_repeated_placeholders_over_the_limit_are_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
