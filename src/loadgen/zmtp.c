/*  zmtp.c: the client end of ZMTP 3.0 for simulated DEALERs (zmtp.h).

    The wire, from RFC 23:

      greeting  = %xFF 8%x00 %x7F   signature
                  %x03 %x00         version 3.0
                  "NULL" 16%x00     mechanism
                  %x00              as-server: we are the client
                  31%x00            filler
      frame     = flags size body   flags: bit 0 MORE, bit 1 LONG (8-byte
                                    size, else 1 byte), bit 2 COMMAND
      command   = name-length name data
      READY     = "READY" *(name-length name value-length(4) value)

    A message is frames with MORE on all but the last. Commands come only
    between messages.                                                      */
#include "zmtp.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_FLAG_MORE 0x01
#define S_FLAG_LONG 0x02
#define S_FLAG_COMMAND 0x04

/*  What each read asks the kernel for once a connection keeps a partial
    message (a message larger than this grows the buffer as it comes).   */
#define S_READ_CHUNK 65536

static void
s_put_u32 (uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t) (value >> 24);
    out[1] = (uint8_t) (value >> 16);
    out[2] = (uint8_t) (value >> 8);
    out[3] = (uint8_t) value;
}

/*  A big-endian number of `bytes` bytes.                                  */
static uint64_t
s_get_be (const uint8_t *in, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value = (value << 8) | in[i];
    return value;
}

size_t
lg_zmtp_handshake (uint8_t *out, const char *socket_type)
{
    memset (out, 0, LG_ZMTP_GREETING_SIZE);
    out[0] = 0xFF;
    out[9] = 0x7F;
    out[10] = 3;
    out[11] = 0;
    memcpy (out + 12, "NULL", 4);
    size_t len = LG_ZMTP_GREETING_SIZE;
    /* READY: the command body, then its header in front of it. */
    static const char property[] = "Socket-Type";
    size_t type_len = strlen (socket_type);
    size_t body = 1 + 5 + 1 + (sizeof property - 1) + 4 + type_len;
    out[len++] = S_FLAG_COMMAND;
    out[len++] = (uint8_t) body;
    out[len++] = 5;
    memcpy (out + len, "READY", 5);
    len += 5;
    out[len++] = (uint8_t) (sizeof property - 1);
    memcpy (out + len, property, sizeof property - 1);
    len += sizeof property - 1;
    s_put_u32 (out + len, (uint32_t) type_len);
    len += 4;
    memcpy (out + len, socket_type, type_len);
    return len + type_len;
}

size_t
lg_zmtp_frame_header (uint8_t *out, bool more, uint64_t size)
{
    uint8_t flags = more ? S_FLAG_MORE : 0;
    if (size <= 255) {
        out[0] = flags;
        out[1] = (uint8_t) size;
        return 2;
    }
    out[0] = flags | S_FLAG_LONG;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t) (size >> (56 - 8 * i));
    return 9;
}

void
lg_zmtp_decoder_init (lg_zmtp_decoder_t *self, uint64_t max_frame)
{
    self->phase = LG_ZMTP_WANT_GREETING;
    self->max_frame = max_frame;
}

static ssize_t
s_fail (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
    return -1;
}

/*  Checks the peer's greeting: a ZMTP 3 signature, mechanism NULL.        */
static int
s_check_greeting (const uint8_t *greeting, char *err, size_t err_size)
{
    if (greeting[0] != 0xFF || !(greeting[9] & 0x01))
        return (int) s_fail (err, err_size, "the peer does not speak ZMTP");
    if (greeting[10] < 3)
        return (int) s_fail (err, err_size,
                             "the peer speaks ZMTP %u, not 3",
                             (unsigned) greeting[10]);
    static const uint8_t null_mechanism[20] = "NULL";
    if (memcmp (greeting + 12, null_mechanism, sizeof null_mechanism)) {
        char mechanism[21];
        memcpy (mechanism, greeting + 12, 20);
        mechanism[20] = '\0';
        return (int) s_fail (err, err_size,
                             "the peer wants the %s mechanism (CURVE keys "
                             "are not supported here)", mechanism);
    }
    return 0;
}

/*  Whether a command's body is the command `name`.                        */
static bool
s_is_command (const uint8_t *body, size_t size, const char *name)
{
    size_t len = strlen (name);
    return size >= 1 + len && body[0] == len && !memcmp (body + 1, name, len);
}

/*  Checks READY's properties (name-length(1) name value-length(4) value,
    repeated, to the end of the frame): well formed, and a Socket-Type, if
    any, that a DEALER may talk to here: the controller's ROUTER.          */
static int
s_check_ready (const uint8_t *body, size_t size, char *err, size_t err_size)
{
    size_t at = 1 + 5;   /* past "\x05READY" */
    while (at < size) {
        size_t name_len = body[at++];
        if (size - at < name_len + 4)
            return (int) s_fail (err, err_size, "a malformed READY");
        const uint8_t *name = body + at;
        at += name_len;
        uint64_t value_len = s_get_be (body + at, 4);
        at += 4;
        if (size - at < value_len)
            return (int) s_fail (err, err_size, "a malformed READY");
        const uint8_t *value = body + at;
        at += (size_t) value_len;
        if (name_len == 11 && !strncasecmp ((const char *) name,
                                            "Socket-Type", 11)
            && !(value_len == 6 && !memcmp (value, "ROUTER", 6)))
            return (int) s_fail (err, err_size,
                                 "the peer is a %.*s socket, not the "
                                 "controller's ROUTER",
                                 (int) (value_len > 32 ? 32 : value_len),
                                 (const char *) value);
    }
    return 0;
}

/*  Handles one command in the open phase or READY/ERROR before it.       */
static int
s_on_command (lg_zmtp_decoder_t *self, const uint8_t *body, size_t size,
              const lg_zmtp_handler_t *handler, void *arg, bool *stop,
              char *err, size_t err_size)
{
    if (s_is_command (body, size, "ERROR")) {
        /* ERROR = name, reason-length(1), reason */
        size_t at = 6;
        size_t reason = at < size ? body[at] : 0;
        if (at + 1 + reason > size)
            reason = 0;
        return (int) s_fail (err, err_size, "the peer refused us: %.*s",
                             (int) reason, (const char *) body + at + 1);
    }
    if (self->phase == LG_ZMTP_WANT_READY) {
        if (!s_is_command (body, size, "READY"))
            return (int) s_fail (err, err_size,
                                 "the peer sent a command other than READY "
                                 "in the handshake");
        if (s_check_ready (body, size, err, err_size))
            return -1;
        self->phase = LG_ZMTP_OPEN;
        return 0;
    }
    if (s_is_command (body, size, "PING") && handler->on_ping) {
        /* PING = name, TTL(2), context */
        size_t at = 1 + 4 + 2;
        if (at <= size
            && handler->on_ping (arg, body + at, size - at))
            *stop = true;
    }
    return 0;   /* PONG and others: nothing to do */
}

ssize_t
lg_zmtp_decode (lg_zmtp_decoder_t *self, const uint8_t *data, size_t size,
                const lg_zmtp_handler_t *handler, void *arg, char *err,
                size_t err_size)
{
    size_t done = 0;   /* end of the last whole message or command */
    if (self->phase == LG_ZMTP_WANT_GREETING) {
        if (size < LG_ZMTP_GREETING_SIZE)
            return 0;
        if (s_check_greeting (data, err, err_size))
            return -1;
        self->phase = LG_ZMTP_WANT_READY;
        done = LG_ZMTP_GREETING_SIZE;
    }
    lg_zmtp_frame_t frames[LG_ZMTP_FRAMES_MAX];
    size_t count = 0;       /* frames of the message being read */
    size_t at = done;
    while (at < size) {
        uint8_t flags = data[at];
        size_t header = flags & S_FLAG_LONG ? 9 : 2;
        if (size - at < header)
            break;
        uint64_t length = flags & S_FLAG_LONG ? s_get_be (data + at + 1, 8)
                                              : data[at + 1];
        if (flags & ~(S_FLAG_MORE | S_FLAG_LONG | S_FLAG_COMMAND))
            return s_fail (err, err_size, "bad frame flags 0x%02x",
                           (unsigned) flags);
        if (length > self->max_frame)
            return s_fail (err, err_size,
                           "a frame of %llu bytes, over the %llu byte limit",
                           (unsigned long long) length,
                           (unsigned long long) self->max_frame);
        if (size - at - header < length)
            break;
        const uint8_t *body = data + at + header;
        at += header + (size_t) length;
        bool stop = false;
        if (flags & S_FLAG_COMMAND) {
            if (count)
                return s_fail (err, err_size,
                               "a command inside a message");
            if (flags & S_FLAG_MORE)
                return s_fail (err, err_size,
                               "a command frame with MORE set");
            if (s_on_command (self, body, (size_t) length, handler, arg,
                              &stop, err, err_size))
                return -1;
            done = at;
        }
        else if (self->phase != LG_ZMTP_OPEN)
            return s_fail (err, err_size,
                           "a message before the handshake ended");
        else {
            if (count < LG_ZMTP_FRAMES_MAX)
                frames[count] = (lg_zmtp_frame_t) { body, (size_t) length };
            count++;
            if (!(flags & S_FLAG_MORE)) {
                stop = handler->on_message (arg, frames, count) != 0;
                count = 0;
                done = at;
            }
        }
        if (stop)
            return (ssize_t) done;
    }
    return (ssize_t) done;
}

/* ---- the connection ------------------------------------------------- */

static int
s_conn_fail (lg_zmtp_conn_t *self, const char *what, int error)
{
    snprintf (self->error, sizeof self->error, "%s: %s", what,
              strerror (error));
    return -1;
}

void
lg_zmtp_conn_init (lg_zmtp_conn_t *self, uint64_t max_frame)
{
    memset (self, 0, sizeof *self);
    self->fd = -1;
    lg_zmtp_decoder_init (&self->decoder, max_frame);
}

void
lg_zmtp_conn_close (lg_zmtp_conn_t *self)
{
    if (self->fd >= 0)
        close (self->fd);
    self->fd = -1;
    self->connecting = false;
    self->in_len = 0;
    self->out_len = 0;
    self->handshake_unsent = 0;
}

void
lg_zmtp_conn_release (lg_zmtp_conn_t *self)
{
    lg_zmtp_conn_close (self);
    free (self->in);
    free (self->out);
    self->in = self->out = NULL;
    self->in_cap = self->out_cap = 0;
}

/*  Makes room for `more` bytes past `len` in a buffer of `cap`, bounded by
    `limit`. 0 or -1.                                                      */
static int
s_reserve (uint8_t **buf, size_t *cap, size_t len, size_t more, size_t limit)
{
    if (len + more <= *cap)
        return 0;
    if (len + more > limit)
        return -1;
    size_t want = *cap ? *cap : 4096;
    while (want < len + more)
        want *= 2;
    if (want > limit)
        want = limit;
    uint8_t *grown = realloc (*buf, want);
    if (!grown)
        return -1;
    *buf = grown;
    *cap = want;
    return 0;
}

/*  Queues `size` bytes behind what waits already.                         */
static int
s_queue (lg_zmtp_conn_t *self, const void *data, size_t size)
{
    if (s_reserve (&self->out, &self->out_cap, self->out_len, size,
                   LG_ZMTP_QUEUE_MAX + self->decoder.max_frame)) {
        snprintf (self->error, sizeof self->error,
                  "more than %zu bytes wait to be sent",
                  (size_t) LG_ZMTP_QUEUE_MAX);
        return -1;
    }
    memcpy (self->out + self->out_len, data, size);
    self->out_len += size;
    return 0;
}

int
lg_zmtp_conn_open (lg_zmtp_conn_t *self, const struct sockaddr *addr,
                   socklen_t addr_len)
{
    lg_zmtp_conn_close (self);
    lg_zmtp_decoder_init (&self->decoder, self->decoder.max_frame);
    int fd = socket (addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK
                                          | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return s_conn_fail (self, "socket", errno);
    if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
        /* As libzmq does: a message goes out when it is sent. */
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    self->fd = fd;
    if (connect (fd, addr, addr_len) == 0)
        self->connecting = false;
    else if (errno == EINPROGRESS)
        self->connecting = true;
    else {
        int error = errno;
        lg_zmtp_conn_close (self);
        return s_conn_fail (self, "connect", error);
    }
    uint8_t handshake[LG_ZMTP_HANDSHAKE_MAX];
    size_t len = lg_zmtp_handshake (handshake, "DEALER");
    if (s_queue (self, handshake, len)) {
        lg_zmtp_conn_close (self);
        return -1;
    }
    self->handshake_unsent = len;
    return self->connecting ? 0 : lg_zmtp_conn_on_writable (self);
}

/*  Bytes of the queue that may go now: before the peer's READY, only our
    handshake (libzmq takes any frame before then for a handshake command
    and drops the connection).                                             */
static size_t
s_sendable (const lg_zmtp_conn_t *self)
{
    if (self->decoder.phase == LG_ZMTP_OPEN)
        return self->out_len;
    return self->handshake_unsent < self->out_len ? self->handshake_unsent
                                                  : self->out_len;
}

/*  Writes what may go of the queue. 0 (all of it, or the kernel is full)
    or -1.                                                                 */
static int
s_flush (lg_zmtp_conn_t *self)
{
    size_t sent = 0;
    size_t sendable = s_sendable (self);
    while (sent < sendable) {
        ssize_t n = send (self->fd, self->out + sent, sendable - sent,
                          MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return s_conn_fail (self, "send", errno);
        }
        sent += (size_t) n;
    }
    memmove (self->out, self->out + sent, self->out_len - sent);
    self->out_len -= sent;
    self->handshake_unsent -= sent < self->handshake_unsent
                                  ? sent : self->handshake_unsent;
    return 0;
}

int
lg_zmtp_conn_on_writable (lg_zmtp_conn_t *self)
{
    if (self->fd < 0)
        return -1;
    if (self->connecting) {
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt (self->fd, SOL_SOCKET, SO_ERROR, &error, &len))
            error = errno;
        if (error)
            return s_conn_fail (self, "connect", error);
        self->connecting = false;
    }
    return s_flush (self);
}

int
lg_zmtp_conn_send (lg_zmtp_conn_t *self, const lg_zmtp_frame_t *frames,
                   size_t count)
{
    if (self->fd < 0) {
        snprintf (self->error, sizeof self->error, "not connected");
        return -1;
    }
    if (count == 0 || count > LG_ZMTP_FRAMES_MAX)
        return -1;
    uint8_t headers[LG_ZMTP_FRAMES_MAX][LG_ZMTP_HEADER_MAX];
    struct iovec iov[2 * LG_ZMTP_FRAMES_MAX];
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        iov[2 * i].iov_base = headers[i];
        iov[2 * i].iov_len = lg_zmtp_frame_header (headers[i], i + 1 < count,
                                                   frames[i].size);
        iov[2 * i + 1].iov_base = (void *) frames[i].data;
        iov[2 * i + 1].iov_len = frames[i].size;
        total += iov[2 * i].iov_len + frames[i].size;
    }
    size_t sent = 0;
    if (!self->connecting && self->out_len == 0
        && self->decoder.phase == LG_ZMTP_OPEN) {
        /* The usual case: the kernel takes the whole message at once. */
        ssize_t n;
        do
            n = writev (self->fd, iov, (int) (2 * count));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return s_conn_fail (self, "send", errno);
        sent = n > 0 ? (size_t) n : 0;
    }
    if (sent == total)
        return 0;
    /* Queue the rest, skipping what went out. */
    for (size_t i = 0; i < 2 * count; i++) {
        size_t len = iov[i].iov_len;
        if (sent >= len) {
            sent -= len;
            continue;
        }
        if (s_queue (self, (const uint8_t *) iov[i].iov_base + sent,
                     len - sent))
            return -1;
        sent = 0;
    }
    return 0;
}

/*  The caller's handler, and the connection for answering PINGs.          */
typedef struct {
    lg_zmtp_conn_t *conn;
    const lg_zmtp_handler_t *handler;
    void *arg;
} s_reading_t;

static int
s_reading_message (void *arg, const lg_zmtp_frame_t *frames, size_t count)
{
    s_reading_t *reading = arg;
    return reading->handler->on_message (reading->arg, frames, count);
}

/*  PONG = name, context: a command frame of its own.                      */
static int
s_reading_ping (void *arg, const uint8_t *context, size_t size)
{
    s_reading_t *reading = arg;
    if (reading->handler->on_ping)
        return reading->handler->on_ping (reading->arg, context, size);
    uint8_t pong[2 + 5 + 16];
    if (size > 16)
        size = 16;   /* the RFC bounds the context at 16 bytes */
    pong[0] = S_FLAG_COMMAND;
    pong[1] = (uint8_t) (5 + size);
    pong[2] = 4;
    memcpy (pong + 3, "PONG", 4);
    memcpy (pong + 7, context, size);
    lg_zmtp_conn_t *conn = reading->conn;
    if (conn->out_len == 0 && !conn->connecting
        && conn->decoder.phase == LG_ZMTP_OPEN) {
        ssize_t n = send (conn->fd, pong, 7 + size, MSG_NOSIGNAL);
        if (n == (ssize_t) (7 + size))
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK
            && errno != EINTR)
            return 0;   /* the next read or send reports it */
        return s_queue (conn, pong + (n > 0 ? n : 0),
                        7 + size - (size_t) (n > 0 ? n : 0)) ? 1 : 0;
    }
    return s_queue (conn, pong, 7 + size) ? 1 : 0;
}

int
lg_zmtp_conn_on_readable (lg_zmtp_conn_t *self, uint8_t *scratch,
                          size_t scratch_size,
                          const lg_zmtp_handler_t *user_handler,
                          void *user_arg)
{
    s_reading_t reading = { self, user_handler, user_arg };
    const lg_zmtp_handler_t handler_storage = { s_reading_message,
                                                s_reading_ping };
    const lg_zmtp_handler_t *handler = &handler_storage;
    void *arg = &reading;
    size_t limit = LG_ZMTP_QUEUE_MAX + self->decoder.max_frame;
    while (self->fd >= 0) {
        uint8_t *into;
        size_t room;
        if (self->in_len == 0) {
            into = scratch;
            room = scratch_size;
        }
        else {
            if (s_reserve (&self->in, &self->in_cap, self->in_len,
                           S_READ_CHUNK, limit)) {
                snprintf (self->error, sizeof self->error,
                          "out of memory reading a message");
                return -1;
            }
            into = self->in + self->in_len;
            room = self->in_cap - self->in_len;
        }
        ssize_t n = recv (self->fd, into, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return s_conn_fail (self, "recv", errno);
        }
        if (n == 0) {
            snprintf (self->error, sizeof self->error,
                      "the controller closed the connection");
            return -1;
        }
        const uint8_t *data = into == scratch ? scratch : self->in;
        size_t size = into == scratch ? (size_t) n
                                      : self->in_len + (size_t) n;
        bool was_open = self->decoder.phase == LG_ZMTP_OPEN;
        ssize_t used = lg_zmtp_decode (&self->decoder, data, size, handler,
                                       arg, self->error, sizeof self->error);
        if (used < 0)
            return -1;
        if (self->fd < 0)
            return 0;   /* a handler closed it */
        if (!was_open && self->decoder.phase == LG_ZMTP_OPEN
            && !self->connecting && s_flush (self))
            return -1;   /* the messages held for the handshake go now */
        size_t rest = size - (size_t) used;
        if (into == scratch) {
            self->in_len = 0;
            if (rest && s_reserve (&self->in, &self->in_cap, 0, rest, limit)) {
                snprintf (self->error, sizeof self->error,
                          "out of memory reading a message");
                return -1;
            }
            if (rest)
                memcpy (self->in, scratch + used, rest);
        }
        else if (rest && used)
            memmove (self->in, self->in + used, rest);
        self->in_len = rest;
        if ((size_t) n < room)
            return 0;   /* the kernel had no more: epoll says when */
    }
    return 0;
}

bool
lg_zmtp_conn_wants_write (const lg_zmtp_conn_t *self)
{
    return self->fd >= 0 && (self->connecting || s_sendable (self) > 0);
}
