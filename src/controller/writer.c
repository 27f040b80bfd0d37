/*  writer.c: the state store's own thread.

    Batches wait in a queue, oldest first, each with a ticket (1, 2, ...
    in hand-over order). The thread takes every waiting batch at once and
    writes them in one transaction: under load one commit carries many
    rounds of the loop, and an fsync of a WAL checkpoint stalls this
    thread, not dispatch. Written batches are emptied and kept for reuse
    (a few), so a steady load allocates nothing per round.

    Invariants (under the mutex): written <= submitted; the queue holds
    the batches with tickets written + 1 .. submitted, less those the
    thread is writing now; waiting_rows counts the rows of both.          */
#include "writer.h"

#include "shoal/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/*  Emptied batches kept for the loop to fill again, when not bigger than
    this: a fan-out's batch is let go, so its memory goes back.           */
#define S_SPARES 4
#define S_SPARE_BYTES (1024 * 1024)

/*  Least time between two transactions unless someone waits for one: the
    loop hands a batch over every round, and a commit per round would
    cost a wake-up and a WAL append each. A crash loses at most this much
    more of what workers reported (their tasks run again).                */
#define S_GROUP_MS 5

struct shoal_writer {
    shoal_store_t *store;        /* owned; used by the thread only         */
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t work;         /* the thread: batches queued, or stop    */
    pthread_cond_t progress;     /* the loop: batches written              */
    shoal_store_batch_t **queue; /* waiting batches, oldest first          */
    size_t queued;
    size_t queue_cap;
    shoal_store_batch_t *spares[S_SPARES];
    size_t spare_count;
    size_t waiting_rows;         /* rows handed over, not yet written      */
    shoal_store_counts_t counts; /* the store's, after the last write     */
    uint64_t submitted;          /* ticket of the last batch handed over   */
    uint64_t written;            /* tickets up to this one are done        */
    bool stopping;
    bool idle;                   /* the thread waits for a first batch     */
    bool urgent;                 /* a watched batch waits: write now       */
    uint64_t *watched;           /* tickets of watched batches not written */
    size_t watched_count, watched_cap;
    uint64_t *failed;            /* watched tickets whose write failed     */
    size_t failed_count, failed_cap;
    int event_fd;                /* readable once `notify` is written, or
                                    after a failed write                  */
    uint64_t notify;             /* someone waits for this ticket; 0: no
                                    one (see shoal_writer_hurry)          */
    atomic_bool resync;          /* a write failed: the loop puts all     */
};

/*  Writes one group of batches; returns 0 or -1 (logged).                 */
static int
s_write (shoal_writer_t *self, shoal_store_batch_t **batches, size_t count)
{
    shoal_error_t err;
    if (shoal_store_write (self->store, batches, count, &err) == 0)
        return 0;
    shoal_error ("%s", err.message);
    atomic_store (&self->resync, true);
    return -1;
}

/*  Makes the descriptor readable.                                        */
static void
s_signal (shoal_writer_t *self)
{
    uint64_t one = 1;
    while (write (self->event_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/*  Settles the watched tickets up to `last` (under the mutex): those of a
    failed transaction (from `first`) are kept for shoal_writer_failed.
    Then wakes the loop if it waits for these.                            */
static void
s_settle (shoal_writer_t *self, uint64_t first, uint64_t last, bool ok)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->watched_count; i++) {
        uint64_t ticket = self->watched[i];
        if (ticket > last) {
            self->watched[kept++] = ticket;
            continue;
        }
        if (ok || ticket < first)
            continue;
        if (self->failed_count == self->failed_cap) {
            size_t want = self->failed_cap ? 2 * self->failed_cap : 8;
            uint64_t *grown = realloc (self->failed, want * sizeof *grown);
            if (!grown)
                continue;   /* its reply says 201: logged as failed above */
            self->failed = grown;
            self->failed_cap = want;
        }
        self->failed[self->failed_count++] = ticket;
    }
    self->watched_count = kept;
    /* The loop wakes only when it has something to do: what it waits
       for is written, or a failed write asks for a resync. Under a
       steady load of small submissions, waking it after every group
       commit cost it wake-ups that found nothing to do. */
    bool waited_for = self->notify && self->written >= self->notify;
    if (waited_for)
        self->notify = 0;
    if (waited_for || !ok)
        s_signal (self);
    pthread_cond_broadcast (&self->progress);
}

static void *
s_thread_main (void *arg)
{
    shoal_writer_t *self = arg;
    shoal_store_batch_t **taking = NULL;
    size_t taking_cap = 0;
    struct timespec next;        /* CLOCK_MONOTONIC: next write not before */
    clock_gettime (CLOCK_MONOTONIC, &next);
    pthread_mutex_lock (&self->mutex);
    while (true) {
        self->idle = true;
        while (!self->queued && !self->stopping)
            pthread_cond_wait (&self->work, &self->mutex);
        self->idle = false;
        while (!self->urgent && !self->stopping
               && pthread_cond_timedwait (&self->work, &self->mutex, &next)
                      == 0)
            ;   /* more batches come in meanwhile; they go in this one */
        if (!self->queued)
            break;   /* stopping, and everything is written */
        self->urgent = false;
        if (taking_cap < self->queue_cap) {
            shoal_store_batch_t **grown = realloc (
                taking, self->queue_cap * sizeof *grown);
            if (grown) {
                taking = grown;
                taking_cap = self->queue_cap;
            }
        }
        /* Without room for all, the oldest ones go first. */
        size_t count = self->queued < taking_cap ? self->queued : taking_cap;
        if (!count) {
            /* Out of memory for even one pointer: write the oldest alone. */
            shoal_store_batch_t *one = self->queue[0];
            memmove (self->queue, self->queue + 1,
                     (self->queued - 1) * sizeof *self->queue);
            self->queued--;
            pthread_mutex_unlock (&self->mutex);
            int rc = s_write (self, &one, 1);
            pthread_mutex_lock (&self->mutex);
            self->written++;
            self->waiting_rows -= shoal_store_batch_rows (one);
            shoal_store_batch_destroy (&one);
            s_settle (self, self->written, self->written, rc == 0);
            continue;
        }
        memcpy (taking, self->queue, count * sizeof *taking);
        memmove (self->queue, self->queue + count,
                 (self->queued - count) * sizeof *self->queue);
        self->queued -= count;
        uint64_t first = self->written + 1;
        pthread_mutex_unlock (&self->mutex);

        int rc = s_write (self, taking, count);
        shoal_store_counts_t counts;
        shoal_store_counts (self->store, &counts);
        clock_gettime (CLOCK_MONOTONIC, &next);
        next.tv_nsec += S_GROUP_MS * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        size_t rows = 0;
        for (size_t i = 0; i < count; i++) {
            rows += shoal_store_batch_rows (taking[i]);
            shoal_store_batch_clear (taking[i]);
        }

        pthread_mutex_lock (&self->mutex);
        self->written = first + count - 1;
        self->waiting_rows -= rows;
        self->counts = counts;
        for (size_t i = 0; i < count; i++) {
            if (self->spare_count < S_SPARES
                && shoal_store_batch_bytes (taking[i]) <= S_SPARE_BYTES)
                self->spares[self->spare_count++] = taking[i];
            else
                shoal_store_batch_destroy (&taking[i]);
        }
        s_settle (self, first, self->written, rc == 0);
    }
    pthread_mutex_unlock (&self->mutex);
    free (taking);
    return NULL;
}

shoal_writer_t *
shoal_writer_new (shoal_store_t **store_p, shoal_error_t *err)
{
    shoal_writer_t *self = calloc (1, sizeof *self);
    if (self) {
        self->queue_cap = 16;
        self->queue = calloc (self->queue_cap, sizeof *self->queue);
    }
    if (!self || !self->queue) {
        if (self)
            free (self);
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->event_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd < 0) {
        free (self->queue);
        free (self);
        shoal_error_set (err, SHOAL_EIO, NULL,
                         "cannot make the state store's eventfd: %s",
                         strerror (errno));
        return NULL;
    }
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->work, &attr);
    pthread_condattr_destroy (&attr);
    pthread_cond_init (&self->progress, NULL);
    atomic_init (&self->resync, false);
    self->store = *store_p;
    /* Signals are for the main thread: this one starts with all blocked. */
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int rc = pthread_create (&self->thread, NULL, s_thread_main, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    /* Named, so that `top -H`, perf and the bench tell it from the loop. */
    if (!rc)
        pthread_setname_np (self->thread, SHOAL_WRITER_THREAD_NAME);
    if (rc) {
        self->store = NULL;
        pthread_cond_destroy (&self->progress);
        pthread_cond_destroy (&self->work);
        pthread_mutex_destroy (&self->mutex);
        close (self->event_fd);
        free (self->queue);
        free (self);
        shoal_error_set (err, SHOAL_EIO, NULL,
                         "cannot start the state store's thread: %s",
                         strerror (rc));
        return NULL;
    }
    *store_p = NULL;
    return self;
}

void
shoal_writer_destroy (shoal_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_writer_t *self = *self_p;
    pthread_mutex_lock (&self->mutex);
    self->stopping = true;
    pthread_cond_signal (&self->work);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    for (size_t i = 0; i < self->spare_count; i++)
        shoal_store_batch_destroy (&self->spares[i]);
    free (self->queue);
    free (self->watched);
    free (self->failed);
    close (self->event_fd);
    shoal_store_destroy (&self->store);
    pthread_cond_destroy (&self->progress);
    pthread_cond_destroy (&self->work);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

uint64_t
shoal_writer_submit (shoal_writer_t *self, shoal_store_batch_t **batch_p,
                     bool watch)
{
    shoal_store_batch_t *batch = *batch_p;
    size_t rows = shoal_store_batch_rows (batch);
    pthread_mutex_lock (&self->mutex);
    if (!rows) {
        uint64_t ticket = self->submitted;
        pthread_mutex_unlock (&self->mutex);
        return ticket;
    }
    while (self->waiting_rows > SHOAL_WRITER_MAX_ROWS)
        pthread_cond_wait (&self->progress, &self->mutex);
    if (self->queued == self->queue_cap) {
        shoal_store_batch_t **grown = realloc (
            self->queue, 2 * self->queue_cap * sizeof *grown);
        if (grown) {
            self->queue = grown;
            self->queue_cap *= 2;
        }
        else {
            /* No room to queue it: let the queue empty first. */
            while (self->queued)
                pthread_cond_wait (&self->progress, &self->mutex);
        }
    }
    self->queue[self->queued++] = batch;
    self->waiting_rows += rows;
    uint64_t ticket = ++self->submitted;
    if (watch) {
        if (self->watched_count == self->watched_cap) {
            size_t want = self->watched_cap ? 2 * self->watched_cap : 8;
            uint64_t *grown = realloc (self->watched, want * sizeof *grown);
            if (grown) {
                self->watched = grown;
                self->watched_cap = want;
            }
        }
        /* Without room its failure cannot be told: the reply waits all
           the same, and the writer has logged the failure. */
        if (self->watched_count < self->watched_cap)
            self->watched[self->watched_count++] = ticket;
        self->urgent = true;
    }
    *batch_p = self->spare_count ? self->spares[--self->spare_count] : NULL;
    if (self->idle || watch)
        pthread_cond_signal (&self->work);
    pthread_mutex_unlock (&self->mutex);
    if (!*batch_p)
        *batch_p = shoal_store_batch_new ();
    return ticket;
}

void
shoal_writer_hurry (shoal_writer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->urgent = true;
    self->notify = self->submitted;
    if (self->written >= self->notify) {
        /* Written while the caller looked elsewhere: say so now, or the
           caller would wait for a transaction that already happened. */
        self->notify = 0;
        s_signal (self);
    }
    pthread_cond_signal (&self->work);
    pthread_mutex_unlock (&self->mutex);
}

size_t
shoal_writer_waiting_rows (shoal_writer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    size_t rows = self->waiting_rows;
    pthread_mutex_unlock (&self->mutex);
    return rows;
}

void
shoal_writer_counts (shoal_writer_t *self, shoal_store_counts_t *counts)
{
    pthread_mutex_lock (&self->mutex);
    *counts = self->counts;
    pthread_mutex_unlock (&self->mutex);
}

uint64_t
shoal_writer_submitted (shoal_writer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t ticket = self->submitted;
    pthread_mutex_unlock (&self->mutex);
    return ticket;
}

uint64_t
shoal_writer_written (shoal_writer_t *self)
{
    pthread_mutex_lock (&self->mutex);
    uint64_t ticket = self->written;
    pthread_mutex_unlock (&self->mutex);
    return ticket;
}

bool
shoal_writer_failed (shoal_writer_t *self, uint64_t ticket)
{
    bool failed = false;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->failed_count; i++)
        if (self->failed[i] == ticket) {
            self->failed[i] = self->failed[--self->failed_count];
            failed = true;
            break;
        }
    pthread_mutex_unlock (&self->mutex);
    return failed;
}

int
shoal_writer_fd (shoal_writer_t *self)
{
    return self->event_fd;
}

void
shoal_writer_ack (shoal_writer_t *self)
{
    uint64_t count;
    while (read (self->event_fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
}

bool
shoal_writer_take_resync (shoal_writer_t *self)
{
    return atomic_exchange (&self->resync, false);
}
