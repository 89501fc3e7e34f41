/*
 * fuzz_query.c -- libFuzzer target for the query-string and form parsing
 * every handler shares (handlers/query.h): hdl_form_value, hdl_query,
 * hdl_query_int, hdl_query_bool, hdl_paging.
 *
 * Input: the raw query string (or x-www-form-urlencoded body).
 * Properties: no read past the input; a decoded value is valid UTF-8 without
 * NUL (it goes to PostgreSQL as text, where invalid bytes are an error) and
 * never longer than 3x its encoded form; integer parameters are accepted only
 * within their bounds, and a rejected one leaves a problem at ["query", key].
 * Build and run: tests/fuzz/build.sh, tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "handlers/hdl.h"         /* struct hdl_req */
#include "handlers/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = { "q", "page", "page_size", "sort", "in_stock", "username",
                                    "password", "", "=", "%", "a b", "tier" };

static void
check_value(const char *v, size_t srclen)
{
    if (v == NULL)
        return;
    size_t n = strlen(v);
    if (of_utf8_len(v, n) < 0 || n > 3 * srclen)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);        /* exact size + NUL, as the worker has it */
    memcpy(s, data, size);
    s[size] = '\0';

    struct of_mem m;
    of_mem_init(&m);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        check_value(hdl_form_value(&m, s, size, keys[i]), size);

    /* hdl_query reads r->query as a C string: stop at an embedded NUL */
    struct hdl_req r;
    memset(&r, 0, sizeof(r));
    r.mem = &m;
    r.query = s;
    struct of_verrs v;
    of_verrs_init(&v);
    int64_t x = 0;
    int     b = 0;
    struct hdl_page pg;
    memset(&pg, 0, sizeof(pg));
    hdl_paging(&r, &v, &pg);
    /* whatever the input: page mode keeps its bounds, cursor mode its limit */
    if (!pg.by_cursor && (pg.page < 1 || pg.page > INT32_MAX || pg.page_size < 1 || pg.page_size > 100))
        abort();
    if (pg.by_cursor && (pg.limit < 1 || pg.limit > 100))
        abort();
    size_t before = v.n;
    bool   given = hdl_query(&r, "page") != NULL;
    if (!hdl_query_int(&r, &v, "page", 0, -5, 5, "bound", &x)) {
        if (!given || v.n != before + 1 || x != 0)
            abort();
    } else if (x < -5 || x > 5 || (!given && x != 0)) {
        abort();
    }
    if (hdl_query_bool(&r, &v, "in_stock", &b) && (b < -1 || b > 1))
        abort();
    check_value(hdl_query(&r, "q"), size);

    of_mem_release(&m);
    free(s);
    return 0;
}
