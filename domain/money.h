/*
 * money.h -- money as exact integer cents (int64_t), parsed and formatted.
 *
 * Input money (prices, balances, amounts) is a string matching
 * ^-?[0-9]+(\.[0-9]{1,2})?$ or a JSON number, and is at most 99,999,999.99
 * in absolute value (MONEY_INPUT_MAX). Parsing never decides the sign rules
 * (price >= 0, amount > 0, balance >= 0 as 400): callers do.
 * Computed amounts (order totals) may exceed MONEY_INPUT_MAX; they use the
 * overflow-checked helpers below and are formatted like any other amount.
 * Pure C, no allocation, no libraries beyond libm.
 */
#ifndef OF_DOMAIN_MONEY_H
#define OF_DOMAIN_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/of.h"

#define MONEY_INPUT_MAX  INT64_C(9999999999)   /* 99,999,999.99 in cents */
#define MONEY_FMT_CAP    32                    /* "-92233720368547758.08" fits */

/* Parse failures; all map to 422 (value_error). OF_OK on success. */
enum money_rc {
    MONEY_E_FORMAT = -100,   /* not a decimal of the accepted shape */
    MONEY_E_PLACES = -101,   /* more than two decimal places */
    MONEY_E_RANGE  = -102,   /* |value| > 99,999,999.99 (or not finite) */
};

/* s[0..len) (need not be NUL-terminated) as a money string. "19.99" -> 1999,
 * "0.10" -> 10, "-0.01" -> -1, "7" -> 700. Refuses "", "1.", ".5", "+1",
 * " 1", "1e2", "1.234", "19.990". Returns OF_OK or a MONEY_E_* code; *cents
 * is written only on success. */
int money_parse_str(const char *s, size_t len, int64_t *cents);

/* A JSON real (jansson gives a double). Accepted when it is exactly the double
 * nearest to some amount with at most two decimals: 19.99 -> 1999,
 * 1e2 -> 10000, 0.1 -> 10; 1.234 -> MONEY_E_PLACES. A number written 19.990
 * parses to the same double as 19.99 and cannot be told apart: accepted. */
int money_from_json_real(double v, int64_t *cents);

/* A JSON integer: whole units. 100 -> 10000. */
int money_from_json_int(long long v, int64_t *cents);

/* A fixed message for a MONEY_E_* code, fit for a 422 "msg". */
const char *money_strerror(int rc);

/* "19.99", "-0.01", "0.10", "100.00"; any int64_t including INT64_MIN. */
void money_format(int64_t cents, char out[MONEY_FMT_CAP]);

/* *out = a + b, or OF_ERR on int64 overflow (out untouched). */
int money_add(int64_t a, int64_t b, int64_t *out);
/* *out = cents * qty, or OF_ERR on int64 overflow (out untouched). */
int money_mul_qty(int64_t cents, int64_t qty, int64_t *out);

#endif
