/*
 * services.h -- what the worker hands every handler: the domain services,
 * already wired to their repositories (PostgreSQL in production, in-memory
 * fakes in unit tests). Handlers never know which.
 */
#ifndef OF_HDL_SERVICES_H
#define OF_HDL_SERVICES_H

#include <stdbool.h>
#include <stddef.h>

struct product_svc;
struct customer_svc;
struct auth_svc;
struct order_svc;
struct bank_svc;
struct audit_svc;
struct cache;
struct webhook_svc;

struct hdl_ops_probe {
    bool (*db_ready)(void *ctx);               /* this worker's pool can reach PostgreSQL */
    /* The node that pool is on: "primary", "standby", or NULL (unknown). */
    const char *(*db_role)(void *ctx);
    /* Replicas (database.replica_url): "ok" (serving catalog reads),
     * "lagging", "down"; NULL when none are configured. */
    const char *(*replica)(void *ctx);
    /* Prometheus text for /metrics into buf; returns its length. */
    size_t (*metrics)(void *ctx, char **out, void *mem);
    /* May this resolved client address read /metrics (metrics.allow)? */
    bool (*metrics_allowed)(void *ctx, const char *client_ip);
    void *ctx;
};

struct hdl_limits {
    /* per-username login limit; true = allowed, else *retry_after seconds */
    bool (*login_user)(void *ctx, const char *username, int *retry_after);
    void *ctx;
};

struct hdl_services {
    struct hdl_limits     limits;
    struct hdl_ops_probe  probe;
    struct auth_svc      *auth;
    struct product_svc   *products;
    struct customer_svc  *customers;
    struct order_svc     *orders;
    struct bank_svc      *bank;
    struct audit_svc     *audit;
    struct cache         *product_cache;   /* NULL: no cache (cache.enabled = false) */
    struct webhook_svc   *webhooks;
    bool                  allow_registration;
    long                  token_ttl;
};

#endif
