/*
 * testq.h -- statements used only by the test-only routes (see
 * worker/testroutes.h). They are harmless in production: nothing routes to
 * them unless the binary was built with OF_TEST_ROUTES.
 */
#ifndef OF_STORE_TESTQ_H
#define OF_STORE_TESTQ_H

#include <stddef.h>

#include "store/pool.h"

extern const struct pool_stmt pool_stmt_test_sleep;    /* SELECT pg_sleep($1) */
extern const struct pool_stmt *const store_test_stmts[];
extern const size_t store_test_nstmts;

#endif
