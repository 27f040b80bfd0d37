/*  test_params.c: checking submitted params against a job's inputs.      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <strings.h>

#include "shoal/defs.h"
#include "shoal/params.h"

static const char *s_yaml =
    "tasks:\n"
    "  t:\n"
    "    exec_command: /bin/true\n"
    "jobs:\n"
    "  j:\n"
    "    input:\n"
    "      data_id: {source: parameter}\n"
    "      level: {source: parameter, default: info}\n"
    "      auth: {source: http-header, key: Authorization}\n"
    "      password: {source: parameter, secret: true, default: x}\n"
    "      HOME: {source: environment}\n"
    "    stages:\n"
    "      - {task_class: t}\n";

static shoal_defs_t *s_defs;

static int
s_setup (void **state)
{
    shoal_error_t err = { 0 };
    s_defs = shoal_defs_parse (s_yaml, strlen (s_yaml), "p.yaml", &err);
    if (!s_defs)
        fail_msg ("%s", err.message);
    return 0;
}

static int
s_teardown (void **state)
{
    shoal_defs_destroy (&s_defs);
    return 0;
}

static const char *
s_headers (const char *name, void *arg)
{
    return strcasecmp (name, "authorization") == 0 ? (const char *) arg : NULL;
}

static json_t *
s_build (const char *given_json, const char *auth, shoal_error_t *err)
{
    json_t *given = given_json ? json_loads (given_json, 0, NULL) : NULL;
    json_t *params = shoal_params_build (shoal_defs_job_class (s_defs, "j"),
                                         given, s_headers, (void *) auth, err);
    json_decref (given);
    return params;
}

static void
test_values_defaults_and_headers_are_filled (void **state)
{
    shoal_error_t err = { 0 };
    json_t *params = s_build ("{\"data_id\": 42}", "Basic abc", &err);
    assert_non_null (params);
    assert_string_equal (json_string_value (json_object_get (params,
                                                             "data_id")),
                         "42");
    assert_string_equal (json_string_value (json_object_get (params, "level")),
                         "info");
    assert_string_equal (json_string_value (json_object_get (params, "auth")),
                         "Basic abc");
    assert_null (json_object_get (params, "HOME"));
    json_decref (params);
}

static void
test_missing_param_names_the_field (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{}", "Basic abc", &err));
    assert_int_equal (err.code, SHOAL_EINVAL);
    assert_string_equal (err.field, "params.data_id");
}

static void
test_undeclared_param_names_the_field (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{\"data_id\": \"1\", \"dataid\": 2}", "B", &err));
    assert_string_equal (err.field, "params.dataid");
}

static void
test_nested_value_is_refused (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{\"data_id\": {\"a\": 1}}", "B", &err));
    assert_string_equal (err.field, "params.data_id");
    assert_null (s_build ("{\"data_id\": null}", "B", &err));
    assert_string_equal (err.field, "params.data_id");
}

static void
test_missing_header_names_the_header (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{\"data_id\": \"1\"}", NULL, &err));
    assert_string_equal (err.field, "header Authorization");
}

static void
test_header_input_cannot_come_from_params (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{\"data_id\": \"1\", \"auth\": \"x\"}", "B", &err));
    assert_string_equal (err.field, "params.auth");
}

static void
test_environment_input_cannot_come_from_params (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("{\"data_id\": \"1\", \"HOME\": \"/\"}", "B", &err));
    assert_string_equal (err.field, "params.HOME");
}

static void
test_params_must_be_an_object (void **state)
{
    shoal_error_t err = { 0 };
    assert_null (s_build ("[1]", "B", &err));
    assert_string_equal (err.field, "params");
}

static void
test_secrets_are_masked (void **state)
{
    shoal_error_t err = { 0 };
    json_t *params = s_build ("{\"data_id\": \"1\", \"password\": \"hunter2\"}",
                              "Basic abc", &err);
    json_t *masked = shoal_params_masked (shoal_defs_job_class (s_defs, "j"),
                                          params);
    char *text = json_dumps (masked, 0);
    assert_null (strstr (text, "hunter2"));
    assert_null (strstr (text, "Basic abc"));
    assert_string_equal (json_string_value (json_object_get (masked,
                                                             "data_id")),
                         "1");
    free (text);
    json_decref (masked);
    json_decref (params);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_values_defaults_and_headers_are_filled),
        cmocka_unit_test (test_missing_param_names_the_field),
        cmocka_unit_test (test_undeclared_param_names_the_field),
        cmocka_unit_test (test_nested_value_is_refused),
        cmocka_unit_test (test_missing_header_names_the_header),
        cmocka_unit_test (test_header_input_cannot_come_from_params),
        cmocka_unit_test (test_environment_input_cannot_come_from_params),
        cmocka_unit_test (test_params_must_be_an_object),
        cmocka_unit_test (test_secrets_are_masked),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
