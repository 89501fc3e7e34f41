/*
 * urlcode.h -- percent-decoding (RFC 3986 §2.1), the one decoder for the
 * request path (worker/http.c) and for query strings and form bodies
 * (handlers/query.c). Allocates nothing: the caller gives the buffer.
 */
#ifndef OF_URLCODE_H
#define OF_URLCODE_H

#include <stdbool.h>
#include <stddef.h>

enum of_url_mode {
    OF_URL_PATH = 0,    /* '+' is a '+' */
    OF_URL_FORM = 1,    /* application/x-www-form-urlencoded: '+' is a space */
};

/* Decodes src[0..len) into out, which has room for len + 1 bytes, and
 * NUL-terminates it; returns the decoded length. A '%' without two hex
 * digits after it is copied as written, and %00 becomes U+FFFD (3 bytes in
 * place of the escape's 3): a NUL would cut the C string short ("page=1%00"
 * read as 1). When either happens, *exact (if not NULL) is set false. */
size_t of_url_decode(char *out, const char *src, size_t len, enum of_url_mode mode, bool *exact);

#endif
