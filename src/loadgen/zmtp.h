/*  zmtp.h: the client end of ZMTP 3.0 (RFC 23), as much as a simulated
    DEALER needs: the NULL mechanism, messages of a few frames, one
    non-blocking stream socket that the caller polls.

    Why the load generator has its own: with a libzmq socket per simulated
    worker every message crosses two threads (the caller's and libzmq's
    I/O thread), and each crossing is a wake-up. On a 2-CPU machine the
    generator then spent as much CPU per task as the controller it was
    measuring, and competed with it for the same two cores. Here a message
    is one write() and one read() in the caller's thread. The controller
    sees an ordinary DEALER peer: the bytes on the wire are the same.

    Two layers. The codec (lg_zmtp_handshake, lg_zmtp_frame_header,
    lg_zmtp_decode) touches no socket, so unit tests drive it with byte
    buffers. lg_zmtp_conn_t puts it on a socket: connect, send with
    writev, keep what the kernel did not take, read and decode.          */
#ifndef SHOAL_LOADGEN_ZMTP_H
#define SHOAL_LOADGEN_ZMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*  Bytes of a ZMTP 3 greeting.                                            */
#define LG_ZMTP_GREETING_SIZE 64

/*  Room lg_zmtp_handshake needs: greeting, then READY with Socket-Type.   */
#define LG_ZMTP_HANDSHAKE_MAX 128

/*  Longest frame header: flags and an 8-byte size.                        */
#define LG_ZMTP_HEADER_MAX 9

/*  Frames a message may have; the decoder hands over this many and counts
    the rest, so the caller can refuse a message of the wrong shape.       */
#define LG_ZMTP_FRAMES_MAX 4

/*  Writes our greeting (version 3.0, mechanism NULL, as client) and the
    READY command announcing `socket_type` ("DEALER") into `out`, which
    holds LG_ZMTP_HANDSHAKE_MAX bytes. Returns the bytes written.          */
size_t lg_zmtp_handshake (uint8_t *out, const char *socket_type);

/*  Writes the header of a message frame of `size` bytes (short form up to
    255 bytes, long beyond), with MORE when `more`. Returns its length.    */
size_t lg_zmtp_frame_header (uint8_t *out, bool more, uint64_t size);

/*  One frame of a decoded message: points into the decoder's input.       */
typedef struct {
    const uint8_t *data;
    size_t size;
} lg_zmtp_frame_t;

/*  What the decoder hands over. Each returns 0 to go on, or nonzero to
    stop decoding at once (the caller closed the connection).              */
typedef struct {
    /* A whole message: `count` frames, the first min(count,
       LG_ZMTP_FRAMES_MAX) in `frames`. */
    int (*on_message) (void *arg, const lg_zmtp_frame_t *frames,
                       size_t count);
    /* A PING (ZMTP 3.1 heartbeat): answer PONG with `context`. NULL:
       lg_zmtp_conn_on_readable answers it. */
    int (*on_ping) (void *arg, const uint8_t *context, size_t size);
} lg_zmtp_handler_t;

typedef enum {
    LG_ZMTP_WANT_GREETING,    /* the peer's 64-byte greeting               */
    LG_ZMTP_WANT_READY,       /* its READY (or ERROR) command              */
    LG_ZMTP_OPEN,             /* messages and commands                     */
} lg_zmtp_phase_t;

typedef struct {
    lg_zmtp_phase_t phase;
    uint64_t max_frame;       /* larger frames are a protocol error        */
} lg_zmtp_decoder_t;

/*  A decoder at the start of a connection.                                */
void lg_zmtp_decoder_init (lg_zmtp_decoder_t *self, uint64_t max_frame);

/*  Decodes `data` from its start: the peer's greeting, its READY, then
    messages, each handed to `handler` once all its frames are in. Returns
    the bytes consumed; the rest begins an incomplete message: keep it and
    call again once more has arrived. Returns -1 with a message in `err`
    (of `err_size` bytes) when the peer does not speak ZMTP 3 with the
    NULL mechanism, sends ERROR, or sends a frame over max_frame. O(size). */
ssize_t lg_zmtp_decode (lg_zmtp_decoder_t *self, const uint8_t *data,
                        size_t size, const lg_zmtp_handler_t *handler,
                        void *arg, char *err, size_t err_size);

/*  One connection. Invariants: fd < 0 means closed, and then in_len and
    out_len are 0; while `connecting`, sends only queue.                   */
typedef struct {
    int fd;                   /* non-blocking stream socket, or -1         */
    bool connecting;          /* connect() has not completed yet           */
    lg_zmtp_decoder_t decoder;
    uint8_t *in;              /* an incomplete message kept between reads  */
    size_t in_len;
    size_t in_cap;
    uint8_t *out;             /* bytes the kernel has not taken yet        */
    size_t out_len;
    size_t out_cap;
    size_t handshake_unsent;  /* leading bytes of `out` that are our
                                 handshake; the rest waits for the peer's
                                 READY                                     */
    char error[128];          /* why the connection broke                  */
} lg_zmtp_conn_t;

/*  Bound on the bytes queued for the kernel on one connection, and on an
    incomplete message kept between reads, beyond the largest frame.       */
#define LG_ZMTP_QUEUE_MAX ((size_t) 64 << 20)

/*  A closed connection whose frames may be up to `max_frame` bytes.       */
void lg_zmtp_conn_init (lg_zmtp_conn_t *self, uint64_t max_frame);

/*  Frees the buffers and closes the socket. Idempotent.                   */
void lg_zmtp_conn_release (lg_zmtp_conn_t *self);

/*  Opens a non-blocking socket (TCP_NODELAY on TCP), starts connecting to
    `addr` and queues the handshake. 0, or -1 with `error` set.            */
int lg_zmtp_conn_open (lg_zmtp_conn_t *self, const struct sockaddr *addr,
                       socklen_t addr_len);

/*  Closes the socket and drops anything queued or half read; the buffers
    stay for the next open (and stay valid while a decode is running).     */
void lg_zmtp_conn_close (lg_zmtp_conn_t *self);

/*  Sends a message of `count` frames. What the kernel does not take now is
    queued, in order; before the peer's READY everything is (the peer
    would take a message for a handshake command). 0, or -1 with `error` set: the connection broke or
    the queue would pass its bound.                                        */
int lg_zmtp_conn_send (lg_zmtp_conn_t *self, const lg_zmtp_frame_t *frames,
                       size_t count);

/*  The socket is writable: completes a connect, writes what is queued.
    0, or -1 with `error` set.                                             */
int lg_zmtp_conn_on_writable (lg_zmtp_conn_t *self);

/*  The socket is readable: reads until the kernel has no more, decoding
    into `handler`. `scratch` (of `scratch_size` bytes, shared by the
    connections of one thread) takes each read; only an incomplete
    message is copied into the connection. 0, or -1 with `error` set (the
    peer closed, a read failed, a protocol error). A handler that closes
    the connection ends the reading with 0.                                */
int lg_zmtp_conn_on_readable (lg_zmtp_conn_t *self, uint8_t *scratch,
                              size_t scratch_size,
                              const lg_zmtp_handler_t *handler, void *arg);

/*  Whether bytes wait for the socket to become writable (poll for it).    */
bool lg_zmtp_conn_wants_write (const lg_zmtp_conn_t *self);

#endif
