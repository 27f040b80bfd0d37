/*  handoff.c: JSON values between threads by reference (see handoff.h).

    A frame's data is a small box holding the value's address. ZeroMQ
    passes inproc frames made with zmq_msg_init_data without copying and
    calls the box's free function when the last copy of the frame is
    closed: by the receiver after taking the value out, or by ZeroMQ when
    it drops the frame, in which case the value is released with it.      */
#include "handoff.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <zmq.h>

/*  Tells a box from any other frame that might reach the socket.         */
#define S_MAGIC UINT64_C (0x73686f616c4a534f)   /* "shoalJSO" */

typedef struct {
    uint64_t magic;
    json_t *value;               /* NULL once taken                        */
} s_box_t;

static void
s_box_free (void *data, void *hint)
{
    (void) hint;
    s_box_t *box = data;
    json_decref (box->value);
    free (box);
}

int
shoal_handoff_send (void *socket, json_t *value, int flags)
{
    if (!value) {
        errno = EINVAL;
        return -1;
    }
    s_box_t *box = malloc (sizeof *box);
    if (!box) {
        json_decref (value);
        errno = ENOMEM;
        return -1;
    }
    *box = (s_box_t) { .magic = S_MAGIC, .value = value };
    zmq_msg_t msg;
    if (zmq_msg_init_data (&msg, box, sizeof *box, s_box_free, NULL)) {
        s_box_free (box, NULL);
        return -1;
    }
    if (zmq_msg_send (&msg, socket, flags) < 0) {
        zmq_msg_close (&msg);   /* frees the box and releases the value */
        return -1;
    }
    return 0;
}

json_t *
shoal_handoff_take (void *data, size_t size)
{
    s_box_t *box = data;
    if (size != sizeof *box || !box || box->magic != S_MAGIC)
        return NULL;
    json_t *value = box->value;
    box->value = NULL;
    return value;
}
