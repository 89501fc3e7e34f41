/*
 * repos.h -- the PostgreSQL implementations of the domain's repository
 * interfaces. Each repository's statements are listed in its *_stmts table;
 * the worker hands all of them to pool_create() so they are prepared once
 * per connection.
 */
#ifndef OF_STORE_REPOS_H
#define OF_STORE_REPOS_H

#include <stddef.h>
#include <stdint.h>

#include "store/pool.h"
#include "domain/user.h"
#include "domain/product.h"
#include "domain/customer.h"
#include "domain/order.h"
#include "domain/bank.h"
#include "domain/audit.h"
#include "domain/webhook.h"

extern const struct pool_stmt *const store_user_stmts[];
extern const size_t store_user_nstmts;
struct user_repo store_user_repo(pool *p);
/* The same INSERT as user_repo's create, blocking, for `orderflow user
 * create` (master/cli_user.c). OF_OK with the new id; OF_CONFLICT when the
 * email is taken; OF_ERR with why in err (ends in a newline). */
struct pgblock_target;
int store_user_create_now(const struct pgblock_target *db, const char *email, const char *hash,
                          const char *role, int64_t *id, char *err, size_t cap);

extern const struct pool_stmt *const store_product_stmts[];
extern const size_t store_product_nstmts;
/* Public catalog reads (get, list, search) go where rt says (the replica
 * while its lag allows, store/replica.h) and come back with may_lag set
 * when they came from the replica; writes go to the primary. */
struct replica_route;
struct product_repo store_product_repo(struct replica_route *rt);
/* The statements a replica pool needs: catalog reads and the lag probe. */
extern const struct pool_stmt *const store_catalog_stmts[];
extern const size_t store_catalog_nstmts;

extern const struct pool_stmt *const store_customer_stmts[];
extern const size_t store_customer_nstmts;
struct customer_repo store_customer_repo(pool *p);

/* orders; their creates use the idempotency repository (store/idem_repo.h) */
extern const struct pool_stmt *const store_order_stmts[];
extern const size_t store_order_nstmts;
struct order_repo store_order_repo(pool *p);

extern const struct pool_stmt *const store_bank_stmts[];
extern const size_t store_bank_nstmts;
struct bank_repo store_bank_repo(pool *p);

extern const struct pool_stmt *const store_audit_stmts[];
extern const size_t store_audit_nstmts;
struct audit_repo store_audit_repo(pool *p);

extern const struct pool_stmt *const store_webhook_stmts[];
extern const size_t store_webhook_nstmts;
struct webhook_repo store_webhook_repo(pool *p);

#endif
