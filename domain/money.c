/*
 * money.c -- see money.h.
 *
 * The JSON-number path avoids tolerances: a double v is accepted when
 * r / 100.0 == v with r = v * 100 rounded to an integer, i.e. v is the double strtod would give for
 * that two-decimal amount. Within MONEY_INPUT_MAX (< 2^53 cents) the
 * division is correctly rounded, so this holds exactly for every valid
 * amount and for no double that needs a third decimal.
 */
#include "domain/money.h"

#include <math.h>   /* isfinite only: a macro, so no -lm needed */

static double
money_fabs(double x)
{
    return x < 0 ? -x : x;
}

int
money_parse_str(const char *s, size_t len, int64_t *cents)
{
    size_t i = 0;
    bool   neg = false;

    if (s == NULL || len == 0)
        return MONEY_E_FORMAT;
    if (s[0] == '-') {
        neg = true;
        i = 1;
    }
    size_t int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_end = i;
    if (int_end == int_start)
        return MONEY_E_FORMAT;

    size_t frac_start = len, frac_end = len;
    if (i < len) {
        if (s[i] != '.')
            return MONEY_E_FORMAT;
        frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_end = i;
        if (i != len || frac_end == frac_start)
            return MONEY_E_FORMAT;
        if (frac_end - frac_start > 2)
            return MONEY_E_PLACES;
    }

    /* Whole units; leading zeros allowed by the pattern, so skip them
     * before judging the magnitude. */
    int64_t units = 0;
    for (size_t k = int_start; k < int_end; k++) {
        units = units * 10 + (s[k] - '0');
        if (units > MONEY_INPUT_MAX / 100)
            return MONEY_E_RANGE;
    }
    int64_t frac = 0;
    size_t  nfrac = frac_end - frac_start;
    for (size_t k = frac_start; k < frac_end; k++)
        frac = frac * 10 + (s[k] - '0');
    if (nfrac == 1)
        frac *= 10;

    int64_t v = units * 100 + frac;
    if (v > MONEY_INPUT_MAX)
        return MONEY_E_RANGE;
    *cents = neg ? -v : v;
    return OF_OK;
}

int
money_from_json_real(double v, int64_t *cents)
{
    if (!isfinite(v) || money_fabs(v) >= 1e8)
        return MONEY_E_RANGE;
    /* |v * 100| < 1e10: the int64 conversion cannot overflow. Half-way
     * cases need not round exactly: the equality test below rejects them. */
    double x = v * 100.0;
    double r = (double)(int64_t)(x + (x < 0 ? -0.5 : 0.5));
    if (money_fabs(r) > (double)MONEY_INPUT_MAX)
        return MONEY_E_RANGE;
    if (r / 100.0 != v)
        return MONEY_E_PLACES;
    *cents = (int64_t)r;   /* -0.0 becomes 0 */
    return OF_OK;
}

int
money_from_json_int(long long v, int64_t *cents)
{
    if (v > MONEY_INPUT_MAX / 100 || v < -(MONEY_INPUT_MAX / 100))
        return MONEY_E_RANGE;
    *cents = (int64_t)v * 100;
    return OF_OK;
}

const char *
money_strerror(int rc)
{
    switch (rc) {
    case MONEY_E_FORMAT: return "Input should be a valid decimal";
    case MONEY_E_PLACES: return "Decimal input should have no more than 2 decimal places";
    case MONEY_E_RANGE:  return "Input should be at most 99999999.99 in absolute value";
    default:             return "Invalid amount";
    }
}

void
money_format(int64_t cents, char out[MONEY_FMT_CAP])
{
    /* Magnitude as unsigned so INT64_MIN needs no special case. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    char     tmp[MONEY_FMT_CAP];
    size_t   n = 0;

    tmp[n++] = (char)('0' + mag % 10);
    mag /= 10;
    tmp[n++] = (char)('0' + mag % 10);
    mag /= 10;
    tmp[n++] = '.';
    do {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag > 0);
    if (cents < 0)
        tmp[n++] = '-';

    for (size_t k = 0; k < n; k++)
        out[k] = tmp[n - 1 - k];
    out[n] = '\0';
}

int
money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return OF_ERR;
    *out = r;
    return OF_OK;
}

int
money_mul_qty(int64_t cents, int64_t qty, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(cents, qty, &r))
        return OF_ERR;
    *out = r;
    return OF_OK;
}
