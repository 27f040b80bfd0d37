/*  test_zmtp.c: the load generator's ZMTP 3.0 client codec
    (src/loadgen/zmtp.h), driven with byte buffers.

    What a server sends is written out here byte by byte, as libzmq 4.3
    writes it for a ROUTER (greeting 3.1 as server, with the ZMTP 1.0
    length in the signature's padding, then READY with Socket-Type and an
    empty Identity), and not with the codec's own encoder, so that a
    mistake in one cannot hide the same mistake in the other.             */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "zmtp.h"

#define S_MORE 0x01
#define S_LONG 0x02
#define S_COMMAND 0x04

/* ---- bytes the peer sends ------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} s_bytes_t;

static void
s_put (s_bytes_t *self, const void *data, size_t size)
{
    if (self->len + size > self->cap) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap < self->len + size)
            cap *= 2;
        uint8_t *grown = realloc (self->data, cap);
        assert_non_null (grown);
        self->data = grown;
        self->cap = cap;
    }
    if (size)
        memcpy (self->data + self->len, data, size);
    self->len += size;
}

static void
s_put_byte (s_bytes_t *self, uint8_t byte)
{
    s_put (self, &byte, 1);
}

static void
s_put_u32 (s_bytes_t *self, uint32_t value)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        s_put_byte (self, (uint8_t) (value >> shift));
}

static void
s_bytes_free (s_bytes_t *self)
{
    free (self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}

/*  A greeting. libzmq writes the ZMTP 1.0 identity length (1) into the
    padding of the signature; a ZMTP 3 reader must not care.              */
static void
s_greeting (s_bytes_t *self, uint8_t first, uint8_t major, uint8_t minor,
            const char *mechanism, uint8_t as_server)
{
    uint8_t greeting[64] = { 0 };
    greeting[0] = first;
    greeting[8] = 0x01;
    greeting[9] = 0x7F;
    greeting[10] = major;
    greeting[11] = minor;
    memcpy (greeting + 12, mechanism, strlen (mechanism));
    greeting[32] = as_server;
    s_put (self, greeting, sizeof greeting);
}

/*  A frame with `flags`, in the short form up to 255 bytes.              */
static void
s_frame (s_bytes_t *self, uint8_t flags, const void *body, size_t size)
{
    if (size > 255) {
        s_put_byte (self, flags | S_LONG);
        for (int shift = 56; shift >= 0; shift -= 8)
            s_put_byte (self, (uint8_t) ((uint64_t) size >> shift));
    }
    else {
        s_put_byte (self, flags);
        s_put_byte (self, (uint8_t) size);
    }
    s_put (self, body, size);
}

/*  A command frame: name-length, name, then `data`.                      */
static void
s_command (s_bytes_t *self, const char *name, const void *data, size_t size)
{
    s_bytes_t body = { 0 };
    s_put_byte (&body, (uint8_t) strlen (name));
    s_put (&body, name, strlen (name));
    s_put (&body, data, size);
    s_frame (self, S_COMMAND, body.data, body.len);
    s_bytes_free (&body);
}

/*  A READY property: name, then a value that says it has `claimed` bytes
    and has `value`'s.                                                    */
static void
s_property (s_bytes_t *self, const char *name, uint32_t claimed,
            const char *value)
{
    s_put_byte (self, (uint8_t) strlen (name));
    s_put (self, name, strlen (name));
    s_put_u32 (self, claimed);
    s_put (self, value, strlen (value));
}

/*  READY as libzmq's ROUTER sends it.                                    */
static void
s_ready (s_bytes_t *self, const char *socket_type)
{
    s_bytes_t data = { 0 };
    s_property (&data, "Socket-Type", (uint32_t) strlen (socket_type),
                socket_type);
    s_property (&data, "Identity", 0, "");
    s_command (self, "READY", data.data, data.len);
    s_bytes_free (&data);
}

/*  PING: TTL (2 bytes, tenths of a second), then the context.            */
static void
s_ping (s_bytes_t *self, const char *context)
{
    s_bytes_t data = { 0 };
    s_put_byte (&data, 0x00);
    s_put_byte (&data, 0x64);
    s_put (&data, context, strlen (context));
    s_command (self, "PING", data.data, data.len);
    s_bytes_free (&data);
}

/*  The whole handshake of a libzmq ROUTER.                               */
static void
s_server_handshake (s_bytes_t *self)
{
    s_greeting (self, 0xFF, 3, 1, "NULL", 1);
    s_ready (self, "ROUTER");
}

/* ---- messages ------------------------------------------------------- */

typedef struct {
    size_t count;
    lg_zmtp_frame_t frames[8];
} s_message_t;

#define S_TEXT(text) { (const uint8_t *) (text), sizeof (text) - 1 }

static const s_message_t s_task = {
    2, { S_TEXT ("TASK"), S_TEXT ("{\"job\": \"j1\", \"task\": 3}") } };
static const s_message_t s_cancel = {
    2, { S_TEXT ("CANCEL"), S_TEXT ("{\"job\": \"j1\"}") } };

static void
s_message (s_bytes_t *self, const s_message_t *message)
{
    for (size_t i = 0; i < message->count; i++)
        s_frame (self, i + 1 < message->count ? S_MORE : 0,
                 message->frames[i].data, message->frames[i].size);
}

/* ---- what the decoder hands over ------------------------------------ */

#define S_GOT_MAX 16

typedef struct {
    size_t count;                                 /* as the decoder said */
    lg_zmtp_frame_t frames[LG_ZMTP_FRAMES_MAX];   /* copies              */
} s_got_t;

typedef struct {
    s_got_t messages[S_GOT_MAX];
    size_t message_count;
    uint8_t pings[S_GOT_MAX][32];
    size_t ping_sizes[S_GOT_MAX];
    size_t ping_count;
    size_t stop_at_message;   /* return nonzero from this one (1-based)  */
    size_t stop_at_ping;
} s_recorder_t;

static int
s_on_message (void *arg, const lg_zmtp_frame_t *frames, size_t count)
{
    s_recorder_t *self = arg;
    if (self->message_count == S_GOT_MAX)
        fail_msg ("more than %d messages handed over", S_GOT_MAX);
    s_got_t *got = &self->messages[self->message_count++];
    got->count = count;
    for (size_t i = 0; i < count && i < LG_ZMTP_FRAMES_MAX; i++) {
        uint8_t *copy = malloc (frames[i].size + 1);
        assert_non_null (copy);
        memcpy (copy, frames[i].data, frames[i].size);
        got->frames[i] = (lg_zmtp_frame_t) { copy, frames[i].size };
    }
    return self->message_count == self->stop_at_message;
}

static int
s_on_ping (void *arg, const uint8_t *context, size_t size)
{
    s_recorder_t *self = arg;
    if (self->ping_count == S_GOT_MAX)
        fail_msg ("more than %d pings handed over", S_GOT_MAX);
    if (size > sizeof self->pings[0])
        fail_msg ("a ping context of %zu bytes", size);
    memcpy (self->pings[self->ping_count], context, size);
    self->ping_sizes[self->ping_count++] = size;
    return self->ping_count == self->stop_at_ping;
}

static const lg_zmtp_handler_t s_handler = { s_on_message, s_on_ping };

static void
s_recorder_clear (s_recorder_t *self)
{
    for (size_t m = 0; m < self->message_count; m++)
        for (size_t i = 0; i < self->messages[m].count
                           && i < LG_ZMTP_FRAMES_MAX; i++)
            free ((void *) self->messages[m].frames[i].data);
    memset (self, 0, sizeof *self);
}

/*  Asserts that exactly `expected` were handed over, in order.
    `where` says which case on failure.                                   */
static void
s_assert_messages (const char *where, const s_recorder_t *self,
                   const s_message_t *const *expected, size_t count)
{
    if (self->message_count != count)
        fail_msg ("%s: %zu messages handed over, expected %zu", where,
                  self->message_count, count);
    for (size_t m = 0; m < count; m++) {
        const s_got_t *got = &self->messages[m];
        if (got->count != expected[m]->count)
            fail_msg ("%s: message %zu has %zu frames, expected %zu", where,
                      m, got->count, expected[m]->count);
        for (size_t i = 0; i < got->count && i < LG_ZMTP_FRAMES_MAX; i++) {
            const lg_zmtp_frame_t *want = &expected[m]->frames[i];
            if (got->frames[i].size != want->size
                || memcmp (got->frames[i].data, want->data, want->size))
                fail_msg ("%s: message %zu frame %zu is '%.*s' (%zu bytes),"
                          " expected '%.*s' (%zu bytes)", where, m, i,
                          (int) got->frames[i].size,
                          (const char *) got->frames[i].data,
                          got->frames[i].size, (int) want->size,
                          (const char *) want->data, want->size);
        }
    }
}

static void
s_assert_pings (const char *where, const s_recorder_t *self,
                const char *const *expected, size_t count)
{
    if (self->ping_count != count)
        fail_msg ("%s: %zu pings handed over, expected %zu", where,
                  self->ping_count, count);
    for (size_t p = 0; p < count; p++)
        if (self->ping_sizes[p] != strlen (expected[p])
            || memcmp (self->pings[p], expected[p], self->ping_sizes[p]))
            fail_msg ("%s: ping %zu has context '%.*s', expected '%s'",
                      where, p, (int) self->ping_sizes[p],
                      (const char *) self->pings[p], expected[p]);
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

/*  Decodes all of `bytes` with a new decoder; -1 must come back, with
    `part` in the message. Returns nothing handed over.                   */
/*  Decodes `bytes`, all of which must be taken, into `recorder`; the
    handshake must be over.                                               */
static void
s_decode_all (const s_bytes_t *bytes, s_recorder_t *recorder)
{
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    char err[128] = "";
    ssize_t used = lg_zmtp_decode (&decoder, bytes->data, bytes->len,
                                   &s_handler, recorder, err, sizeof err);
    if (used < 0)
        fail_msg ("refused: %s", err);
    assert_int_equal (used, bytes->len);
    assert_int_equal (decoder.phase, LG_ZMTP_OPEN);
}

static void
s_assert_refused (const s_bytes_t *bytes, uint64_t max_frame,
                  const char *part)
{
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, max_frame);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    ssize_t used = lg_zmtp_decode (&decoder, bytes->data, bytes->len,
                                   &s_handler, &recorder, err, sizeof err);
    if (used != -1)
        fail_msg ("decoding gave %zd, expected -1 (err '%s')", used, err);
    s_assert_contains (err, part);
    assert_int_equal (recorder.message_count, 0);
    assert_int_equal (recorder.ping_count, 0);
}

/* ---- what we send --------------------------------------------------- */

static void
test_handshake_is_a_null_client_greeting_then_ready_dealer (void **state)
{
    uint8_t out[LG_ZMTP_HANDSHAKE_MAX];
    memset (out, 0xAA, sizeof out);
    size_t len = lg_zmtp_handshake (out, "DEALER");
    /* 64 of greeting, then flags, size and a body of 1 + 5 + 1 + 11 + 4
       + 6 bytes */
    assert_int_equal (len, 64 + 2 + 28);

    assert_int_equal (out[0], 0xFF);
    for (size_t i = 1; i <= 8; i++)
        if (out[i] != 0)
            fail_msg ("signature padding byte %zu is 0x%02x", i, out[i]);
    assert_int_equal (out[9], 0x7F);
    assert_int_equal (out[10], 3);
    assert_int_equal (out[11], 0);
    assert_memory_equal (out + 12, "NULL", 4);
    for (size_t i = 16; i < 32; i++)
        if (out[i] != 0)
            fail_msg ("mechanism padding byte %zu is 0x%02x", i, out[i]);
    assert_int_equal (out[32], 0);          /* as-server: we are the client */
    for (size_t i = 33; i < 64; i++)
        if (out[i] != 0)
            fail_msg ("filler byte %zu is 0x%02x", i, out[i]);

    static const uint8_t ready[] = {
        0x04, 28,
        5, 'R', 'E', 'A', 'D', 'Y',
        11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
        0, 0, 0, 6, 'D', 'E', 'A', 'L', 'E', 'R' };
    assert_int_equal (len - 64, sizeof ready);
    assert_memory_equal (out + 64, ready, sizeof ready);
    for (size_t i = len; i < sizeof out; i++)
        if (out[i] != 0xAA)
            fail_msg ("byte %zu past the handshake was written", i);
}

/*  Checks one header against its bytes, and that nothing past it moved. */
static void
s_assert_header (bool more, uint64_t size, const uint8_t *expected,
                 size_t expected_len)
{
    uint8_t out[LG_ZMTP_HEADER_MAX + 4];
    memset (out, 0xAA, sizeof out);
    size_t len = lg_zmtp_frame_header (out, more, size);
    if (len != expected_len || memcmp (out, expected, expected_len)) {
        print_error ("header of %llu bytes (more %d):\n  got     ",
                     (unsigned long long) size, more);
        for (size_t i = 0; i < len && i < sizeof out; i++)
            print_error (" %02x", out[i]);
        print_error ("\n  expected");
        for (size_t i = 0; i < expected_len; i++)
            print_error (" %02x", expected[i]);
        print_error ("\n");
        fail_msg ("wrong header for %llu bytes", (unsigned long long) size);
    }
    for (size_t i = len; i < sizeof out; i++)
        if (out[i] != 0xAA)
            fail_msg ("byte %zu past the header was written", i);
}

static void
test_frame_header_is_short_up_to_255_bytes (void **state)
{
    s_assert_header (false, 0, (const uint8_t[]) { 0x00, 0 }, 2);
    s_assert_header (false, 1, (const uint8_t[]) { 0x00, 1 }, 2);
    s_assert_header (true, 7, (const uint8_t[]) { 0x01, 7 }, 2);
    s_assert_header (false, 255, (const uint8_t[]) { 0x00, 0xFF }, 2);
    s_assert_header (true, 255, (const uint8_t[]) { 0x01, 0xFF }, 2);
}

static void
test_frame_header_is_long_from_256_bytes (void **state)
{
    s_assert_header (false, 256,
                     (const uint8_t[]) { 0x02, 0, 0, 0, 0, 0, 0, 1, 0 }, 9);
    s_assert_header (true, 256,
                     (const uint8_t[]) { 0x03, 0, 0, 0, 0, 0, 0, 1, 0 }, 9);
    s_assert_header (false, 70000,
                     (const uint8_t[]) { 0x02, 0, 0, 0, 0, 0, 1, 0x11,
                                         0x70 }, 9);
}

static void
test_frame_header_is_big_endian_above_4_gib (void **state)
{
    s_assert_header (false, ((uint64_t) 1 << 32) + 5,
                     (const uint8_t[]) { 0x02, 0, 0, 0, 1, 0, 0, 0, 5 }, 9);
    s_assert_header (true, 0x0102030405060708ULL,
                     (const uint8_t[]) { 0x03, 1, 2, 3, 4, 5, 6, 7, 8 }, 9);
}

/* ---- what we receive ------------------------------------------------ */

static void
test_decoder_starts_waiting_for_the_greeting (void **state)
{
    lg_zmtp_decoder_t decoder;
    memset (&decoder, 0x5A, sizeof decoder);
    lg_zmtp_decoder_init (&decoder, 12345);
    assert_int_equal (decoder.phase, LG_ZMTP_WANT_GREETING);
    assert_int_equal (decoder.max_frame, 12345);
}

static void
test_decode_hands_over_whole_messages_after_the_handshake (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &s_task);
    s_message (&bytes, &s_cancel);

    s_recorder_t recorder = { 0 };
    s_decode_all (&bytes, &recorder);
    const s_message_t *expected[] = { &s_task, &s_cancel };
    s_assert_messages ("whole", &recorder, expected, 2);
    assert_int_equal (recorder.ping_count, 0);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_takes_the_greeting_alone_and_then_waits_for_ready (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    /* Less than a greeting: nothing is taken. */
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, 63, &s_handler,
                                      &recorder, err, sizeof err), 0);
    assert_int_equal (decoder.phase, LG_ZMTP_WANT_GREETING);
    /* The greeting and part of READY: the greeting is taken. */
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, 70, &s_handler,
                                      &recorder, err, sizeof err), 64);
    assert_int_equal (decoder.phase, LG_ZMTP_WANT_READY);
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data + 64,
                                      bytes.len - 64, &s_handler, &recorder,
                                      err, sizeof err), bytes.len - 64);
    assert_int_equal (decoder.phase, LG_ZMTP_OPEN);
    assert_int_equal (recorder.message_count, 0);
    s_bytes_free (&bytes);
}

/*  The stream the split tests cut: the handshake, a PING between two
    messages, and a message whose frame has a long header.                */
static char s_long_text[300];
static const s_message_t s_long = {
    1, { { (const uint8_t *) s_long_text, sizeof s_long_text } } };

static void
s_split_stream (s_bytes_t *bytes)
{
    for (size_t i = 0; i < sizeof s_long_text; i++)
        s_long_text[i] = (char) ('a' + i % 26);
    s_server_handshake (bytes);
    s_message (bytes, &s_task);
    s_ping (bytes, "p1");
    s_message (bytes, &s_cancel);
    s_message (bytes, &s_long);
}

static const s_message_t *const s_split_expected[] = { &s_task, &s_cancel,
                                                       &s_long };
static const char *const s_split_pings[] = { "p1" };

static void
test_decode_gives_the_same_messages_for_every_split (void **state)
{
    s_bytes_t bytes = { 0 };
    s_split_stream (&bytes);
    for (size_t cut = 0; cut <= bytes.len; cut++) {
        char where[64];
        snprintf (where, sizeof where, "split at %zu of %zu", cut, bytes.len);
        lg_zmtp_decoder_t decoder;
        lg_zmtp_decoder_init (&decoder, 1 << 20);
        s_recorder_t recorder = { 0 };
        char err[128] = "";
        ssize_t first = lg_zmtp_decode (&decoder, bytes.data, cut, &s_handler,
                                        &recorder, err, sizeof err);
        if (first < 0 || (size_t) first > cut)
            fail_msg ("%s: the first part gave %zd (%s)", where, first, err);
        /* What was not taken, then the rest. */
        ssize_t second = lg_zmtp_decode (&decoder, bytes.data + first,
                                         bytes.len - (size_t) first,
                                         &s_handler, &recorder, err,
                                         sizeof err);
        if (second != (ssize_t) (bytes.len - (size_t) first))
            fail_msg ("%s: the second part gave %zd of %zu (%s)", where,
                      second, bytes.len - (size_t) first, err);
        s_assert_messages (where, &recorder, s_split_expected, 3);
        s_assert_pings (where, &recorder, s_split_pings, 1);
        s_recorder_clear (&recorder);
    }
    s_bytes_free (&bytes);
}

static void
test_decode_gives_the_same_messages_one_byte_at_a_time (void **state)
{
    s_bytes_t bytes = { 0 };
    s_split_stream (&bytes);
    /* Where each message ends: it must come out with that byte, no
       sooner and no later. */
    s_bytes_t probe = { 0 };
    size_t ends[3];
    s_server_handshake (&probe);
    s_message (&probe, &s_task);
    ends[0] = probe.len;
    s_ping (&probe, "p1");
    s_message (&probe, &s_cancel);
    ends[1] = probe.len;
    s_message (&probe, &s_long);
    ends[2] = probe.len;
    assert_int_equal (probe.len, bytes.len);
    s_bytes_free (&probe);

    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    s_bytes_t pending = { 0 };
    for (size_t i = 0; i < bytes.len; i++) {
        s_put_byte (&pending, bytes.data[i]);
        ssize_t used = lg_zmtp_decode (&decoder, pending.data, pending.len,
                                       &s_handler, &recorder, err,
                                       sizeof err);
        if (used < 0 || (size_t) used > pending.len)
            fail_msg ("byte %zu: decoding gave %zd (%s)", i, used, err);
        memmove (pending.data, pending.data + used,
                 pending.len - (size_t) used);
        pending.len -= (size_t) used;
        size_t whole = 0;
        while (whole < 3 && ends[whole] <= i + 1)
            whole++;
        if (recorder.message_count != whole)
            fail_msg ("after byte %zu: %zu messages, expected %zu", i,
                      recorder.message_count, whole);
    }
    assert_int_equal (pending.len, 0);
    s_assert_messages ("byte by byte", &recorder, s_split_expected, 3);
    s_assert_pings ("byte by byte", &recorder, s_split_pings, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&pending);
    s_bytes_free (&bytes);
}

static void
test_decode_leaves_an_incomplete_message_unconsumed (void **state)
{
    static const s_message_t third = {
        3, { S_TEXT ("RESULT"), { (const uint8_t *) s_long_text, 300 },
             S_TEXT ("tail") } };
    for (size_t i = 0; i < sizeof s_long_text; i++)
        s_long_text[i] = (char) ('a' + i % 26);
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &s_task);
    s_message (&bytes, &s_cancel);
    size_t whole = bytes.len;
    s_message (&bytes, &third);
    const s_message_t *expected[] = { &s_task, &s_cancel };
    /* Every cut inside the third message: a flags byte alone, part of a
       long size, a frame with MORE and nothing after it, half a body. */
    for (size_t cut = whole; cut < bytes.len; cut++) {
        char where[64];
        snprintf (where, sizeof where, "cut at %zu", cut);
        lg_zmtp_decoder_t decoder;
        lg_zmtp_decoder_init (&decoder, 1 << 20);
        s_recorder_t recorder = { 0 };
        char err[128] = "";
        ssize_t used = lg_zmtp_decode (&decoder, bytes.data, cut, &s_handler,
                                       &recorder, err, sizeof err);
        if (used != (ssize_t) whole)
            fail_msg ("%s: decoding gave %zd, expected %zu (%s)", where,
                      used, whole, err);
        s_assert_messages (where, &recorder, expected, 2);
        s_recorder_clear (&recorder);
    }
    s_bytes_free (&bytes);
}

static void
test_decode_counts_three_frames_and_one_frame (void **state)
{
    static const s_message_t three = {
        3, { S_TEXT ("a"), S_TEXT ("bb"), S_TEXT ("ccc") } };
    static const s_message_t one = { 1, { S_TEXT ("only") } };
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &three);
    s_message (&bytes, &one);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      bytes.len);
    const s_message_t *expected[] = { &three, &one };
    s_assert_messages ("3 and 1", &recorder, expected, 2);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_counts_frames_beyond_the_maximum (void **state)
{
    static const s_message_t six = {
        6, { S_TEXT ("f0"), S_TEXT ("f1"), S_TEXT ("f2"), S_TEXT ("f3"),
             S_TEXT ("f4"), S_TEXT ("f5") } };
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &six);
    s_message (&bytes, &s_task);   /* the next one starts afresh */
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      bytes.len);
    assert_true (LG_ZMTP_FRAMES_MAX < 6);
    /* The first LG_ZMTP_FRAMES_MAX frames are compared, and the count. */
    const s_message_t *expected[] = { &six, &s_task };
    s_assert_messages ("6 frames", &recorder, expected, 2);
    assert_int_equal (recorder.messages[0].count, 6);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_takes_a_long_frame (void **state)
{
    size_t size = 70000;
    uint8_t *big = malloc (size);
    assert_non_null (big);
    for (size_t i = 0; i < size; i++)
        big[i] = (uint8_t) (i * 7 + (i >> 8));
    s_message_t message = { 2, { S_TEXT ("BIG"), { big, size } } };
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &message);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    ssize_t used = lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                   &s_handler, &recorder, err, sizeof err);
    if (used != (ssize_t) bytes.len)
        fail_msg ("decoding gave %zd of %zu (%s)", used, bytes.len, err);
    const s_message_t *expected[] = { &message };
    s_assert_messages ("long frame", &recorder, expected, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
    free (big);
}

static void
test_decode_hands_a_ping_context_to_on_ping (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_ping (&bytes, "ctx-42");
    s_ping (&bytes, "");
    s_message (&bytes, &s_task);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      bytes.len);
    const char *pings[] = { "ctx-42", "" };
    s_assert_pings ("ping", &recorder, pings, 2);
    const s_message_t *expected[] = { &s_task };
    s_assert_messages ("ping", &recorder, expected, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_skips_a_ping_without_on_ping (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_ping (&bytes, "ctx");
    s_message (&bytes, &s_task);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    const lg_zmtp_handler_t handler = { s_on_message, NULL };
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &handler, &recorder, err, sizeof err),
                      bytes.len);
    const s_message_t *expected[] = { &s_task };
    s_assert_messages ("no on_ping", &recorder, expected, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_ignores_pong_and_unknown_commands (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_command (&bytes, "PONG", "ctx", 3);
    s_command (&bytes, "SUBSCRIBE", "topic", 5);
    s_command (&bytes, "PINGX", "\x00\x64", 2);   /* not PING */
    s_message (&bytes, &s_task);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    ssize_t used = lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                   &s_handler, &recorder, err, sizeof err);
    if (used != (ssize_t) bytes.len)
        fail_msg ("decoding gave %zd of %zu (%s)", used, bytes.len, err);
    assert_int_equal (recorder.ping_count, 0);
    const s_message_t *expected[] = { &s_task };
    s_assert_messages ("pong", &recorder, expected, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_stops_after_the_message_whose_handler_asks (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_message (&bytes, &s_task);
    size_t end_of_first = bytes.len;
    s_message (&bytes, &s_cancel);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    recorder.stop_at_message = 1;
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      end_of_first);
    const s_message_t *first[] = { &s_task };
    s_assert_messages ("stopped", &recorder, first, 1);
    /* The rest is still there for the next call. */
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data + end_of_first,
                                      bytes.len - end_of_first, &s_handler,
                                      &recorder, err, sizeof err),
                      bytes.len - end_of_first);
    const s_message_t *both[] = { &s_task, &s_cancel };
    s_assert_messages ("resumed", &recorder, both, 2);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_stops_after_the_ping_whose_handler_asks (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_ping (&bytes, "c");
    size_t end_of_ping = bytes.len;
    s_message (&bytes, &s_task);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 1 << 20);
    s_recorder_t recorder = { 0 };
    recorder.stop_at_ping = 1;
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      end_of_ping);
    assert_int_equal (recorder.ping_count, 1);
    assert_int_equal (recorder.message_count, 0);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_takes_a_frame_of_max_frame_bytes (void **state)
{
    static const s_message_t sixteen = { 1, { S_TEXT ("0123456789abcdef") } };
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "READY", "", 0);   /* fits in 16 bytes too */
    s_message (&bytes, &sixteen);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, 16);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    ssize_t used = lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                   &s_handler, &recorder, err, sizeof err);
    if (used != (ssize_t) bytes.len)
        fail_msg ("decoding gave %zd of %zu (%s)", used, bytes.len, err);
    const s_message_t *expected[] = { &sixteen };
    s_assert_messages ("16 of 16", &recorder, expected, 1);
    s_recorder_clear (&recorder);
    s_bytes_free (&bytes);
}

static void
test_decode_waits_for_a_huge_frame_without_overflowing (void **state)
{
    /* A long header announcing 2^64 - 1 bytes, with no limit set: the
       size arithmetic must not wrap into "complete". */
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    size_t handshake = bytes.len;
    static const uint8_t header[] = { 0x02, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 'x', 'y' };
    s_put (&bytes, header, sizeof header);
    lg_zmtp_decoder_t decoder;
    lg_zmtp_decoder_init (&decoder, UINT64_MAX);
    s_recorder_t recorder = { 0 };
    char err[128] = "";
    assert_int_equal (lg_zmtp_decode (&decoder, bytes.data, bytes.len,
                                      &s_handler, &recorder, err, sizeof err),
                      handshake);
    assert_int_equal (recorder.message_count, 0);
    s_bytes_free (&bytes);
}

/* ---- refusals ------------------------------------------------------- */

static void
test_decode_refuses_a_bad_signature (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0x00, 3, 1, "NULL", 1);
    s_ready (&bytes, "ROUTER");
    s_assert_refused (&bytes, 1 << 20, "does not speak ZMTP");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_version_2 (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 2, 0, "NULL", 1);
    s_assert_refused (&bytes, 1 << 20, "ZMTP 2");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_the_curve_mechanism (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "CURVE", 1);
    s_assert_refused (&bytes, 1 << 20, "CURVE mechanism");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_the_plain_mechanism_by_name (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "PLAIN", 1);
    s_assert_refused (&bytes, 1 << 20, "PLAIN");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_mechanism_that_only_starts_with_null (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULLX", 1);
    s_assert_refused (&bytes, 1 << 20, "NULLX");
    s_bytes_free (&bytes);
}

static void
test_decode_reports_the_reason_of_an_error_in_the_handshake (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    static const char reason[] = "\x13Invalid socket type";
    s_command (&bytes, "ERROR", reason, sizeof reason - 1);
    s_assert_refused (&bytes, 1 << 20, "Invalid socket type");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_an_error_whose_reason_overruns_it (void **state)
{
    /* The reason says 50 bytes and has 3: refused, without reading past
       the frame (valgrind watches this one). */
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "ERROR", "\x32" "abc", 4);
    s_assert_refused (&bytes, 1 << 20, "refused");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_another_command_in_the_handshake (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_ping (&bytes, "c");
    s_ready (&bytes, "ROUTER");
    s_assert_refused (&bytes, 1 << 20, "READY");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_message_before_ready (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_message (&bytes, &s_task);
    s_ready (&bytes, "ROUTER");
    s_assert_refused (&bytes, 1 << 20, "before the handshake ended");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_frame_over_max_frame (void **state)
{
    static const s_message_t seventeen = {
        1, { S_TEXT ("0123456789abcdefg") } };
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "READY", "", 0);
    s_message (&bytes, &seventeen);
    s_assert_refused (&bytes, 16, "17 bytes");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_frame_over_max_frame_from_its_header (void **state)
{
    /* Only the header of a 1 MiB frame is in: no need to wait for it. */
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    static const uint8_t header[] = { 0x02, 0, 0, 0, 0, 0, 0x10, 0, 0 };
    s_put (&bytes, header, sizeof header);
    s_assert_refused (&bytes, 1 << 16, "1048576");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_unknown_flag_bits (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_frame (&bytes, 0x08, "x", 1);
    s_assert_refused (&bytes, 1 << 20, "0x08");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_command_inside_a_message (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    s_frame (&bytes, S_MORE, "TASK", 4);
    s_ping (&bytes, "c");
    s_frame (&bytes, 0, "{}", 2);
    s_assert_refused (&bytes, 1 << 20, "inside a message");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_peer_that_is_not_a_router (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_ready (&bytes, "DEALER");
    s_assert_refused (&bytes, 1 << 20, "DEALER socket");
    s_bytes_free (&bytes);
}

static void
test_decode_takes_the_socket_type_in_any_case (void **state)
{
    /* Property names are case-insensitive (ZMTP 3). */
    s_bytes_t data = { 0 };
    s_property (&data, "socket-type", 6, "ROUTER");
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "READY", data.data, data.len);
    s_message (&bytes, &s_task);
    s_recorder_t recorder = { 0 };
    s_decode_all (&bytes, &recorder);
    const s_message_t *expected[] = { &s_task };
    s_assert_messages ("after a lower-case Socket-Type", &recorder, expected,
                       1);
    s_recorder_clear (&recorder);
    s_bytes_free (&data);
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_ready_whose_property_overruns_it (void **state)
{
    /* The value says 50 bytes and has 6: refused without reading past the
       frame (valgrind watches this one). */
    s_bytes_t data = { 0 };
    s_property (&data, "Socket-Type", 50, "ROUTER");
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "READY", data.data, data.len);
    s_assert_refused (&bytes, 1 << 20, "malformed READY");
    s_bytes_free (&data);
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_ready_cut_in_a_property_name (void **state)
{
    s_bytes_t bytes = { 0 };
    s_greeting (&bytes, 0xFF, 3, 1, "NULL", 1);
    s_command (&bytes, "READY", "\x0bSock", 5);
    s_assert_refused (&bytes, 1 << 20, "malformed READY");
    s_bytes_free (&bytes);
}

static void
test_decode_refuses_a_command_frame_with_more (void **state)
{
    s_bytes_t bytes = { 0 };
    s_server_handshake (&bytes);
    static const uint8_t ping[] = { 4, 'P', 'I', 'N', 'G', 0x00, 0x64 };
    s_frame (&bytes, S_COMMAND | S_MORE, ping, sizeof ping);
    s_message (&bytes, &s_task);
    s_assert_refused (&bytes, 1 << 20, "MORE");
    s_bytes_free (&bytes);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (
            test_handshake_is_a_null_client_greeting_then_ready_dealer),
        cmocka_unit_test (test_frame_header_is_short_up_to_255_bytes),
        cmocka_unit_test (test_frame_header_is_long_from_256_bytes),
        cmocka_unit_test (test_frame_header_is_big_endian_above_4_gib),
        cmocka_unit_test (test_decoder_starts_waiting_for_the_greeting),
        cmocka_unit_test (
            test_decode_hands_over_whole_messages_after_the_handshake),
        cmocka_unit_test (
            test_decode_takes_the_greeting_alone_and_then_waits_for_ready),
        cmocka_unit_test (test_decode_gives_the_same_messages_for_every_split),
        cmocka_unit_test (
            test_decode_gives_the_same_messages_one_byte_at_a_time),
        cmocka_unit_test (test_decode_leaves_an_incomplete_message_unconsumed),
        cmocka_unit_test (test_decode_counts_three_frames_and_one_frame),
        cmocka_unit_test (test_decode_counts_frames_beyond_the_maximum),
        cmocka_unit_test (test_decode_takes_a_long_frame),
        cmocka_unit_test (test_decode_hands_a_ping_context_to_on_ping),
        cmocka_unit_test (test_decode_skips_a_ping_without_on_ping),
        cmocka_unit_test (test_decode_ignores_pong_and_unknown_commands),
        cmocka_unit_test (
            test_decode_stops_after_the_message_whose_handler_asks),
        cmocka_unit_test (test_decode_stops_after_the_ping_whose_handler_asks),
        cmocka_unit_test (test_decode_takes_a_frame_of_max_frame_bytes),
        cmocka_unit_test (
            test_decode_waits_for_a_huge_frame_without_overflowing),
        cmocka_unit_test (test_decode_refuses_a_bad_signature),
        cmocka_unit_test (test_decode_refuses_version_2),
        cmocka_unit_test (test_decode_refuses_the_curve_mechanism),
        cmocka_unit_test (test_decode_refuses_the_plain_mechanism_by_name),
        cmocka_unit_test (
            test_decode_refuses_a_mechanism_that_only_starts_with_null),
        cmocka_unit_test (
            test_decode_reports_the_reason_of_an_error_in_the_handshake),
        cmocka_unit_test (
            test_decode_refuses_an_error_whose_reason_overruns_it),
        cmocka_unit_test (test_decode_refuses_another_command_in_the_handshake),
        cmocka_unit_test (test_decode_refuses_a_message_before_ready),
        cmocka_unit_test (test_decode_refuses_a_frame_over_max_frame),
        cmocka_unit_test (
            test_decode_refuses_a_frame_over_max_frame_from_its_header),
        cmocka_unit_test (test_decode_refuses_unknown_flag_bits),
        cmocka_unit_test (test_decode_refuses_a_command_inside_a_message),
        cmocka_unit_test (test_decode_refuses_a_peer_that_is_not_a_router),
        cmocka_unit_test (test_decode_takes_the_socket_type_in_any_case),
        cmocka_unit_test (
            test_decode_refuses_a_ready_whose_property_overruns_it),
        cmocka_unit_test (test_decode_refuses_a_ready_cut_in_a_property_name),
        cmocka_unit_test (test_decode_refuses_a_command_frame_with_more),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
