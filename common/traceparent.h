/*
 * traceparent.h -- W3C Trace Context (https://www.w3.org/TR/trace-context/),
 * the pure part: parse and format the traceparent header, check a
 * tracestate header. No I/O, no allocation; the worker (worker/trace.c)
 * decides what to do with the result.
 *
 * traceparent = version "-" trace-id "-" parent-id "-" trace-flags, lowercase
 * hex only. Version 00 is exactly 55 characters. A higher version (not ff) is
 * read as 00 is, by its first four fields, provided the 55th character ends
 * the string or is a "-" (the spec's forward-compatibility rule). An all-zero
 * trace-id or parent-id is invalid.
 */
#ifndef OF_TRACEPARENT_H
#define OF_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_LEN          55     /* a version-00 traceparent, without its NUL */
#define TP_FLAG_SAMPLED 0x01u
#define TP_STATE_MAX    512    /* longest tracestate passed on (the spec's minimum) */

struct tp_ctx {
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags;
};

/* true and *out filled when s is a valid traceparent; false otherwise
 * (out is then unspecified). */
bool tp_parse(const char *s, struct tp_ctx *out);

/* Is s a valid tracestate: at most 32 comma-separated list members
 * (empty ones allowed), each key=value with the spec's key and value
 * grammar, no key twice, at most TP_STATE_MAX characters in all? */
bool tp_state_valid(const char *s);

/* "00-<trace>-<span>-<flags>" with its NUL into out[TP_LEN + 1]. */
void tp_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags);

/* n bytes as 2n lowercase hex digits and a NUL into out[2n + 1]. */
void tp_hex(char *out, const uint8_t *b, size_t n);

#endif
