/*  test_options.c: flags over environment over configuration file over
    defaults, and every error naming where the bad value came from.       */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shoal/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const s_levels[] = { "error", "warn", "info", "debug",
                                        NULL };

/*  The values a test binary's options land in.                            */
typedef struct {
    const char *http;           /* a string option                        */
    const char *data_dir;       /* a string option with a short name      */
    int slots;                  /* an integer, 1..64                      */
    bool plaintext;             /* a flag                                 */
    const char *log_level;      /* a choice                               */
    bool check;                 /* an action: not in the file             */
} s_values_t;

/*  One test's parser, its output, and its configuration file.             */
typedef struct {
    s_values_t values;          /* the targets                            */
    shoal_option_t table[6];    /* the options of the test binary         */
    shoal_options_t *options;   /* the parser                             */
    char path[64];              /* the configuration file, "" if none     */
    char *out_text;             /* what went to stdout                    */
    char *err_text;             /* what went to stderr                    */
} s_fixture_t;

static void
s_clear_env (void)
{
    const char *names[] = { "SHOAL_TEST_HTTP", "SHOAL_TEST_DATA_DIR",
                            "SHOAL_TEST_SLOTS", "SHOAL_TEST_PLAINTEXT",
                            "SHOAL_TEST_LOG_LEVEL", "SHOAL_CONFIG" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv (names[i]);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    f->values = (s_values_t) { .http = "127.0.0.1:8080", .data_dir = "./d",
                               .slots = 2, .log_level = "info" };
    shoal_option_t table[] = {
        { "http", 'H', "SHOAL_TEST_HTTP", SHOAL_OPT_STRING, "HOST:PORT",
          "REST address", 0, 0, NULL, &f->values.http, 0 },
        { "data-dir", 'D', "SHOAL_TEST_DATA_DIR", SHOAL_OPT_STRING, "DIR",
          "shared volume", 0, 16, NULL, &f->values.data_dir, 0 },
        { "slots", 0, "SHOAL_TEST_SLOTS", SHOAL_OPT_INT, "N", "slots", 1, 64,
          NULL, &f->values.slots, 0 },
        { "plaintext", 0, "SHOAL_TEST_PLAINTEXT", SHOAL_OPT_BOOL, NULL,
          "no CURVE", 0, 0, NULL, &f->values.plaintext, 0 },
        { "log-level", 0, "SHOAL_TEST_LOG_LEVEL", SHOAL_OPT_CHOICE, "LEVEL",
          "error, warn, info\nor debug", 0, 0, s_levels,
          &f->values.log_level, 0 },
        { "check", 0, NULL, SHOAL_OPT_BOOL, NULL, "check and exit", 0, 0,
          NULL, &f->values.check, SHOAL_OPT_NO_FILE },
    };
    memcpy (f->table, table, sizeof table);
    f->options = shoal_options_new ("shoal-test", "[OPTION]...",
                                    "Test the options.", "Exit status: 0.\n",
                                    "/nonexistent/shoal/test.yaml",
                                    f->table, 6);
    assert_non_null (f->options);
    s_clear_env ();
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    shoal_options_destroy (&f->options);
    assert_null (f->options);
    if (*f->path)
        unlink (f->path);
    free (f->out_text);
    free (f->err_text);
    free (f);
    s_clear_env ();
    return 0;
}

/*  Writes `text` to a new configuration file; returns its path.           */
static const char *
s_write_config (s_fixture_t *f, const char *text)
{
    snprintf (f->path, sizeof f->path, "/tmp/shoal-options-XXXXXX");
    int fd = mkstemp (f->path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    return f->path;
}

/*  Parses the NULL-terminated arguments after the program name.          */
static int
s_parse (s_fixture_t *f, ...)
{
    char *argv[16] = { "shoal-test" };
    int argc = 1;
    va_list args;
    va_start (args, f);
    char *arg;
    while ((arg = va_arg (args, char *)) && argc < 15)
        argv[argc++] = arg;
    va_end (args);
    size_t out_size, err_size;
    free (f->out_text);
    free (f->err_text);
    FILE *out = open_memstream (&f->out_text, &out_size);
    FILE *err = open_memstream (&f->err_text, &err_size);
    int rc = shoal_options_parse (f->options, argc, argv, out, err);
    fclose (out);
    fclose (err);
    return rc;
}

static void
test_defaults_stay_when_nothing_is_given (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (s_parse (f, NULL), SHOAL_OPTIONS_RUN);
    assert_string_equal (f->values.http, "127.0.0.1:8080");
    assert_int_equal (f->values.slots, 2);
    assert_false (f->values.plaintext);
    assert_string_equal (f->err_text, "");
    assert_null (shoal_options_config_file (f->options));
    assert_string_equal (shoal_options_origin (f->options, "slots"),
                         "--slots");
}

static void
test_file_sets_every_type (void **state)
{
    s_fixture_t *f = *state;
    const char *path = s_write_config (f,
        "# comment\n"
        "http: 0.0.0.0:9000\n"
        "data-dir: /srv/x\n"
        "slots: 8\n"
        "plaintext: true\n"
        "log-level: debug\n");
    assert_int_equal (s_parse (f, "--config", path, NULL), SHOAL_OPTIONS_RUN);
    assert_string_equal (f->values.http, "0.0.0.0:9000");
    assert_string_equal (f->values.data_dir, "/srv/x");
    assert_int_equal (f->values.slots, 8);
    assert_true (f->values.plaintext);
    assert_string_equal (f->values.log_level, "debug");
    assert_string_equal (shoal_options_config_file (f->options), path);
    char origin[128];
    snprintf (origin, sizeof origin, "%s:4:8: slots", path);
    assert_string_equal (shoal_options_origin (f->options, "slots"), origin);
}

static void
test_env_overrides_file_and_flag_overrides_env (void **state)
{
    s_fixture_t *f = *state;
    const char *path = s_write_config (f, "slots: 8\nhttp: file:1\n"
                                          "data-dir: /file\n");
    setenv ("SHOAL_CONFIG", path, 1);
    setenv ("SHOAL_TEST_SLOTS", "16", 1);
    setenv ("SHOAL_TEST_HTTP", "env:2", 1);
    assert_int_equal (s_parse (f, "--slots", "32", NULL), SHOAL_OPTIONS_RUN);
    assert_int_equal (f->values.slots, 32);               /* flag */
    assert_string_equal (f->values.http, "env:2");        /* env  */
    assert_string_equal (f->values.data_dir, "/file");    /* file */
    assert_string_equal (f->values.log_level, "info");    /* default */
    assert_string_equal (shoal_options_origin (f->options, "http"),
                         "SHOAL_TEST_HTTP");
    assert_string_equal (shoal_options_origin (f->options, "slots"),
                         "--slots");
}

static void
test_flag_config_wins_over_shoal_config (void **state)
{
    s_fixture_t *f = *state;
    const char *path = s_write_config (f, "slots: 5\n");
    setenv ("SHOAL_CONFIG", "/nonexistent/other.yaml", 1);
    assert_int_equal (s_parse (f, "--config", path, NULL), SHOAL_OPTIONS_RUN);
    assert_int_equal (f->values.slots, 5);
}

static void
test_empty_environment_counts_as_unset (void **state)
{
    s_fixture_t *f = *state;
    setenv ("SHOAL_TEST_HTTP", "", 1);
    setenv ("SHOAL_CONFIG", "", 1);
    assert_int_equal (s_parse (f, NULL), SHOAL_OPTIONS_RUN);
    assert_string_equal (f->values.http, "127.0.0.1:8080");
}

static void
test_empty_file_sets_nothing (void **state)
{
    s_fixture_t *f = *state;
    const char *path = s_write_config (f, "# nothing set yet\n");
    assert_int_equal (s_parse (f, "--config", path, NULL), SHOAL_OPTIONS_RUN);
    assert_int_equal (f->values.slots, 2);
}

static void
test_missing_named_file_is_an_error (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (s_parse (f, "--config", "/nonexistent/x.yaml", NULL),
                      SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "shoal-test: cannot read "
                             "configuration file /nonexistent/x.yaml"));
    assert_non_null (strstr (f->err_text, "Try 'shoal-test --help'"));
}

/*  Parses `text` as the file; checks the error names `at` and `what`.   */
static void
s_assert_file_error (s_fixture_t *f, const char *text, const char *at,
                     const char *what)
{
    const char *path = s_write_config (f, text);
    assert_int_equal (s_parse (f, "--config", path, NULL),
                      SHOAL_OPTIONS_USAGE);
    char expected[256];
    snprintf (expected, sizeof expected, "shoal-test: %s:%s: %s", path, at,
              what);
    if (!strstr (f->err_text, expected))
        fail_msg ("error '%s' does not hold '%s'", f->err_text, expected);
    unlink (f->path);
    f->path[0] = '\0';
}

static void
test_unknown_key_names_its_position (void **state)
{
    s_assert_file_error (*state, "slots: 2\n  \nnope: 1\n", "3:1",
                         "unknown key 'nope'");
}

static void
test_action_flag_is_not_a_key (void **state)
{
    s_assert_file_error (*state, "check: true\n", "1:1",
                         "unknown key 'check' (a command-line flag only)");
    s_assert_file_error (*state, "config: /x\n", "1:1",
                         "unknown key 'config'");
}

static void
test_wrong_type_names_key_and_position (void **state)
{
    s_assert_file_error (*state, "slots: [1, 2]\n", "1:8",
                         "slots must be an integer, not a list");
    s_assert_file_error (*state, "http:\n  host: x\n", "2:3",
                         "http must be a string, not a mapping");
    s_assert_file_error (*state, "plaintext: maybe\n", "1:12",
                         "plaintext must be true or false");
    s_assert_file_error (*state, "http:\n", "1:6", "http needs a value");
}

static void
test_bad_value_names_key_and_position (void **state)
{
    s_assert_file_error (*state, "slots: many\n", "1:8",
                         "slots must be an integer from 1 to 64, not 'many'");
    s_assert_file_error (*state, "slots: 65\n", "1:8",
                         "slots must be an integer from 1 to 64, not '65'");
    s_assert_file_error (*state, "log-level: loud\n", "1:12",
                         "log-level must be error, warn, info or debug, not 'loud'");
    s_assert_file_error (*state, "data-dir: /a/very/long/path/indeed\n",
                         "1:11",
                         "data-dir must be at most 16 bytes long");
}

static void
test_duplicate_key_and_bad_shapes (void **state)
{
    s_assert_file_error (*state, "slots: 1\nslots: 2\n", "2:1",
                         "key 'slots' given twice");
    s_assert_file_error (*state, "- slots\n", "1:1",
                         "must be a mapping of option names to values");
    s_assert_file_error (*state, "slots: 1\n---\nslots: 2\n", "2:1",
                         "one document only");
    s_assert_file_error (*state, "slots: 1\nhttp: \"open\n", "3:1",
                         "found unexpected end of stream");
}

static void
test_bad_environment_and_flags_name_their_source (void **state)
{
    s_fixture_t *f = *state;
    setenv ("SHOAL_TEST_SLOTS", "0", 1);
    assert_int_equal (s_parse (f, NULL), SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "shoal-test: SHOAL_TEST_SLOTS must "
                             "be an integer from 1 to 64, not '0'"));
    unsetenv ("SHOAL_TEST_SLOTS");
    setenv ("SHOAL_TEST_PLAINTEXT", "perhaps", 1);
    assert_int_equal (s_parse (f, NULL), SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "SHOAL_TEST_PLAINTEXT must be true"));
    setenv ("SHOAL_TEST_PLAINTEXT", "yes", 1);
    assert_int_equal (s_parse (f, NULL), SHOAL_OPTIONS_RUN);
    assert_true (f->values.plaintext);
    assert_int_equal (s_parse (f, "--log-level", "loud", NULL),
                      SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "shoal-test: --log-level must be "
                             "error, warn, info or debug, not 'loud'"));
}

static void
test_usage_errors_of_the_command_line (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (s_parse (f, "--bogus", NULL), SHOAL_OPTIONS_USAGE);
    assert_string_equal (f->err_text, "shoal-test: unrecognized option "
                         "'--bogus'\nTry 'shoal-test --help' for more "
                         "information.\n");
    assert_int_equal (s_parse (f, "--slots", NULL), SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "option '--slots' requires an "
                             "argument"));
    assert_int_equal (s_parse (f, "-x", NULL), SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "invalid option -- 'x'"));
    assert_int_equal (s_parse (f, "extra", NULL), SHOAL_OPTIONS_USAGE);
    assert_non_null (strstr (f->err_text, "unexpected argument 'extra'"));
    assert_int_equal (s_parse (f, "-D", "/short", "--check", NULL),
                      SHOAL_OPTIONS_RUN);
    assert_string_equal (f->values.data_dir, "/short");
    assert_true (f->values.check);
}

static void
test_help_and_version_go_to_stdout (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (s_parse (f, "--help", NULL), SHOAL_OPTIONS_EXIT);
    assert_string_equal (f->err_text, "");
    const char *expected[] = {
        "Usage: shoal-test [OPTION]...\nTest the options.\n\n",
        "  -H, --http HOST:PORT    REST address\n"
        "                          [env SHOAL_TEST_HTTP]\n",
        "      --log-level LEVEL   error, warn, info\n"
        "                          or debug\n",
        "      --config FILE       read options from FILE",
        "[env SHOAL_CONFIG]",
        "  -h, --help              print this help and exit\n",
        "Options but --check, --config, --help and --version\nmay",
        "else\n/nonexistent/shoal/test.yaml if it exists.\n",
        "\nExit status: 0.\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr (f->out_text, expected[i]))
            fail_msg ("help lacks '%s':\n%s", expected[i], f->out_text);
    assert_int_equal (s_parse (f, "-V", NULL), SHOAL_OPTIONS_EXIT);
    assert_string_equal (f->out_text, "shoal-test " SHOAL_VERSION "\n");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
        T (test_defaults_stay_when_nothing_is_given),
        T (test_file_sets_every_type),
        T (test_env_overrides_file_and_flag_overrides_env),
        T (test_flag_config_wins_over_shoal_config),
        T (test_empty_environment_counts_as_unset),
        T (test_empty_file_sets_nothing),
        T (test_missing_named_file_is_an_error),
        T (test_unknown_key_names_its_position),
        T (test_action_flag_is_not_a_key),
        T (test_wrong_type_names_key_and_position),
        T (test_bad_value_names_key_and_position),
        T (test_duplicate_key_and_bad_shapes),
        T (test_bad_environment_and_flags_name_their_source),
        T (test_usage_errors_of_the_command_line),
        T (test_help_and_version_go_to_stdout),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
