/*  handoff.h: a JSON value handed from one controller thread to another
    over an inproc ZeroMQ socket, by reference.

    The HTTP threads and the loop talk over inproc sockets. Sent as text,
    every request and answer was printed by one thread and parsed again
    by the other, both ways: four passes over the JSON per REST call, and
    the answer's body printed a fifth time for the client. Handed over by
    reference, the value is built once and printed once, for the client.

    A handed-over value belongs to the receiver alone: the sender keeps
    no reference to it. Parts of it may still be shared with values the
    sender keeps (a job's params); jansson counts references atomically,
    and neither thread changes a value once it is shared, so that is
    safe. A frame ZeroMQ drops (its receiver is gone) releases its
    value.                                                                 */
#ifndef SHOAL_CONTROLLER_HANDOFF_H
#define SHOAL_CONTROLLER_HANDOFF_H

#include <jansson.h>
#include <stddef.h>

/*  Sends `value` (taken, NULL allowed: nothing is then sent and -1
    returned) as one frame on the ZeroMQ `socket`, with zmq_msg_send
    `flags` (ZMQ_SNDMORE). Only for inproc sockets: the frame holds an
    address. Returns 0, or -1 with zmq_errno set (the value is released). */
int shoal_handoff_send (void *socket, json_t *value, int flags);

/*  The value a received frame of `size` bytes at `data` holds; it is
    taken out, so the frame holds none afterwards. NULL when the frame is
    not a handoff frame, or was already taken.                             */
json_t *shoal_handoff_take (void *data, size_t size);

#endif
