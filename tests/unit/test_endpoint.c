/*  test_endpoint.c: which endpoints stay on this machine.                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shoal/endpoint.h"

static void
test_loopback_and_local_transports_are_local (void **state)
{
    const char *local[] = { "tcp://127.0.0.1:5555", "tcp://127.1.2.3:1",
                            "tcp://localhost:5555", "tcp://[::1]:5555",
                            "ipc:///tmp/shoal.sock", "inproc://x",
                            "TCP://127.0.0.1:1",
                            "tcp://10.0.0.1;127.0.0.1:5555" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (!shoal_endpoint_is_local (local[i]))
            fail_msg ("%s should be local", local[i]);
}

static void
test_wildcards_and_other_hosts_are_not (void **state)
{
    const char *remote[] = { "tcp://*:5555", "tcp://0.0.0.0:5555",
                             "tcp://10.0.0.1:5555", "tcp://controller:5555",
                             "tcp://localhost.example.com:1",
                             "tcp://127.0.0.1;10.0.0.1:5555",
                             "tcp://[::]:5555", "udp://127.0.0.1:1", "",
                             NULL };
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
        if (shoal_endpoint_is_local (remote[i]))
            fail_msg ("%s should not be local", remote[i]);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_loopback_and_local_transports_are_local),
        cmocka_unit_test (test_wildcards_and_other_hosts_are_not),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
