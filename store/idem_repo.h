/*
 * idem_repo.h -- the PostgreSQL side of Idempotency-Key (domain/idem.h):
 * the key row lives in the same transaction as the operation's writes.
 *
 * Repositories whose writes run inside an idempotent run receive a
 * struct repo_tx * and talk through store_tx(tx) with pool_tx_query(); they
 * never commit or roll back (the run does).
 */
#ifndef OF_STORE_IDEM_REPO_H
#define OF_STORE_IDEM_REPO_H

#include <stddef.h>

#include "store/pool.h"
#include "domain/idem.h"

static inline pool_tx *store_tx(struct repo_tx *t) { return (pool_tx *)(void *)t; }
static inline struct repo_tx *store_repo_tx(pool_tx *t) { return (struct repo_tx *)(void *)t; }

extern const struct pool_stmt *const store_idem_stmts[];
extern const size_t store_idem_nstmts;
struct idem_repo store_idem_repo(pool *p);

#endif
