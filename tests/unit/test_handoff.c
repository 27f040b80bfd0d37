/*  test_handoff.c: a JSON value handed between threads over an inproc
    ZeroMQ socket arrives as the same value, once, and a frame ZeroMQ
    drops or never delivers releases its value (no leak, no double free;
    the valgrind run of this test checks both).

    inproc sockets pass messages inside this process: nothing goes
    through the network or the kernel's sockets.                          */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <zmq.h>

#include "handoff.h"

typedef struct {
    void *ctx;
    void *sender;
    void *receiver;
} s_pair_t;

static void
s_pair_open (s_pair_t *pair, const char *endpoint)
{
    pair->ctx = zmq_ctx_new ();
    assert_non_null (pair->ctx);
    pair->receiver = zmq_socket (pair->ctx, ZMQ_PAIR);
    pair->sender = zmq_socket (pair->ctx, ZMQ_PAIR);
    int linger = 0;
    zmq_setsockopt (pair->receiver, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (pair->sender, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_bind (pair->receiver, endpoint), 0);
    assert_int_equal (zmq_connect (pair->sender, endpoint), 0);
}

static void
s_pair_close (s_pair_t *pair)
{
    if (pair->sender)
        zmq_close (pair->sender);
    if (pair->receiver)
        zmq_close (pair->receiver);
    zmq_ctx_term (pair->ctx);
}

static json_t *
s_receive (void *socket)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    assert_true (zmq_msg_recv (&msg, socket, 0) >= 0);
    json_t *value = shoal_handoff_take (zmq_msg_data (&msg),
                                        zmq_msg_size (&msg));
    /* Taken once: the frame holds nothing more. */
    assert_null (shoal_handoff_take (zmq_msg_data (&msg),
                                     zmq_msg_size (&msg)));
    zmq_msg_close (&msg);
    return value;
}

static void
test_the_value_arrives_by_reference (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair_open (&pair, "inproc://handoff-arrives");
    json_t *value = json_pack ("{s:s, s:i}", "op", "submit", "n", 7);
    json_t *kept = json_incref (value);   /* to compare after the trip */
    assert_int_equal (shoal_handoff_send (pair.sender, value, 0), 0);
    json_t *got = s_receive (pair.receiver);
    assert_ptr_equal (got, kept);
    assert_int_equal (kept->refcount, 2);   /* ours and the receiver's */
    assert_string_equal (json_string_value (json_object_get (got, "op")),
                         "submit");
    json_decref (got);
    assert_int_equal (kept->refcount, 1);
    json_decref (kept);
    s_pair_close (&pair);
}

static void
test_parts_of_a_multipart_message (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair_open (&pair, "inproc://handoff-multipart");
    assert_int_equal (zmq_send (pair.sender, "head", 4, ZMQ_SNDMORE), 4);
    assert_int_equal (shoal_handoff_send (pair.sender, json_integer (42), 0),
                      0);
    char head[8];
    assert_int_equal (zmq_recv (pair.receiver, head, sizeof head, 0), 4);
    int more = 0;
    size_t size = sizeof more;
    zmq_getsockopt (pair.receiver, ZMQ_RCVMORE, &more, &size);
    assert_true (more);
    json_t *got = s_receive (pair.receiver);
    assert_int_equal (json_integer_value (got), 42);
    json_decref (got);
    s_pair_close (&pair);
}

static void
test_a_dropped_frame_releases_its_value (void **state)
{
    (void) state;
    /* A ROUTER drops a message for a peer it does not know (an HTTP
       thread that gave up waiting and closed its socket). */
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    assert_int_equal (zmq_bind (router, "inproc://handoff-dropped"), 0);
    json_t *value = json_pack ("{s:s}", "status", "late");
    json_t *kept = json_incref (value);
    assert_int_equal (zmq_send (router, "gone", 4, ZMQ_SNDMORE), 4);
    assert_int_equal (shoal_handoff_send (router, value, 0), 0);
    assert_int_equal (kept->refcount, 1);   /* the frame's is released */
    json_decref (kept);
    zmq_close (router);
    zmq_ctx_term (ctx);
}

static void
test_an_unread_frame_is_released_with_its_socket (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair_open (&pair, "inproc://handoff-unread");
    json_t *value = json_pack ("[s, s]", "never", "read");
    json_t *kept = json_incref (value);
    assert_int_equal (shoal_handoff_send (pair.sender, value, 0), 0);
    s_pair_close (&pair);
    assert_int_equal (kept->refcount, 1);
    json_decref (kept);
}

static void
test_other_frames_and_nothing_are_refused (void **state)
{
    (void) state;
    char text[] = "{\"op\":\"submit\"}";
    assert_null (shoal_handoff_take (text, strlen (text)));
    uint64_t not_a_box[2] = { 1, 2 };
    assert_null (shoal_handoff_take (not_a_box, sizeof not_a_box));
    assert_null (shoal_handoff_take (NULL, 0));
    s_pair_t pair;
    s_pair_open (&pair, "inproc://handoff-nothing");
    assert_int_equal (shoal_handoff_send (pair.sender, NULL, 0), -1);
    s_pair_close (&pair);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_the_value_arrives_by_reference),
        cmocka_unit_test (test_parts_of_a_multipart_message),
        cmocka_unit_test (test_a_dropped_frame_releases_its_value),
        cmocka_unit_test (test_an_unread_frame_is_released_with_its_socket),
        cmocka_unit_test (test_other_frames_and_nothing_are_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
