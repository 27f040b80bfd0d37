/*  test_log.c: log lines, text and json, with job and task ids as fields
    of their own, and the level threshold.                                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shoal/error.h"
#include "shoal/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

/*  stderr goes to a temporary file between s_begin and s_take, so that
    cmocka's own messages still reach the real stderr.                    */
static int s_saved_stderr = -1;
static char s_path[64];

static int
s_setup (void **state)
{
    snprintf (s_path, sizeof s_path, "/tmp/shoal-log-XXXXXX");
    int fd = mkstemp (s_path);
    assert_true (fd >= 0);
    close (fd);
    shoal_log_init ("test", "info");
    shoal_log_format ("text");
    return 0;
}

static int
s_teardown (void **state)
{
    unlink (s_path);
    shoal_log_init ("shoal", "info");
    shoal_log_format ("text");
    return 0;
}

/*  Sends stderr to the (emptied) temporary file.                          */
static void
s_begin (void)
{
    fflush (stderr);
    int fd = open (s_path, O_WRONLY | O_TRUNC);
    assert_true (fd >= 0);
    s_saved_stderr = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);
    close (fd);
}

/*  Gives stderr back; returns what was logged since s_begin (the caller
    frees it).                                                             */
static char *
s_take (void)
{
    fflush (stderr);
    dup2 (s_saved_stderr, STDERR_FILENO);
    close (s_saved_stderr);
    FILE *file = fopen (s_path, "r");
    assert_non_null (file);
    char *text = calloc (1, 8192);
    assert_non_null (text);
    size_t len = fread (text, 1, 8191, file);
    text[len] = '\0';
    fclose (file);
    return text;
}

/*  The one json line logged, parsed.                                     */
static json_t *
s_take_json (void)
{
    char *text = s_take ();
    json_error_t error;
    json_t *event = json_loads (text, 0, &error);
    if (!event)
        fail_msg ("not one json object: '%s' (%s)", text, error.text);
    free (text);
    return event;
}

static void
test_text_puts_ids_before_the_message (void **state)
{
    s_begin ();
    shoal_log_task (SHOAL_LOG_INFO, "abc123", 7, "attempt %d: started", 1);
    char *text = s_take ();
    const char *expected = " info  test: job=abc123 task=7 attempt 1: "
                           "started\n";
    assert_non_null (strstr (text, expected));
    assert_int_equal (strlen (text), 24 + strlen (expected));  /* time */
    free (text);

    s_begin ();
    shoal_log_task (SHOAL_LOG_WARN, "abc123", -1, "job ended");
    text = s_take ();
    assert_non_null (strstr (text, " warn  test: job=abc123 job ended\n"));
    free (text);

    s_begin ();
    shoal_info ("no ids");
    text = s_take ();
    assert_non_null (strstr (text, " info  test: no ids\n"));
    free (text);
}

static void
test_json_has_job_and_task_fields (void **state)
{
    shoal_log_format ("json");
    s_begin ();
    shoal_log_task (SHOAL_LOG_INFO, "abc123", 7, "attempt %d: started", 1);
    json_t *event = s_take_json ();
    assert_string_equal (json_string_value (json_object_get (event, "job")),
                         "abc123");
    assert_int_equal (json_integer_value (json_object_get (event, "task")),
                      7);
    assert_string_equal (json_string_value (json_object_get (event,
                                                             "message")),
                         "attempt 1: started");
    assert_string_equal (json_string_value (json_object_get (event,
                                                             "level")),
                         "info");
    assert_string_equal (json_string_value (json_object_get (event,
                                                             "component")),
                         "test");
    assert_int_equal (json_object_size (event), 6);
    json_decref (event);

    s_begin ();
    shoal_log_task (SHOAL_LOG_INFO, "abc123", -1, "submitted");
    event = s_take_json ();
    assert_non_null (json_object_get (event, "job"));
    assert_null (json_object_get (event, "task"));
    json_decref (event);

    s_begin ();
    shoal_info ("plain");
    event = s_take_json ();
    assert_int_equal (json_object_size (event), 4);
    json_decref (event);
}

static void
test_json_survives_a_job_id_that_is_not_utf8 (void **state)
{
    shoal_log_format ("json");
    s_begin ();
    shoal_log_task (SHOAL_LOG_WARN, "bad\xff", 3, "not run");
    json_t *event = s_take_json ();
    assert_null (json_object_get (event, "job"));
    assert_int_equal (json_integer_value (json_object_get (event, "task")),
                      3);
    assert_string_equal (json_string_value (json_object_get (event,
                                                             "message")),
                         "(message not valid UTF-8)");
    json_decref (event);
}

static void
test_level_filters (void **state)
{
    assert_int_equal (shoal_log_init (NULL, "warn"), 0);
    s_begin ();
    shoal_log_task (SHOAL_LOG_INFO, "j", 1, "hidden");
    shoal_debug ("hidden");
    shoal_warn ("shown");
    char *text = s_take ();
    assert_null (strstr (text, "hidden"));
    assert_non_null (strstr (text, "shown"));
    free (text);
    assert_false (shoal_log_enabled (SHOAL_LOG_INFO));
    assert_true (shoal_log_enabled (SHOAL_LOG_ERROR));
    assert_int_equal (shoal_log_init (NULL, "debug"), 0);
    assert_true (shoal_log_enabled (SHOAL_LOG_DEBUG));
    assert_int_equal (shoal_log_init (NULL, "loud"), SHOAL_EINVAL);
    assert_int_equal (shoal_log_format ("xml"), SHOAL_EINVAL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
        T (test_text_puts_ids_before_the_message),
        T (test_json_has_job_and_task_fields),
        T (test_json_survives_a_job_id_that_is_not_utf8),
        T (test_level_filters),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
