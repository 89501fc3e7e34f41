/*
 * testq.c -- statements for test-only routes (see testq.h). Harmless in a
 * production build: nothing calls them unless OF_TEST_ROUTES wires a route.
 */
#include "store/testq.h"

const struct pool_stmt pool_stmt_test_sleep = {
    "test_sleep", "SELECT pg_sleep($1::float8 / 1000)", 1, 0,
};
