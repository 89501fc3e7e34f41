/*
 * util.h -- small string, number and time helpers every layer may use.
 * Nothing here allocates except where it says so.
 */
#ifndef OF_UTIL_H
#define OF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a whole decimal string into [min,max]; no sign unless min < 0, no
 * leading '+' or spaces, no trailing junk. Returns 0 or -1. */
int  of_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);
/* A positive id as used in paths: 1..INT64_MAX, digits only. */
bool of_parse_id(const char *s, size_t len, int64_t *out);

/* snprintf-like bounded copy; returns strlen(src) (truncated if >= cap). */
size_t of_strlcpy(char *dst, const char *src, size_t cap);

/* Monotonic and wall clocks. */
uint64_t of_mono_ns(void);
double   of_wall_s(void);
/* RFC 3339 UTC with microseconds and 'Z' into buf (>= 32 bytes). */
void     of_rfc3339_now(char *buf, size_t cap);

/* Number of Unicode code points in valid UTF-8 s[0..len); -1 if invalid. */
long of_utf8_len(const char *s, size_t len);
/* Pointer range of s without leading/trailing ASCII whitespace. */
void of_trim(const char **s, size_t *len);

/* Constant-time equality of two byte strings of equal length. */
bool of_ct_equal(const void *a, const void *b, size_t len);

/* A fresh random UUIDv4, 36 chars + NUL (libsodium's randombytes, buffered
 * per process; not thread-safe: call from the event loop thread). */
void of_uuid4(char out[37]);

/* ASCII lower-case in place. */
void of_ascii_lower(char *s);

#endif
