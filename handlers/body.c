/*
 * body.c -- see body.h.
 */
#include "handlers/body.h"
#include "handlers/hdl.h"
#include "common/of.h"
#include "domain/money.h"

#include <string.h>
#include <strings.h>

static void
json_cleanup(void *p)
{
    json_decref(p);
}

/* application/json, optionally with parameters ("; charset=utf-8"). */
static bool
is_json_ctype(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

json_t *
hdl_json_body(struct hdl_req *r)
{
    struct of_verrs v;

    if (!is_json_ctype(r->io->header(r, "Content-Type"))) {
        hdl_reply_error(r, 415, "Unsupported media type");
        return NULL;
    }
    of_verrs_init(&v);
    if (r->body_len == 0) {
        of_verr_add(&v, OF_VE_MISSING, "Field required", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &err);
    if (j == NULL) {
        of_verr_add(&v, OF_VE_JSON, "JSON decode error", OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    of_mem_cleanup_add(r->mem, json_cleanup, j);
    if (!json_is_object(j)) {
        of_verr_add(&v, OF_VE_TYPE, "Input should be a valid dictionary or object",
                    OF_K("body"), OF_END);
        hdl_reply_verrs(r, &v);
        return NULL;
    }
    return j;
}

static enum hdl_field
field_get(json_t *body, const char *key, bool required, struct of_verrs *v, json_t **out)
{
    json_t *j = json_object_get(body, key);
    if (j == NULL) {
        if (required)
            of_verr_add(v, OF_VE_MISSING, "Field required", OF_K("body"), OF_K(key), OF_END);
        return FIELD_ABSENT;
    }
    *out = j;
    return FIELD_OK;
}

enum hdl_field
hdl_field_str(json_t *body, const char *key, bool required, struct of_verrs *v,
              const char **out, size_t *len)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (!json_is_string(j)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid string", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = json_string_value(j);
    *len = json_string_length(j);
    return FIELD_OK;
}

enum hdl_field
hdl_field_bool(json_t *body, const char *key, bool required, struct of_verrs *v, bool *out)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (!json_is_boolean(j)) {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid boolean", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = json_is_true(j);
    return FIELD_OK;
}

enum hdl_field
hdl_value_int(json_t *j, struct of_verrs *v, const char *arr, int idx, const char *key, int64_t *out)
{
    bool ok = json_is_integer(j);
    if (!ok && json_is_real(j)) {
        double d = json_real_value(j);
        /* range first: casting an out-of-range double (1e300) is UB */
        if (d > -9.2e18 && d < 9.2e18 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            return FIELD_OK;
        }
    }
    if (!ok) {
        if (arr != NULL)
            of_verr_add(v, OF_VE_TYPE, "Input should be a valid integer", OF_K("body"), OF_K(arr),
                        OF_I(idx), OF_K(key), OF_END);
        else
            of_verr_add(v, OF_VE_TYPE, "Input should be a valid integer", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    *out = (int64_t)json_integer_value(j);
    return FIELD_OK;
}

enum hdl_field
hdl_field_int(json_t *body, const char *key, bool required, struct of_verrs *v, int64_t *out)
{
    json_t *j;
    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    return hdl_value_int(j, v, NULL, -1, key, out);
}

enum hdl_field
hdl_field_money(json_t *body, const char *key, bool required, struct of_verrs *v, int64_t *cents)
{
    json_t *j;
    int     rc;

    if (field_get(body, key, required, v, &j) != FIELD_OK)
        return FIELD_ABSENT;
    if (json_is_string(j))
        rc = money_parse_str(json_string_value(j), json_string_length(j), cents);
    else if (json_is_integer(j))
        rc = money_from_json_int((long long)json_integer_value(j), cents);
    else if (json_is_real(j))
        rc = money_from_json_real(json_real_value(j), cents);
    else {
        of_verr_add(v, OF_VE_TYPE, "Input should be a valid decimal", OF_K("body"), OF_K(key), OF_END);
        return FIELD_BAD;
    }
    if (rc == OF_OK)
        return FIELD_OK;
    const char *msg = rc == MONEY_E_PLACES ? "Decimal input should have no more than 2 decimal places"
                    : rc == MONEY_E_RANGE  ? "Input should be less than or equal to 99999999.99"
                    : "Input should be a valid decimal";
    of_verr_add(v, OF_VE_VALUE, msg, OF_K("body"), OF_K(key), OF_END);
    return FIELD_BAD;
}
