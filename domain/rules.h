/*
 * rules.h -- field rules shared by resources (API.md), free of I/O.
 *
 * Each check returns OF_OK or a RULES_E_* code; rules_strerror() gives the
 * fixed 422 "msg" for a code, rules_text_msg() the one for a length bound.
 * Messages are those of API.md where it names one, else FastAPI/pydantic's
 * wording. Inputs are (pointer, length) pairs and need not be
 * NUL-terminated; nothing here allocates except rules_text_msg (in m).
 */
#ifndef OF_DOMAIN_RULES_H
#define OF_DOMAIN_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mem.h"
#include "common/of.h"
#include "domain/verr.h"

enum rules_rc {
    RULES_E_UTF8           = -200,   /* not valid UTF-8 (or has NUL) */
    RULES_E_TOO_SHORT      = -201,   /* text under its minimum, after trimming */
    RULES_E_TOO_LONG       = -202,   /* text over its maximum, after trimming */
    RULES_E_EMAIL          = -203,   /* not shaped like an email */
    RULES_E_EMAIL_LONG     = -204,   /* over 254 characters */
    RULES_E_PASSWORD_SHORT = -205,   /* under 8 characters */
    RULES_E_PASSWORD_LONG  = -206,   /* over 128 characters */
    RULES_E_TIER           = -207,
    RULES_E_STATUS         = -208,
    RULES_E_ROLE           = -209,
    RULES_E_IDEM_KEY       = -210,
    RULES_E_MIN1           = -211,   /* an integer that must be >= 1 */
    RULES_E_MAX100         = -212,   /* an integer that must be <= 100 */
};

#define RULES_EMAIL_MAX       254                     /* characters */
#define RULES_EMAIL_BUFSZ     (RULES_EMAIL_MAX * 4 + 1) /* bytes, worst-case UTF-8 */
#define RULES_PASSWORD_MIN    8
#define RULES_PASSWORD_MAX    128
#define RULES_NAME_MAX        200                     /* product, customer */
#define RULES_NOTES_MAX       500                     /* order notes */
#define RULES_IDEM_KEY_MAX    255
#define RULES_PAGE_SIZE_MAX   100
#define RULES_PAGE_SIZE_DEFAULT 20
#define RULES_ORDER_QTY_MAX   20                      /* sum of quantities */

#define RULES_MSG_QTY_POSITIVE  "Quantity must be positive"
#define RULES_MSG_ITEM_LIMIT    "Order item limit exceeded"
#define RULES_MSG_DUP_PRODUCT   "Duplicate product in order"

/* The fixed message for a RULES_E_* code (string literal). */
const char *rules_strerror(int rc);

/* Trims s[0..len) (ASCII whitespace, see of_trim) and checks that the rest is
 * valid UTF-8 of min..max Unicode characters. On OF_OK, *out and *outlen are the
 * trimmed range inside s; else RULES_E_UTF8, RULES_E_TOO_SHORT or
 * RULES_E_TOO_LONG. */
int rules_text(const char *s, size_t len, size_t min, size_t max,
               const char **out, size_t *outlen);
/* pydantic's wording for a rules_text failure, e.g. "String should have at
 * most 200 characters", allocated in m. */
const char *rules_text_msg(struct of_mem *m, int rc, size_t min, size_t max);

/* Email (API.md, Auth): trimmed; at most 254 characters; exactly one '@' with
 * a non-empty local part and a domain with a dot neither first nor last; no
 * whitespace or control characters. On OF_OK out (cap >= RULES_EMAIL_BUFSZ is
 * always enough) holds the trimmed, ASCII lower-cased, NUL-terminated form
 * and *outlen its length. Returns OF_OK, RULES_E_EMAIL, RULES_E_EMAIL_LONG,
 * or OF_ERR if cap is too small (a bug in the caller). */
int rules_email(const char *s, size_t len, char *out, size_t cap, size_t *outlen);

/* Password: 8..128 Unicode characters, not trimmed. OF_OK,
 * RULES_E_PASSWORD_SHORT, RULES_E_PASSWORD_LONG or RULES_E_UTF8. */
int rules_password(const char *s, size_t len);

enum rules_tier { RULES_TIER_FREE = 0, RULES_TIER_PRO, RULES_TIER_ENTERPRISE };
enum rules_role { RULES_ROLE_USER = 0, RULES_ROLE_ADMIN };
enum rules_status {
    RULES_STATUS_PENDING = 0,
    RULES_STATUS_PROCESSING,
    RULES_STATUS_SHIPPED,
    RULES_STATUS_DELIVERED,
    RULES_STATUS_CANCELLED,
};
#define RULES_STATUS_COUNT 5

/* Exact, case-sensitive names. OF_OK or RULES_E_TIER / _ROLE / _STATUS. */
int rules_tier_parse(const char *s, size_t len, enum rules_tier *out);
int rules_role_parse(const char *s, size_t len, enum rules_role *out);
int rules_status_parse(const char *s, size_t len, enum rules_status *out);
/* "free", "admin", "pending", ...; "?" for a value outside the enum. */
const char *rules_tier_name(enum rules_tier t);
const char *rules_role_name(enum rules_role r);
const char *rules_status_name(enum rules_status s);

/* The order state machine: pending->processing|cancelled,
 * processing->shipped|cancelled, shipped->delivered. Anything else,
 * including from == to, is refused (409). */
bool rules_transition_ok(enum rules_status from, enum rules_status to);
/* "Invalid transition: delivered -> pending" into out. */
#define RULES_TRANSITION_DETAIL_CAP 64
void rules_transition_detail(enum rules_status from, enum rules_status to,
                             char out[RULES_TRANSITION_DETAIL_CAP]);

/* Idempotency-Key header value: 1..255 chars, each 0x20..0x7e.
 * OF_OK or RULES_E_IDEM_KEY (422, loc ["header","Idempotency-Key"]). */
int rules_idem_key(const char *s, size_t len);

/* Fingerprint of a request for idempotency: SHA-256 hex of method, path and
 * the canonical body (the caller serialises the JSON value with sorted keys
 * and no whitespace, so equal values give equal fingerprints). Each part is
 * length-framed. canonical_body may be NULL for no body. */
void rules_fingerprint(const char *method, const char *path,
                       const char *canonical_body, char out[65]);

/* Paging bounds: page >= 1; 1 <= page_size <= 100. OF_OK, RULES_E_MIN1 or
 * RULES_E_MAX100. */
int rules_page(int64_t page);
int rules_page_size(int64_t page_size);
/* Both checks, each failure appended to v as a value_error at
 * ["query","page"] / ["query","page_size"]. Returns OF_OK or OF_INVALID. */
int rules_paging_check(int64_t page, int64_t page_size, struct of_verrs *v);
/* ceil(total / page_size), 0 for total <= 0; page_size must be >= 1. */
int64_t rules_total_pages(int64_t total, int64_t page_size);
/* (page - 1) * page_size, saturated at INT64_MAX for absurd pages (a page
 * past the end is simply empty). Valid page and page_size expected. */
int64_t rules_page_offset(int64_t page, int64_t page_size);

#endif
