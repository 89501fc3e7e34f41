/*
 * testq.c -- see testq.h.
 */
#include "store/testq.h"

const struct pool_stmt pool_stmt_test_sleep = {
    "test_sleep", "SELECT pg_sleep($1::float8)", 1 };

const struct pool_stmt *const store_test_stmts[] = { &pool_stmt_test_sleep };
const size_t store_test_nstmts = 1;
