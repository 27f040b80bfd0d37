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
    | HEARTBEAT | both      | draining (worker: finishing, send no more)  |
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

#endif
