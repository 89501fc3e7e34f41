/*
 * jsonw.h -- a JSON writer for the documents we produce ourselves (the OTLP
 * export): appends into one growing buffer that is reused from one document
 * to the next, so a steady stream of documents allocates nothing. No tree,
 * no printf. Strings are escaped as RFC 8259 requires (", \, control
 * characters); bytes that are not valid UTF-8 become U+FFFD.
 *
 * Out of memory is sticky: the first failed growth sets `failed`, later
 * appends do nothing, and the caller drops the document.
 */
#ifndef OF_JSONW_H
#define OF_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char   *buf;          /* not NUL-terminated */
    size_t  len, cap;
    bool    failed;
};

/* Hot small struct: embedded, _init/_cleanup. */
void jw_init(struct jsonw *w);
void jw_cleanup(struct jsonw *w);
/* Empty it for the next document; the capacity stays. */
void jw_reset(struct jsonw *w);

/* Ensure room for n more bytes; false (and failed) when it cannot. */
bool jw_reserve(struct jsonw *w, size_t n);

void jw_raw(struct jsonw *w, const char *s, size_t n);
#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)
/* s as a quoted, escaped JSON string; NULL writes "". */
void jw_str(struct jsonw *w, const char *s);
/* Unsigned / signed decimal, bare (callers quote 64-bit integers where the
 * protobuf JSON mapping wants them as strings). */
void jw_u64(struct jsonw *w, uint64_t v);
void jw_i64(struct jsonw *w, int64_t v);
/* n bytes as 2n lowercase hex digits, bare. */
void jw_hex(struct jsonw *w, const uint8_t *b, size_t n);

#endif
