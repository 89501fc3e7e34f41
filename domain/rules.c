/*
 * rules.c -- see rules.h.
 */
#include "domain/rules.h"

#include <stdio.h>
#include <string.h>

#include "common/hash.h"
#include "common/util.h"

static const char *const tier_names[] = { "free", "pro", "enterprise" };
static const char *const role_names[] = { "user", "admin" };
static const char *const status_names[RULES_STATUS_COUNT] = {
    "pending", "processing", "shipped", "delivered", "cancelled",
};

/* allowed[from][to] */
static const bool transitions[RULES_STATUS_COUNT][RULES_STATUS_COUNT] = {
    [RULES_STATUS_PENDING]    = { [RULES_STATUS_PROCESSING] = true,
                                  [RULES_STATUS_CANCELLED]  = true },
    [RULES_STATUS_PROCESSING] = { [RULES_STATUS_SHIPPED]    = true,
                                  [RULES_STATUS_CANCELLED]  = true },
    [RULES_STATUS_SHIPPED]    = { [RULES_STATUS_DELIVERED]  = true },
};

const char *
rules_strerror(int rc)
{
    switch (rc) {
    case RULES_E_UTF8:           return "Input should be a valid UTF-8 string";
    case RULES_E_TOO_SHORT:      return "String is too short";
    case RULES_E_TOO_LONG:       return "String is too long";
    case RULES_E_EMAIL:          return "value is not a valid email address";
    case RULES_E_EMAIL_LONG:     return "Email must be at most 254 characters";
    case RULES_E_PASSWORD_SHORT: return "Password must be at least 8 characters";
    case RULES_E_PASSWORD_LONG:  return "Password must be at most 128 characters";
    case RULES_E_TIER:           return "Input should be 'free', 'pro' or 'enterprise'";
    case RULES_E_ROLE:           return "Input should be 'user' or 'admin'";
    case RULES_E_STATUS:
        return "Input should be 'pending', 'processing', 'shipped', 'delivered' or 'cancelled'";
    case RULES_E_IDEM_KEY:
        return "Idempotency-Key must be 1 to 255 printable ASCII characters";
    case RULES_E_MIN1:           return "Input should be greater than or equal to 1";
    case RULES_E_MAX100:         return "Input should be less than or equal to 100";
    default:                     return "Invalid value";
    }
}

int
rules_text(const char *s, size_t len, size_t min, size_t max,
           const char **out, size_t *outlen)
{
    const char *p = s;
    size_t      n = len;

    of_trim(&p, &n);
    long chars = of_utf8_len(p, n);
    if (chars < 0)
        return RULES_E_UTF8;
    if ((size_t)chars < min)
        return RULES_E_TOO_SHORT;
    if ((size_t)chars > max)
        return RULES_E_TOO_LONG;
    *out = p;
    *outlen = n;
    return OF_OK;
}

const char *
rules_text_msg(struct of_mem *m, int rc, size_t min, size_t max)
{
    if (rc == RULES_E_TOO_SHORT)
        return of_mem_printf(m, "String should have at least %zu character%s",
                             min, min == 1 ? "" : "s");
    if (rc == RULES_E_TOO_LONG)
        return of_mem_printf(m, "String should have at most %zu character%s",
                             max, max == 1 ? "" : "s");
    return rules_strerror(rc);
}

/* Shape of an already trimmed email; see rules.h. */
static bool
email_shape_ok(const char *p, size_t n)
{
    size_t at = n;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
        if (c == '@') {
            if (at != n)
                return false;   /* a second '@' */
            at = i;
        }
    }
    if (at == n || at == 0)
        return false;
    const char *dom = p + at + 1;
    size_t      dlen = n - at - 1;
    if (dlen < 3 || dom[0] == '.' || dom[dlen - 1] == '.')
        return false;
    return memchr(dom, '.', dlen) != NULL;
}

int
rules_email(const char *s, size_t len, char *out, size_t cap, size_t *outlen)
{
    const char *p = s;
    size_t      n = len;

    of_trim(&p, &n);
    long chars = of_utf8_len(p, n);
    if (chars < 0)
        return RULES_E_EMAIL;
    if (chars > RULES_EMAIL_MAX)
        return RULES_E_EMAIL_LONG;
    if (!email_shape_ok(p, n))
        return RULES_E_EMAIL;
    if (cap < n + 1)
        return OF_ERR;
    memcpy(out, p, n);
    out[n] = '\0';
    of_ascii_lower(out);
    *outlen = n;
    return OF_OK;
}

int
rules_password(const char *s, size_t len)
{
    long chars = of_utf8_len(s, len);

    if (chars < 0)
        return RULES_E_UTF8;
    if (chars < RULES_PASSWORD_MIN)
        return RULES_E_PASSWORD_SHORT;
    if (chars > RULES_PASSWORD_MAX)
        return RULES_E_PASSWORD_LONG;
    return OF_OK;
}

/* Index of s[0..len) in names[0..n), or -1. */
static int
name_index(const char *const *names, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return (int)i;
    return -1;
}

int
rules_tier_parse(const char *s, size_t len, enum rules_tier *out)
{
    int i = name_index(tier_names, OF_ARRAY_LEN(tier_names), s, len);
    if (i < 0)
        return RULES_E_TIER;
    *out = (enum rules_tier)i;
    return OF_OK;
}

int
rules_role_parse(const char *s, size_t len, enum rules_role *out)
{
    int i = name_index(role_names, OF_ARRAY_LEN(role_names), s, len);
    if (i < 0)
        return RULES_E_ROLE;
    *out = (enum rules_role)i;
    return OF_OK;
}

int
rules_status_parse(const char *s, size_t len, enum rules_status *out)
{
    int i = name_index(status_names, OF_ARRAY_LEN(status_names), s, len);
    if (i < 0)
        return RULES_E_STATUS;
    *out = (enum rules_status)i;
    return OF_OK;
}

const char *
rules_tier_name(enum rules_tier t)
{
    return (unsigned)t < OF_ARRAY_LEN(tier_names) ? tier_names[t] : "?";
}

const char *
rules_role_name(enum rules_role r)
{
    return (unsigned)r < OF_ARRAY_LEN(role_names) ? role_names[r] : "?";
}

const char *
rules_status_name(enum rules_status s)
{
    return (unsigned)s < OF_ARRAY_LEN(status_names) ? status_names[s] : "?";
}

bool
rules_transition_ok(enum rules_status from, enum rules_status to)
{
    if ((unsigned)from >= RULES_STATUS_COUNT || (unsigned)to >= RULES_STATUS_COUNT)
        return false;
    return transitions[from][to];
}

void
rules_transition_detail(enum rules_status from, enum rules_status to,
                        char out[RULES_TRANSITION_DETAIL_CAP])
{
    snprintf(out, RULES_TRANSITION_DETAIL_CAP, "Invalid transition: %s -> %s",
             rules_status_name(from), rules_status_name(to));
}

int
rules_idem_key(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > RULES_IDEM_KEY_MAX)
        return RULES_E_IDEM_KEY;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return RULES_E_IDEM_KEY;
    return OF_OK;
}

void
rules_fingerprint(const char *method, const char *path,
                  const char *canonical_body, char out[65])
{
    const void *parts[3] = { method, path, canonical_body };
    size_t      lens[3] = {
        method ? strlen(method) : 0,
        path ? strlen(path) : 0,
        canonical_body ? strlen(canonical_body) : 0,
    };

    of_sha256_hex_parts(parts, lens, 3, out);
}

int
rules_page(int64_t page)
{
    return page >= 1 ? OF_OK : RULES_E_MIN1;
}

int
rules_page_size(int64_t page_size)
{
    if (page_size < 1)
        return RULES_E_MIN1;
    if (page_size > RULES_PAGE_SIZE_MAX)
        return RULES_E_MAX100;
    return OF_OK;
}

int
rules_paging_check(int64_t page, int64_t page_size, struct of_verrs *v)
{
    int rc_page = rules_page(page);
    int rc_size = rules_page_size(page_size);

    if (rc_page != OF_OK)
        of_verr_add(v, OF_VE_VALUE, rules_strerror(rc_page),
                    OF_K("query"), OF_K("page"), OF_END);
    if (rc_size != OF_OK)
        of_verr_add(v, OF_VE_VALUE, rules_strerror(rc_size),
                    OF_K("query"), OF_K("page_size"), OF_END);
    return rc_page == OF_OK && rc_size == OF_OK ? OF_OK : OF_INVALID;
}

int64_t
rules_total_pages(int64_t total, int64_t page_size)
{
    if (total <= 0 || page_size <= 0)
        return 0;
    return total / page_size + (total % page_size != 0);
}

int64_t
rules_page_offset(int64_t page, int64_t page_size)
{
    int64_t off;

    if (page <= 1 || page_size <= 0)
        return 0;
    if (__builtin_mul_overflow(page - 1, page_size, &off))
        return INT64_MAX;
    return off;
}
