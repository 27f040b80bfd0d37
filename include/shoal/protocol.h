/*  protocol.h: the wire protocol between controller and workers.

    A message is two ZeroMQ frames, a command and a JSON object body
    (the ROUTER side sees the peer identity first). Each command and the
    fields of its body are declared once, in the table in protocol.c;
    encoding and decoding both check a body against it, so a message that
    does not match is never sent and never acted upon.

    | command   | direction | body                                        |
    |-----------|-----------|---------------------------------------------|
    | HELLO     | w -> c    | protocol, worker, host, slots, queue (tasks |
    |           |           | it takes beyond its slots, to start when one|
    |           |           | frees), running,                            |
    |           |           | tasks ([{job, task, attempt}] it holds),    |
    |           |           | instance (random id of this worker process) |
    | WELCOME   | c -> w    | controller (random id of this controller    |
    |           |           | run), heartbeat_ms                          |
    | HEARTBEAT | both      | draining (worker: finishing, send no more), |
    |           |           | heartbeat_ms (controller, optional: the     |
    |           |           | period to keep from now on)                 |
    | TASK      | c -> w    | job, task, attempt, kind, command, args,    |
    |           |           | inputs, params, timeout_ms                  |
    | RESULT    | w -> c    | job, task, attempt, status, exit_code,      |
    |           |           | signal, error, duration_ms, spawn           |
    | CANCEL    | c -> w    | job, task, attempt                          |
    | BYE       | w -> c    | {}                                          |
    | RECONNECT | c -> w    | {} (unknown worker: say HELLO again)        |

    A worker has `slots` + `queue` credits; each TASK spends one and each
    RESULT gives it back, so the controller never sends more than a worker
    can run or hold; the queued ones start the moment a slot frees, with no
    round trip to the controller in between.                               */
#ifndef SHOAL_PROTOCOL_H
#define SHOAL_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "shoal/error.h"

#define SHOAL_PROTOCOL_VERSION 1

/*  Largest message body accepted, in bytes (also ZMQ_MAXMSGSIZE).         */
#define SHOAL_MSG_MAX_SIZE (64 * 1024 * 1024)

/*  Heartbeat period; a peer silent for SHOAL_HEARTBEAT_LIVENESS periods is
    lost. Reconnection backs off from 1 s to 32 s.                         */
#define SHOAL_HEARTBEAT_MS 1000
#define SHOAL_HEARTBEAT_LIVENESS 3
#define SHOAL_RECONNECT_MIN_MS 1000
#define SHOAL_RECONNECT_MAX_MS 32000

/*  When a worker sends its HEARTBEAT, `period` being the period in force
    and `silent` the time since its last one (both in one unit, any).
    It answers the controller's HEARTBEAT when it has sent none for half a
    period: the controller heartbeats its idle workers a few dozen at a
    time (shoal_scheduler_heartbeats), so the answers come back in groups
    too, and a group costs one wake-up of each of its threads instead of
    one per message.
    The half period keeps it from answering a heartbeat that answers its
    own. Its own clock only sends one after 1.25 periods of silence, so
    that with a live controller the answer always comes first; a
    controller loses a worker after SHOAL_HEARTBEAT_LIVENESS periods.    */
bool shoal_heartbeat_answer_due (int64_t silent, int64_t period);
bool shoal_heartbeat_own_due (int64_t silent, int64_t period);
int64_t shoal_heartbeat_own_after (int64_t period);

typedef enum {
    SHOAL_MSG_HELLO = 0,
    SHOAL_MSG_WELCOME,
    SHOAL_MSG_HEARTBEAT,
    SHOAL_MSG_TASK,
    SHOAL_MSG_RESULT,
    SHOAL_MSG_CANCEL,
    SHOAL_MSG_BYE,
    SHOAL_MSG_RECONNECT,
    SHOAL_MSG_COUNT
} shoal_msg_type_t;

/*  RESULT status values.                                                  */
#define SHOAL_STATUS_EXITED   "exited"    /* exit_code says how            */
#define SHOAL_STATUS_SIGNALED "signaled"  /* killed by `signal`            */
#define SHOAL_STATUS_ERROR    "error"     /* never ran: `error` says why   */
#define SHOAL_STATUS_CANCELED "canceled"  /* stopped on CANCEL             */
#define SHOAL_STATUS_TIMEOUT  "timeout"   /* ran past TASK timeout_ms and
                                             was stopped                   */
#define SHOAL_STATUS_REFUSED  "refused"   /* not run: no free slot or the
                                             worker is stopping; run it
                                             elsewhere, not a failure      */

/*  TASK kind values.                                                      */
#define SHOAL_KIND_TASK  "task"
#define SHOAL_KIND_SPAWN "spawn"

/*  Returns the command name of `type` ("HELLO", ...).                     */
const char *shoal_msg_name (shoal_msg_type_t type);

/*  Decodes a command frame and a body frame. On success returns 0, sets
    *type and *body (a new reference, the caller's). Otherwise returns
    SHOAL_EPROTO (or SHOAL_ELIMIT for an oversized body) with `err`
    saying what is wrong; nothing is allocated.                            */
int shoal_msg_decode (const void *command, size_t command_size,
                      const void *body, size_t body_size,
                      shoal_msg_type_t *type, json_t **body_out,
                      shoal_error_t *err);

/*  Checks `body` (borrowed) against the table entry of `type` and
    serialises it. Returns a new string (the caller's, *size set) or NULL
    with `err` set. A failure here is a programming error in the sender.   */
char *shoal_msg_encode (shoal_msg_type_t type, json_t *body, size_t *size,
                        shoal_error_t *err);

/* ---- scanning JSON text without building it -------------------------- */

/*  A strict JSON scanner over text that is not copied and not built into
    a tree: it accepts exactly what jansson's json_loadb accepts (RFC 8259,
    UTF-8 checked, no \u0000, integers within int64, no real overflow,
    nesting below SHOAL_JSCAN_MAX_DEPTH). The hot wire messages and spawn
    lists are read with it; anything it finds wrong is a syntax error at
    `error_pos`, and nothing is allocated.                                 */
#define SHOAL_JSCAN_MAX_DEPTH 2048

typedef enum {
    SHOAL_JSCAN_ERROR = 0,
    SHOAL_JSCAN_OBJECT,
    SHOAL_JSCAN_ARRAY,
    SHOAL_JSCAN_STRING,
    SHOAL_JSCAN_INTEGER,
    SHOAL_JSCAN_REAL,
    SHOAL_JSCAN_TRUE,
    SHOAL_JSCAN_FALSE,
    SHOAL_JSCAN_NULL,
} shoal_jscan_type_t;

typedef struct {
    const char *text;            /* borrowed, not NUL-terminated           */
    size_t size;
    size_t pos;                  /* next byte to read                      */
    const char *error;           /* first syntax error, NULL while none    */
    size_t error_pos;            /* where it was found                     */
} shoal_jscan_t;

/*  A string token: the bytes between its quotes, still escaped.           */
typedef struct {
    const char *raw;
    size_t size;
    bool escaped;                /* holds a backslash: decode before use   */
} shoal_jscan_string_t;

void shoal_jscan_init (shoal_jscan_t *self, const char *text, size_t size);
/*  Skips whitespace; returns the next byte, or -1 at the end.            */
int shoal_jscan_peek (shoal_jscan_t *self);
/*  Consumes `c` after whitespace; false (a syntax error set) otherwise.  */
bool shoal_jscan_expect (shoal_jscan_t *self, char c);
/*  Scans a string at the next token. False on a syntax error.            */
bool shoal_jscan_string (shoal_jscan_t *self, shoal_jscan_string_t *out);
/*  Scans any value at the next token, checking all of it; an integer's
    value goes to *integer when not NULL. Returns its type, or
    SHOAL_JSCAN_ERROR on a syntax error.                                   */
shoal_jscan_type_t shoal_jscan_value (shoal_jscan_t *self,
                                      long long *integer);
/*  True when only whitespace is left; a syntax error otherwise.          */
bool shoal_jscan_end (shoal_jscan_t *self);
/*  Decodes a checked string into `out` (room for `size` bytes and a NUL;
    the decoded text is never longer than the raw). Returns its length,
    or (size_t) -1 when it does not fit.                                   */
size_t shoal_jscan_decode (const shoal_jscan_string_t *string, char *out,
                           size_t size);
/*  1-based line and column (in characters) of byte `pos` of the text.    */
void shoal_jscan_position (const shoal_jscan_t *self, size_t pos, int *line,
                           int *column);

/* ---- fast paths for the hot messages ---------------------------------- */

/*  The command of a command frame, or -1 when unknown.                   */
int shoal_msg_command (const void *command, size_t size);

/*  A HEARTBEAT body read without jansson. Returns 0 with *draining set
    when the body is valid; 1 when it is not what the fast path reads
    (the caller then uses shoal_msg_decode, which also says what is
    wrong).                                                                */
int shoal_msg_heartbeat_fast (const void *body, size_t size, bool *draining);

/*  Writes the body of a controller's HEARTBEAT telling the period,
    {"heartbeat_ms":N}, into `buf` (NUL-terminated). Returns its length,
    or 0 when it does not fit.                                            */
size_t shoal_msg_heartbeat_text (char *buf, size_t size, int64_t heartbeat_ms);

/*  The period a controller's HEARTBEAT tells (its optional heartbeat_ms),
    read without jansson when it is in the form shoal_msg_heartbeat_text
    writes. Returns 0 with *heartbeat_ms set, to 0 when the body has no
    such field (keep the period you have); -1 when the body is not a
    valid HEARTBEAT.                                                       */
int shoal_msg_heartbeat_period (const void *body, size_t size,
                                int64_t *heartbeat_ms);

/*  A RESULT body read without building it: strings decoded into the
    buffers of this struct, the spawn list left as its JSON text.         */
#define SHOAL_RESULT_JOB_MAX 128
#define SHOAL_RESULT_ERROR_MAX 1024
typedef struct {
    char job[SHOAL_RESULT_JOB_MAX];
    long long task, attempt;
    char status[16];
    bool has_exit_code, has_signal, has_error, has_duration;
    long long exit_code, signal, duration_ms;
    char error[SHOAL_RESULT_ERROR_MAX];
    const char *spawn;           /* borrowed from the body; NULL: none     */
    size_t spawn_size;
} shoal_result_wire_t;

/*  Returns 0 when `body` is a valid RESULT the fast path reads (every
    rule of shoal_msg_decode holds; the spawn list's contents are checked
    later, by the scheduler); 1 when the caller should use
    shoal_msg_decode instead (something is wrong or unusual: a string too
    long for its buffer, an unknown field with an odd value...).          */
int shoal_msg_result_fast (const void *body, size_t size,
                           shoal_result_wire_t *out);

#endif
