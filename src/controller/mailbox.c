/*  mailbox.c: calls from the HTTP threads to the loop (see mailbox.h).

    One mutex guards the queue and the state of every call in it or held
    by the owner. A call is freed by whichever side lets go of it last:
    the caller once it has its answer; the owner, or shoal_mailbox_take,
    when the caller gave up first (`abandoned`). The answer is signalled
    with the mutex held, so the caller cannot free the call (and its
    condition variable) while the owner still touches it.

    The eventfd's count is 1 exactly while `signalled` is set, which is
    while calls wait to be taken: the first call posted to an empty queue
    writes it, the take that empties the queue reads it. Both happen under
    the mutex, so the two can never disagree.                              */
#include "mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct shoal_call {
    shoal_mailbox_t *mailbox;
    json_t *request;             /* until the owner takes it out           */
    json_t *answer;              /* until the caller takes it              */
    pthread_cond_t answered_cond;
    bool answered;               /* the caller may go (answer or not)      */
    bool abandoned;              /* the caller went: the owner frees it    */
    shoal_call_t *next;          /* in the queue                           */
};

struct shoal_mailbox {
    pthread_mutex_t mutex;
    pthread_condattr_t cond_attr; /* CLOCK_MONOTONIC, for every call's    */
    shoal_call_t *head;          /* waiting to be taken, oldest first      */
    shoal_call_t *tail;
    int fd;                      /* eventfd, readable while `signalled`    */
    bool signalled;
    bool closed;
};

shoal_mailbox_t *
shoal_mailbox_new (void)
{
    shoal_mailbox_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->fd < 0) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_init (&self->cond_attr);
    pthread_condattr_setclock (&self->cond_attr, CLOCK_MONOTONIC);
    return self;
}

void
shoal_mailbox_destroy (shoal_mailbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_mailbox_t *self = *self_p;
    shoal_mailbox_close (self);
    pthread_condattr_destroy (&self->cond_attr);
    pthread_mutex_destroy (&self->mutex);
    close (self->fd);
    free (self);
    *self_p = NULL;
}

static void
s_call_free (shoal_call_t *call)
{
    json_decref (call->request);
    json_decref (call->answer);
    pthread_cond_destroy (&call->answered_cond);
    free (call);
}

/*  Frees a list of dropped calls, once the mutex is released.             */
static void
s_free_list (shoal_call_t *call)
{
    while (call) {
        shoal_call_t *next = call->next;
        s_call_free (call);
        call = next;
    }
}

/*  Sets or clears the descriptor's readiness. With the mutex held.       */
static void
s_signal (shoal_mailbox_t *self, bool on)
{
    if (self->signalled == on)
        return;
    self->signalled = on;
    uint64_t count = 1;
    ssize_t done;
    do
        done = on ? write (self->fd, &count, sizeof count)
                  : read (self->fd, &count, sizeof count);
    while (done < 0 && errno == EINTR);
}

/* ---- the caller's side ------------------------------------------------ */

json_t *
shoal_mailbox_call (shoal_mailbox_t *self, json_t *request, int timeout_ms)
{
    shoal_call_t *call = request ? calloc (1, sizeof *call) : NULL;
    if (!call) {
        json_decref (request);
        errno = ENOMEM;
        return NULL;
    }
    call->mailbox = self;
    call->request = request;
    pthread_cond_init (&call->answered_cond, &self->cond_attr);
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock (&self->mutex);
    if (self->closed) {
        pthread_mutex_unlock (&self->mutex);
        s_call_free (call);
        errno = ESHUTDOWN;
        return NULL;
    }
    if (self->tail)
        self->tail->next = call;
    else
        self->head = call;
    self->tail = call;
    s_signal (self, true);
    while (!call->answered) {
        int rc = pthread_cond_timedwait (&call->answered_cond, &self->mutex,
                                         &deadline);
        if (rc == ETIMEDOUT && !call->answered) {
            /* The owner frees it: in the queue or answering it. */
            call->abandoned = true;
            pthread_mutex_unlock (&self->mutex);
            errno = ETIMEDOUT;
            return NULL;
        }
    }
    pthread_mutex_unlock (&self->mutex);
    json_t *answer = call->answer;
    call->answer = NULL;
    s_call_free (call);
    if (!answer)
        errno = ESHUTDOWN;
    return answer;
}

/* ---- the owner's side ------------------------------------------------- */

int
shoal_mailbox_fd (shoal_mailbox_t *self)
{
    return self->fd;
}

shoal_call_t *
shoal_mailbox_take (shoal_mailbox_t *self)
{
    shoal_call_t *dropped = NULL;
    shoal_call_t *call = NULL;
    pthread_mutex_lock (&self->mutex);
    while (!call && self->head) {
        shoal_call_t *next = self->head;
        self->head = next->next;
        if (!self->head)
            self->tail = NULL;
        next->next = NULL;
        if (next->abandoned) {
            next->next = dropped;
            dropped = next;
        }
        else
            call = next;
    }
    if (!self->head)
        s_signal (self, false);
    pthread_mutex_unlock (&self->mutex);
    s_free_list (dropped);
    return call;
}

json_t *
shoal_call_request (shoal_call_t *call)
{
    json_t *request = call->request;
    call->request = NULL;
    return request;
}

void
shoal_call_answer (shoal_call_t **call_p, json_t *answer)
{
    shoal_call_t *call = call_p ? *call_p : NULL;
    if (!call) {
        json_decref (answer);
        return;
    }
    *call_p = NULL;
    shoal_mailbox_t *self = call->mailbox;
    pthread_mutex_lock (&self->mutex);
    bool abandoned = call->abandoned;
    if (!abandoned) {
        call->answer = answer;
        call->answered = true;
        pthread_cond_signal (&call->answered_cond);
    }
    pthread_mutex_unlock (&self->mutex);
    if (abandoned) {
        json_decref (answer);
        s_call_free (call);
    }
}

void
shoal_mailbox_close (shoal_mailbox_t *self)
{
    shoal_call_t *dropped = NULL;
    pthread_mutex_lock (&self->mutex);
    self->closed = true;
    while (self->head) {
        shoal_call_t *call = self->head;
        self->head = call->next;
        call->next = NULL;
        if (call->abandoned) {
            call->next = dropped;
            dropped = call;
        }
        else {
            call->answered = true;   /* with nothing: ESHUTDOWN */
            pthread_cond_signal (&call->answered_cond);
        }
    }
    self->tail = NULL;
    s_signal (self, false);
    pthread_mutex_unlock (&self->mutex);
    s_free_list (dropped);
}
