/*
 * idem.h -- the HTTP side of Idempotency-Key (domain/idem.h has the whole
 * story and a usage recipe): reading and validating the header, the request
 * fingerprint over the canonical JSON body, and sending a run's answer.
 */
#ifndef OF_HDL_IDEM_H
#define OF_HDL_IDEM_H

#include <jansson.h>
#include <stdbool.h>

#include "handlers/hdl.h"
#include "domain/idem.h"

/* Fills k->user_id (r->who.user_id), k->route (kept as given: a string
 * literal such as "POST /api/v1/orders") and k->key (NULL when the header is
 * absent). An invalid header (not 1..255 chars of 0x20..0x7e) adds a
 * value_error at ["header","Idempotency-Key"] to v and leaves k->key NULL. */
void hdl_idem_key(struct hdl_req *r, struct of_verrs *v, struct idem_key *k, const char *route);

/* k->fingerprint = rules_fingerprint(method, path, canonical body), where the
 * canonical body is json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS): the same
 * JSON value gives the same fingerprint whatever its key order or spacing. */
void hdl_idem_fingerprint(struct hdl_req *r, json_t *body, struct idem_key *k);

/* JSON text of j in r's arena (compact); takes the reference to j. For
 * render callbacks, whose text is stored and replayed byte for byte. */
const char *hdl_json_text(struct hdl_req *r, json_t *j);

/* Answers a run: a->rc OF_OK with a body -> that status + body (+ header
 * Idempotent-Replayed: true when replayed); OF_INVALID -> 422 {"detail":
 * "Idempotency-Key reused with a different request"}; OF_CONFLICT -> 409
 * {"detail":"A request with this Idempotency-Key is in progress"}; other
 * codes -> hdl_reply_rc. Returns false, sending nothing, when a->rc is OF_OK
 * and a->body is NULL: the handler must reply itself. */
bool hdl_idem_send(struct hdl_req *r, const struct idem_answer *a);

#endif
