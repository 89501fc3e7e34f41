/*
 * event.h -- the outbox's event types (API.md, Events) and what a write
 * that emits one hands its repository.
 *
 * A service that changes an order or makes a transfer gives the repository
 * an event_meta: the new event's id (made by the service) and the request's
 * traceparent (NULL when there is none). The repository writes the event row
 * in the same statement as the change, with the resource rendered exactly
 * as the API returns it, and NOTIFYs channel EVENT_CHANNEL so the jobs
 * process wakes at COMMIT.
 */
#ifndef OF_DOMAIN_EVENT_H
#define OF_DOMAIN_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ids.h"

enum event_type {
    EVENT_ORDER_CREATED = 0,
    EVENT_ORDER_STATUS_CHANGED,
    EVENT_TRANSFER_CREATED,
    EVENT_TYPE_COUNT
};

#define EVENT_CHANNEL "of_events"

struct event_meta {
    const char *id;            /* "evt_" + 26 characters */
    const char *traceparent;   /* NULL: none */
};

/* "order.created", "order.status_changed", "transfer.created". */
const char *event_type_name(enum event_type t);
/* The type named s[0..len); false if it is none of them. */
bool event_type_parse(const char *s, size_t len, enum event_type *out);

/* Fills *e with a fresh id (stored in buf) and the traceparent. */
void event_meta_new(struct event_meta *e, char buf[OF_EVENT_ID_CAP], const char *traceparent);

#endif
