/*
 * event_wake.h -- wake the jobs process after an event's transaction has
 * committed, instead of a NOTIFY inside it (migrations/0002_events,
 * domain/event.h EVENT_CHANNEL).
 *
 * A NOTIFY inside a writing transaction holds PostgreSQL's global notify
 * lock from PreCommit until the commit record is flushed, so every
 * committing order of every connection waits for the others' WAL flushes
 * in turn. event_wake() sends `SELECT pg_notify(...)` on its own, after
 * the commit, as a transaction with synchronous_commit off (its commit
 * record is not waited for: the lock is held for microseconds; losing the
 * notification in a crash costs nothing, the event row is durable and the
 * jobs process's 1 s poll finds it). At most one is in flight per process;
 * wakes asked for meanwhile coalesce into one more sent after it ends, so
 * every committed event is followed by a notification sent after its
 * commit. A failed one is left to the poll.
 */
#ifndef OF_STORE_EVENT_WAKE_H
#define OF_STORE_EVENT_WAKE_H

#include <stddef.h>

#include "store/pool.h"

extern const struct pool_stmt *const store_event_wake_stmts[];
extern const size_t store_event_wake_nstmts;

/* Call once the transaction that wrote an event has committed. */
void event_wake(pool *p);

/* Wakes sent and wakes coalesced into another, for tests and metrics. */
void event_wake_counts(unsigned long *sent, unsigned long *coalesced);

#endif
