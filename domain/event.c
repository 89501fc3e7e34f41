/*
 * event.c -- event type names and event_meta (see event.h).
 */
#include "domain/event.h"

#include <string.h>

static const char *const names[EVENT_TYPE_COUNT] = {
    "order.created", "order.status_changed", "transfer.created",
};

const char *
event_type_name(enum event_type t)
{
    return (unsigned)t < EVENT_TYPE_COUNT ? names[t] : "";
}

bool
event_type_parse(const char *s, size_t len, enum event_type *out)
{
    for (int i = 0; i < EVENT_TYPE_COUNT; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            *out = (enum event_type)i;
            return true;
        }
    }
    return false;
}

void
event_meta_new(struct event_meta *e, char buf[OF_EVENT_ID_CAP], const char *traceparent)
{
    of_event_id_new(buf);
    e->id = buf;
    e->traceparent = traceparent;
}
