/*
 * body.h -- reading a JSON request body: the body itself (Content-Type,
 * syntax, an object) and its fields, each with pydantic's (FastAPI's)
 * problem for a missing field or a wrong JSON type at ["body", key].
 * Field rules (lengths, ranges, formats) are the domain's, not these.
 */
#ifndef OF_HDL_BODY_H
#define OF_HDL_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hdl_req;
struct of_verrs;

/* Body must be application/json (parameters allowed): else 415 is sent and
 * NULL returned. Empty: 422 missing. Malformed JSON: 422 json_invalid.
 * A body that is not an object: 422 type_error. On success the reference
 * stays the arena's (its cleanup is registered): the caller does not free it. */
json_t *hdl_json_body(struct hdl_req *r);

/* Reading one body field. Absent: a "missing" problem when required.
 * null or the wrong JSON type: a "type_error" problem. Returns FIELD_OK
 * with the value, else FIELD_ABSENT or FIELD_BAD. */
enum hdl_field { FIELD_ABSENT = 0, FIELD_OK, FIELD_BAD };
enum hdl_field hdl_field_str(json_t *body, const char *key, bool required, struct of_verrs *v,
                             const char **out, size_t *len);
enum hdl_field hdl_field_bool(json_t *body, const char *key, bool required, struct of_verrs *v,
                              bool *out);
/* A 64-bit integer (ids, quantities: bounds are the caller's); a real with
 * no fraction counts. */
enum hdl_field hdl_field_int(json_t *body, const char *key, bool required, struct of_verrs *v,
                             int64_t *out);
/* Money: "19.99" or 19.99 or 1e2; more than 2 places, other strings, or
 * beyond 99,999,999.99 is a value_error. */
enum hdl_field hdl_field_money(json_t *body, const char *key, bool required, struct of_verrs *v,
                               int64_t *cents);
/* The same as hdl_field_int over an already-fetched value, with a loc of
 * body, arr, idx, key for array members (arr NULL: body, key). */
enum hdl_field hdl_value_int(json_t *j, struct of_verrs *v, const char *arr, int idx,
                             const char *key, int64_t *out);

#endif
