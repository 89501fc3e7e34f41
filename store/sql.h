/*
 * sql.h -- helpers shared by the PostgreSQL repositories: timestamp
 * formatting in SQL, reading typed columns, mapping errors to OF_* codes.
 */
#ifndef OF_STORE_SQL_H
#define OF_STORE_SQL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/mem.h"
#include "store/pool.h"

/* RFC 3339 UTC with microseconds and Z, formatted by PostgreSQL. */
#define SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* Column readers: NULL-safe, copy into the arena. */
int64_t     sql_i64(const PGresult *r, int row, int col);
bool        sql_bool(const PGresult *r, int row, int col);
bool        sql_isnull(const PGresult *r, int row, int col);
const char *sql_str(struct of_mem *m, const PGresult *r, int row, int col);  /* NULL if SQL NULL */

/* OF_OK, or the OF_* code a failed statement maps to: unique violation →
 * OF_CONFLICT, check/not-null/fk → OF_INVALID, unavailable → OF_UNAVAILABLE,
 * anything else OF_ERR. */
int sql_rc(const struct pool_res *r);

/* Fills one item (of a repository's own type) from a result row. */
typedef void (*sql_row_fn)(struct of_mem *m, const PGresult *r, int row, void *item);

/* The items of a paged list statement (the `(SELECT count(*) ...) t LEFT JOIN
 * LATERAL (...) ON true` shape): an arena array of item_size-byte items, one
 * per row but the all-NULL row a page past the end yields; *total from column
 * total_col of the first row. */
void *sql_page_rows(struct of_mem *m, const PGresult *r, size_t item_size, sql_row_fn fill,
                    int total_col, size_t *n, int64_t *total);

/* The first row of a statement that yields at most one, as an arena item
 * of item_size bytes filled by fill; NULL with *rc the failure's code, or
 * missing_rc when there was no row. */
void *sql_one_row(struct of_mem *m, const struct pool_res *r, size_t item_size, sql_row_fn fill,
                  int missing_rc, int *rc);
/* sql_rc(), and OF_NOTFOUND for a statement that succeeded on no row. */
int sql_rc_found(const struct pool_res *r);

/* A LIKE pattern matching text that contains s literally: '%', '_' and
 * '\\' escaped (the default escape character), wrapped in '%'. */
const char *sql_like_contains(struct of_mem *m, const char *s);

/* Can a pg_trgm index narrow `LIKE '%q%'`? Only when q has a run of three
 * or more word characters (letters, digits, any non-ASCII character): a
 * shorter q yields no trigram, and the index would be read whole. */
bool sql_trgm_useful(const char *q);

/* The page parameters of a list statement (domain/page.h) into out, in the
 * order the statements take them: keyset after a row -- id, limit (id_sort)
 * or key, id, limit; otherwise limit, offset. Returns how many.
 * SQL_PAGE_GATED_COUNT: the statement reads `CASE WHEN offset >= 0 THEN
 * (count) END` and `OFFSET greatest(offset, 0)`, so the first keyset page
 * gets offset -1 and counts nothing (a keyset answer has no total). */
#define SQL_PAGE_ID_SORT      0x1u
#define SQL_PAGE_GATED_COUNT  0x2u
struct page_req;
int sql_page_params(struct of_mem *m, const struct page_req *pg, unsigned flags, const char **out);

/* Format an int64 as text into the arena, for a statement parameter. */
const char *sql_i64_param(struct of_mem *m, int64_t v);

#endif
