/*  writer.h: the thread that writes the controller's state store.

    The loop copies what changed in a round into a batch and hands it
    over; this thread writes whatever batches are waiting in one SQLite
    transaction (a group commit that grows with the load), so the loop
    never waits for SQLite. Where a reply promises the data is on disk
    (a submission's 201) the loop holds the reply, not itself, until the
    writer's descriptor says its batch was written.                        */
#ifndef SHOAL_CONTROLLER_WRITER_H
#define SHOAL_CONTROLLER_WRITER_H

#include "shoal/error.h"
#include "shoal/store.h"

#include <stdbool.h>
#include <stdint.h>

/*  The thread's name, as /proc/PID/task/TID/comm shows it (at most 15
    characters).                                                           */
#define SHOAL_WRITER_THREAD_NAME "shoal-writer"

typedef struct shoal_writer shoal_writer_t;

/*  Rows waiting to be written past which shoal_writer_submit waits for
    the writer: the loop then runs at the store's pace instead of
    queueing changes without bound.                                       */
#define SHOAL_WRITER_MAX_ROWS 262144

/*  Starts the thread; it owns `*store_p` from now on (and closes it when
    destroyed), and `*store_p` is set to NULL. Returns NULL with `err`
    when the thread cannot start (the store is then still the caller's).  */
shoal_writer_t *shoal_writer_new (shoal_store_t **store_p, shoal_error_t *err);

/*  Writes what is waiting, stops the thread and closes the store.         */
void shoal_writer_destroy (shoal_writer_t **self_p);

/*  Hands `*batch_p` over and gives back an empty one in its place (NULL
    when out of memory: the caller makes a new one). Waits first while
    more than SHOAL_WRITER_MAX_ROWS rows are waiting. `watch`: someone
    waits for this batch (a reply): it is written without the group
    delay, and a failure is kept for shoal_writer_failed. Returns the
    batch's ticket; an empty batch is not handed over and gets the ticket
    of the last one that was.                                              */
uint64_t shoal_writer_submit (shoal_writer_t *self,
                              shoal_store_batch_t **batch_p, bool watch);

/*  Someone waits: write what is waiting now, without the group delay,
    and make the descriptor readable once all of it is written.           */
void shoal_writer_hurry (shoal_writer_t *self);

/*  Rows handed over and not yet written.                                  */
size_t shoal_writer_waiting_rows (shoal_writer_t *self);

/*  Rows of the transactions committed so far (shoal_store_counts).       */
void shoal_writer_counts (shoal_writer_t *self, shoal_store_counts_t *counts);

/*  The ticket of the last batch handed over.                              */
uint64_t shoal_writer_submitted (shoal_writer_t *self);

/*  Every batch up to this ticket has been written (or failed).            */
uint64_t shoal_writer_written (shoal_writer_t *self);

/*  Whether the watched batch `ticket` (written already) failed; answers
    once per failed ticket.                                                */
bool shoal_writer_failed (shoal_writer_t *self, uint64_t ticket);

/*  A descriptor for the loop's poll: it turns readable once every batch
    handed over before the last shoal_writer_hurry is written, and after
    a write that failed; shoal_writer_ack makes it unreadable again.      */
int shoal_writer_fd (shoal_writer_t *self);
void shoal_writer_ack (shoal_writer_t *self);

/*  True once after a write failed: the failed rows are gone from the
    scheduler's change lists, so the next batch must hold everything
    (shoal_store_batch_put_all).                                          */
bool shoal_writer_take_resync (shoal_writer_t *self);

#endif
