/*
 * cached.h -- answering reads with an ETag, from the worker's cache of
 * rendered answers (common/cache.h) or freshly rendered: If-None-Match,
 * 304, and the normalised key a query string is cached under.
 */
#ifndef OF_HDL_CACHED_H
#define OF_HDL_CACHED_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct hdl_req;

/* Room for a normalised list key (longer queries are not cached). */
#define HDL_CACHE_KEY_CAP 512

/* The query string as the parser (query.h) understands it: pairs keyed by
 * their percent-decoded name, the last of a name winning, sorted by name,
 * each value as written. Two queries with one key always get one answer.
 * Writes it into buf (HDL_CACHE_KEY_CAP bytes) and returns its length; 0
 * when the query is too long or has too many pairs to cache. */
size_t hdl_cache_query_key(const char *query, char *buf);

/* Does an If-None-Match header value match etag (weak comparison, as RFC
 * 9110 13.1.2 asks: W/ is ignored; "*" matches)? */
bool hdl_etag_match(const char *if_none_match, const char *etag);

/* 200 with body and its ETag, or 304 with only the ETag when the request's
 * If-None-Match matches it. The request's one answer. */
void hdl_reply_tagged(struct hdl_req *r, const char *body, size_t len, const char *etag);

/* Render body (takes the reference) compactly into buf[0..cap) or, when it
 * does not fit, into r->mem; *len is its length. NULL if rendering failed. */
const char *hdl_render(struct hdl_req *r, json_t *body, char *buf, size_t cap, size_t *len);

#endif
