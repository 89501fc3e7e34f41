/*
 * sql.c -- see sql.h.
 */
#include "store/sql.h"
#include "domain/page.h"
#include "common/log.h"
#include "common/util.h"

#include <string.h>

int64_t
sql_i64(const PGresult *r, int row, int col)
{
    int64_t v = 0;
    const char *s = PQgetvalue(r, row, col);
    if (PQgetisnull(r, row, col) || of_parse_i64(s, strlen(s), INT64_MIN, INT64_MAX, &v) != 0)
        return 0;
    return v;
}

bool
sql_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

bool
sql_isnull(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) != 0;
}

const char *
sql_str(struct of_mem *m, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return of_mem_strndup(m, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

int
sql_rc(const struct pool_res *r)
{
    if (r->rc == OF_OK)
        return OF_OK;
    if (r->rc == OF_UNAVAILABLE)
        return OF_UNAVAILABLE;
    const char *st = r->sqlstate;
    if (st == NULL)
        return OF_ERR;
    if (strcmp(st, "23505") == 0)
        return OF_CONFLICT;
    if (strncmp(st, "23", 2) == 0)
        return OF_INVALID;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return OF_CONFLICT;
    if (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57014") == 0)
        return OF_UNAVAILABLE;
    of_log_error("statement failed: sqlstate %s", st);
    return OF_ERR;
}

void *
sql_page_rows(struct of_mem *m, const PGresult *r, size_t item_size, sql_row_fn fill,
              int total_col, size_t *n, int64_t *total)
{
    int   rows = PQntuples(r);
    char *items = of_mem_calloc(m, item_size * (size_t)(rows > 0 ? rows : 1));
    size_t k = 0;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(r, i, 0))
            fill(m, r, i, items + item_size * k++);
    *n = k;
    *total = rows > 0 ? sql_i64(r, 0, total_col) : 0;
    return items;
}

void *
sql_one_row(struct of_mem *m, const struct pool_res *r, size_t item_size, sql_row_fn fill,
            int missing_rc, int *rc)
{
    *rc = sql_rc(r);
    if (*rc != OF_OK)
        return NULL;
    if (PQntuples(r->res) == 0) {
        *rc = missing_rc;
        return NULL;
    }
    void *item = of_mem_calloc(m, item_size);
    fill(m, r->res, 0, item);
    return item;
}

int
sql_rc_found(const struct pool_res *r)
{
    int rc = sql_rc(r);
    return rc == OF_OK && PQntuples(r->res) == 0 ? OF_NOTFOUND : rc;
}

const char *
sql_i64_param(struct of_mem *m, int64_t v)
{
    return of_mem_printf(m, "%lld", (long long)v);
}

const char *
sql_like_contains(struct of_mem *m, const char *s)
{
    size_t len = strlen(s);
    char  *out = of_mem_alloc(m, 2 * len + 3);
    size_t o = 0;

    out[o++] = '%';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
            out[o++] = '\\';
        out[o++] = s[i];
    }
    out[o++] = '%';
    out[o] = '\0';
    return out;
}

int
sql_page_params(struct of_mem *m, const struct page_req *pg, unsigned flags, const char **out)
{
    int n = 0;
    if (!pg->after) {
        out[n++] = sql_i64_param(m, pg->limit);
        out[n++] = pg->keyset && (flags & SQL_PAGE_GATED_COUNT) ? "-1" : sql_i64_param(m, pg->offset);
        return n;
    }
    if (!(flags & SQL_PAGE_ID_SORT))
        out[n++] = pg->after_key != NULL ? pg->after_key : "";
    out[n++] = sql_i64_param(m, pg->after_id);
    out[n++] = sql_i64_param(m, pg->limit);
    return n;
}

bool
sql_trgm_useful(const char *q)
{
    int run = 0;
    for (const unsigned char *p = (const unsigned char *)q; *p != '\0'; p++) {
        if ((*p & 0xc0) == 0x80)
            continue;                     /* a continuation byte: same character */
        bool word = *p >= 0x80 || (*p >= '0' && *p <= '9')
                    || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z');
        run = word ? run + 1 : 0;
        if (run >= 3)
            return true;
    }
    return false;
}
