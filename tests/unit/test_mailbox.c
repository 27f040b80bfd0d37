/*  test_mailbox.c: calls from other threads to the loop's mailbox.

    A call's request reaches the owner as the same value and its answer
    comes back as the same value; the descriptor is readable exactly while
    calls wait to be taken; a caller that gives up loses nothing and
    leaks nothing, whether or not its call was taken; closing answers the
    waiting callers at once and refuses new ones. The valgrind run of this
    test checks that every value and call is freed once.

    Callers run on threads of their own and only record what they got:
    every assertion is made on the test's thread.                         */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>

#include "mailbox.h"

/*  Long enough that no caller in these tests gives up unless it should.  */
#define S_PATIENT_MS 60000

typedef struct {
    shoal_mailbox_t *mailbox;
    json_t *request;             /* handed to the call                     */
    int timeout_ms;
    json_t *answer;              /* what the call returned                 */
    int error;                   /* its errno when that was NULL           */
    pthread_t thread;
} s_caller_t;

static void *
s_caller_run (void *arg)
{
    s_caller_t *caller = arg;
    caller->answer = shoal_mailbox_call (caller->mailbox, caller->request,
                                         caller->timeout_ms);
    caller->error = caller->answer ? 0 : errno;
    return NULL;
}

static void
s_caller_start (s_caller_t *caller, shoal_mailbox_t *mailbox,
                json_t *request, int timeout_ms)
{
    *caller = (s_caller_t) { .mailbox = mailbox, .request = request,
                             .timeout_ms = timeout_ms };
    assert_int_equal (pthread_create (&caller->thread, NULL, s_caller_run,
                                      caller), 0);
}

static void
s_caller_join (s_caller_t *caller)
{
    assert_int_equal (pthread_join (caller->thread, NULL), 0);
}

/*  Whether the mailbox's descriptor is readable, waiting up to `ms`.     */
static bool
s_readable (shoal_mailbox_t *mailbox, int ms)
{
    struct pollfd item = { shoal_mailbox_fd (mailbox), POLLIN, 0 };
    return poll (&item, 1, ms) == 1 && (item.revents & POLLIN);
}

/*  Waits until a call is posted (the descriptor turns readable).         */
static void
s_wait_posted (shoal_mailbox_t *mailbox)
{
    assert_true (s_readable (mailbox, S_PATIENT_MS));
}

static void
test_a_call_and_its_answer_cross_by_reference (void **state)
{
    (void) state;
    shoal_mailbox_t *mailbox = shoal_mailbox_new ();
    assert_non_null (mailbox);
    assert_false (s_readable (mailbox, 0));
    assert_null (shoal_mailbox_take (mailbox));

    json_t *request = json_pack ("{s:s}", "op", "ping");
    s_caller_t caller;
    s_caller_start (&caller, mailbox, request, S_PATIENT_MS);
    s_wait_posted (mailbox);
    shoal_call_t *call = shoal_mailbox_take (mailbox);
    assert_non_null (call);
    assert_false (s_readable (mailbox, 0));   /* none waits any more */
    json_t *taken = shoal_call_request (call);
    assert_ptr_equal (taken, request);
    assert_null (shoal_call_request (call));  /* taken out once */
    json_decref (taken);

    json_t *answer = json_pack ("{s:i}", "status", 200);
    shoal_call_answer (&call, answer);
    assert_null (call);
    s_caller_join (&caller);
    assert_ptr_equal (caller.answer, answer);
    assert_int_equal (answer->refcount, 1);   /* the caller's alone */
    json_decref (caller.answer);
    shoal_mailbox_destroy (&mailbox);
    assert_null (mailbox);
}

static void
test_calls_are_taken_oldest_first_and_abandoned_ones_dropped (void **state)
{
    (void) state;
    shoal_mailbox_t *mailbox = shoal_mailbox_new ();
    assert_non_null (mailbox);
    json_t *first = json_pack ("{s:i}", "n", 1);
    s_caller_t caller;
    s_caller_start (&caller, mailbox, first, S_PATIENT_MS);
    s_wait_posted (mailbox);

    /* A call that gives up at once, behind the first. */
    json_t *second = json_pack ("{s:i}", "n", 2);
    json_incref (second);
    assert_null (shoal_mailbox_call (mailbox, second, 0));
    assert_int_equal (errno, ETIMEDOUT);
    assert_int_equal (second->refcount, 2);   /* still in the queue */

    shoal_call_t *call = shoal_mailbox_take (mailbox);
    assert_non_null (call);
    json_t *request = shoal_call_request (call);
    assert_ptr_equal (request, first);
    json_decref (request);
    assert_true (s_readable (mailbox, 0));    /* the second still waits */
    assert_null (shoal_mailbox_take (mailbox));  /* ...and is dropped */
    assert_int_equal (second->refcount, 1);
    assert_false (s_readable (mailbox, 0));
    json_decref (second);

    shoal_call_answer (&call, json_true ());
    s_caller_join (&caller);
    assert_true (json_is_true (caller.answer));
    json_decref (caller.answer);
    shoal_mailbox_destroy (&mailbox);
}

static void
test_an_answer_to_a_caller_that_gave_up_is_released (void **state)
{
    (void) state;
    shoal_mailbox_t *mailbox = shoal_mailbox_new ();
    assert_non_null (mailbox);
    /* The call must be taken before its caller gives up: should the
       caller be quicker (a slow machine), it is dropped unread, and the
       next try gives it longer. */
    s_caller_t caller;
    shoal_call_t *call = NULL;
    for (int timeout_ms = 50; !call; timeout_ms *= 2) {
        s_caller_start (&caller, mailbox, json_pack ("{s:s}", "op", "slow"),
                        timeout_ms);
        s_wait_posted (mailbox);
        call = shoal_mailbox_take (mailbox);
        s_caller_join (&caller);      /* it gave up, the call held or not */
        assert_null (caller.answer);
        assert_int_equal (caller.error, ETIMEDOUT);
    }

    json_t *answer = json_pack ("{s:i}", "status", 201);
    json_incref (answer);
    json_decref (shoal_call_request (call));
    shoal_call_answer (&call, answer);
    assert_null (call);
    assert_int_equal (answer->refcount, 1);   /* ours alone: released */
    json_decref (answer);
    shoal_mailbox_destroy (&mailbox);
}

static void
test_closing_answers_waiting_callers_and_refuses_new_ones (void **state)
{
    (void) state;
    shoal_mailbox_t *mailbox = shoal_mailbox_new ();
    assert_non_null (mailbox);
    s_caller_t held, waiting;
    s_caller_start (&held, mailbox, json_pack ("{s:i}", "n", 1),
                    S_PATIENT_MS);
    s_wait_posted (mailbox);
    shoal_call_t *call = shoal_mailbox_take (mailbox);
    assert_non_null (call);
    s_caller_start (&waiting, mailbox, json_pack ("{s:i}", "n", 2),
                    S_PATIENT_MS);
    s_wait_posted (mailbox);

    shoal_mailbox_close (mailbox);
    s_caller_join (&waiting);           /* told at once, not timed out */
    assert_null (waiting.answer);
    assert_int_equal (waiting.error, ESHUTDOWN);
    assert_false (s_readable (mailbox, 0));
    assert_null (shoal_mailbox_take (mailbox));

    json_t *late = json_pack ("{s:i}", "n", 3);
    json_incref (late);
    assert_null (shoal_mailbox_call (mailbox, late, S_PATIENT_MS));
    assert_int_equal (errno, ESHUTDOWN);
    assert_int_equal (late->refcount, 1);     /* released, not queued */
    json_decref (late);

    /* A call taken before the close is still answered. */
    json_decref (shoal_call_request (call));
    shoal_call_answer (&call, json_string ("done"));
    s_caller_join (&held);
    assert_string_equal (json_string_value (held.answer), "done");
    json_decref (held.answer);

    /* Answering with nothing tells the caller the controller stops. */
    s_caller_t last;
    shoal_mailbox_t *other = shoal_mailbox_new ();
    assert_non_null (other);
    s_caller_start (&last, other, json_object (), S_PATIENT_MS);
    s_wait_posted (other);
    call = shoal_mailbox_take (other);
    assert_non_null (call);
    shoal_call_answer (&call, NULL);
    s_caller_join (&last);
    assert_null (last.answer);
    assert_int_equal (last.error, ESHUTDOWN);
    shoal_mailbox_destroy (&other);
    shoal_mailbox_destroy (&mailbox);
}

static void
test_no_request_is_refused (void **state)
{
    (void) state;
    shoal_mailbox_t *mailbox = shoal_mailbox_new ();
    assert_non_null (mailbox);
    /* json_pack's NULL when out of memory: nothing is posted. */
    assert_null (shoal_mailbox_call (mailbox, NULL, S_PATIENT_MS));
    assert_int_equal (errno, ENOMEM);
    assert_false (s_readable (mailbox, 0));
    shoal_mailbox_destroy (&mailbox);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_call_and_its_answer_cross_by_reference),
        cmocka_unit_test (
            test_calls_are_taken_oldest_first_and_abandoned_ones_dropped),
        cmocka_unit_test (test_an_answer_to_a_caller_that_gave_up_is_released),
        cmocka_unit_test (
            test_closing_answers_waiting_callers_and_refuses_new_ones),
        cmocka_unit_test (test_no_request_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
