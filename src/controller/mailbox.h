/*  mailbox.h: calls from the HTTP threads to the controller's loop.

    An HTTP thread posts a request (a JSON value) and sleeps until the
    loop answers it or the wait times out. The loop learns of waiting
    calls through a descriptor it polls with its sockets, takes them one
    by one, and answers each when it can: at once, or later, once the
    store has written what the answer reports.

    Values cross by reference: the request is built once by the HTTP
    thread, the answer once by the loop, and the answer is printed once,
    for the client. A value handed over belongs to the receiver alone.
    Parts of it may still be shared with values the sender keeps (a
    job's params); jansson counts references atomically, and neither
    thread changes a value once it is shared.

    Before, the calls went over inproc ZeroMQ sockets (REQ to ROUTER).
    That cost each call two trips through libzmq's pipes and command
    mailboxes, each with an eventfd and a getpid; here a call is a mutex,
    at most one eventfd write, and one condition variable.

    A caller that gives up (timeout) leaves its call behind; the loop
    drops it unread if it has not taken it yet, and the answer is freed
    if it has. Closing the mailbox (the controller stops) answers every
    waiting call with nothing, at once, and refuses new ones.             */
#ifndef SHOAL_CONTROLLER_MAILBOX_H
#define SHOAL_CONTROLLER_MAILBOX_H

#include <jansson.h>

typedef struct shoal_mailbox shoal_mailbox_t;
typedef struct shoal_call shoal_call_t;

/*  NULL with errno set when out of memory or out of descriptors.         */
shoal_mailbox_t *shoal_mailbox_new (void);

/*  Closes the mailbox (shoal_mailbox_close) and frees it. No thread may
    be inside shoal_mailbox_call, and every call taken must have been
    answered.                                                              */
void shoal_mailbox_destroy (shoal_mailbox_t **self_p);

/* ---- the caller's side (any thread) ---------------------------------- */

/*  Posts `request` (taken) and waits up to `timeout_ms` for its answer,
    which the caller then owns. NULL when there is none, with errno:
    ETIMEDOUT (the loop did not answer in time), ESHUTDOWN (the mailbox
    is closed, or closed while waiting), ENOMEM.                           */
json_t *shoal_mailbox_call (shoal_mailbox_t *self, json_t *request,
                            int timeout_ms);

/* ---- the owner's side (one thread) ----------------------------------- */

/*  Readable while calls wait to be taken: poll it with POLLIN. Reading
    it is shoal_mailbox_take's business.                                   */
int shoal_mailbox_fd (shoal_mailbox_t *self);

/*  The oldest waiting call, or NULL when none waits (the descriptor is
    then not readable until the next call is posted). Calls whose caller
    gave up before they were taken are dropped here.                       */
shoal_call_t *shoal_mailbox_take (shoal_mailbox_t *self);

/*  The call's request, taken out (the caller owns it); NULL the second
    time.                                                                  */
json_t *shoal_call_request (shoal_call_t *call);

/*  Answers `*call_p` with `answer` (taken; NULL allowed: the caller is
    told ESHUTDOWN) and lets the call go; sets *call_p to NULL. Works on a
    closed mailbox, too.                                                   */
void shoal_call_answer (shoal_call_t **call_p, json_t *answer);

/*  Refuses new calls and answers those still waiting to be taken with
    nothing. Calls already taken are still answered by their owner.        */
void shoal_mailbox_close (shoal_mailbox_t *self);

#endif
