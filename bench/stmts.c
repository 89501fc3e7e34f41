/*
 * stmts.c -- print the SQL the server prepares, so the pgbench references
 * in bench/ run exactly the statements the repositories run (no copy of the
 * SQL that could drift from the repositories in store/).
 *
 *   stmts            one line per statement: NAME<TAB>NPARAMS<TAB>SQL
 *
 * Built by bench/run.sh against the static libraries of the server's build
 * (libof_store.a whole, for the statement tables).
 */
#include <stddef.h>
#include <stdio.h>

#include "store/idem_repo.h"
#include "store/repos.h"
#include "store/event_wake.h"

static void
dump(const struct pool_stmt *const *t, const size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        const struct pool_stmt *s = t[i];
        printf("%s\t%d\t", s->name, s->nparams);
        for (const char *c = s->sql; *c != '\0'; c++)
            putchar(*c == '\n' || *c == '\t' || *c == '\r' ? ' ' : *c);
        putchar('\n');
    }
}

int
main(void)
{
    dump(store_product_stmts, &store_product_nstmts);
    dump(store_customer_stmts, &store_customer_nstmts);
    dump(store_order_stmts, &store_order_nstmts);
    dump(store_idem_stmts, &store_idem_nstmts);
    dump(store_bank_stmts, &store_bank_nstmts);
    dump(store_user_stmts, &store_user_nstmts);
    dump(store_event_wake_stmts, &store_event_wake_nstmts);
    return ferror(stdout) ? 1 : 0;
}
