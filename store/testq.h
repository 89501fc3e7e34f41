/*
 * testq.h -- statements used only by test routes (OF_TEST_ROUTES builds).
 *
 * pool_stmt_test_sleep: SELECT pg_sleep($1::float8 / 1000) -- $1 is
 * milliseconds as text. Holds one pool connection for that long; the e2e
 * pool tests use it to fill the pool and provoke queue timeouts. Like every
 * statement, it must be listed in the table given to pool_create().
 */
#ifndef OF_TESTQ_H
#define OF_TESTQ_H

#include "store/pool.h"

extern const struct pool_stmt pool_stmt_test_sleep;

#endif
