/*
 * routes.c -- the route table (a wiring file: the one place a test-only
 * route may be compiled in).
 */
#include "worker/routes.h"
#include "worker/router.h"
#include "worker/testroutes.h"
#include "handlers/ops.h"
#include "handlers/docs.h"
#include "handlers/auth.h"
#include "handlers/products.h"
#include "handlers/orders.h"
#include "handlers/customers.h"
#include "handlers/bank.h"
#include "handlers/audit.h"
#include "handlers/webhooks.h"

static struct route table[] = {
    { HDL_GET,    "/health",                 RT_PUBLIC, 0,        hdl_health,        0 },
    { HDL_GET,    "/ready",                  RT_PUBLIC, 0,        hdl_ready,         0 },
    { HDL_GET,    "/metrics",                RT_PUBLIC, 0,        hdl_metrics,       0 },
    { HDL_GET,    "/openapi.json",           RT_PUBLIC, 0,        hdl_openapi,       0 },
    { HDL_GET,    "/docs",                   RT_PUBLIC, 0,        hdl_docs,          0 },
    { HDL_GET,    "/docs/swagger-ui-bundle.js", RT_PUBLIC, 0,     hdl_docs_bundle_js, 0 },
    { HDL_GET,    "/docs/swagger-ui.css",    RT_PUBLIC, 0,        hdl_docs_css,      0 },
    { HDL_POST,   "/api/v1/auth/register",   RT_PUBLIC, RT_REGISTER | RT_SMALL_BODY, hdl_auth_register, 0 },
    { HDL_POST,   "/api/v1/auth/login",      RT_PUBLIC, RT_LOGIN | RT_SMALL_BODY, hdl_auth_login, 0 },
    { HDL_GET,    "/api/v1/auth/me",         RT_USER,   0,        hdl_auth_me,       0 },
    { HDL_GET,    "/api/v1/users",           RT_ADMIN,  0,        hdl_users_list,    0 },
    { HDL_PATCH,  "/api/v1/users/{id}",      RT_ADMIN,  RT_WRITE, hdl_users_patch,   0 },
    { HDL_DELETE, "/api/v1/users/{id}",      RT_ADMIN,  RT_WRITE, hdl_users_delete,  0 },
    { HDL_GET,    "/api/v1/products",        RT_PUBLIC, 0,        hdl_products_list,   0 },
    { HDL_POST,   "/api/v1/products",        RT_ADMIN,  RT_WRITE, hdl_products_create, 0 },
    { HDL_GET,    "/api/v1/products/{id}",   RT_PUBLIC, 0,        hdl_products_get,    0 },
    { HDL_PATCH,  "/api/v1/products/{id}",   RT_ADMIN,  RT_WRITE, hdl_products_patch,  0 },
    { HDL_DELETE, "/api/v1/products/{id}",   RT_ADMIN,  RT_WRITE, hdl_products_delete, 0 },
    { HDL_GET,    "/api/v1/customers",       RT_USER,   0,        hdl_customers_list,   0 },
    { HDL_POST,   "/api/v1/customers",       RT_USER,   RT_WRITE, hdl_customers_create, 0 },
    { HDL_GET,    "/api/v1/customers/{id}",  RT_USER,   0,        hdl_customers_get,    0 },
    { HDL_PATCH,  "/api/v1/customers/{id}",  RT_USER,   RT_WRITE, hdl_customers_patch,  0 },
    { HDL_DELETE, "/api/v1/customers/{id}",  RT_ADMIN,  RT_WRITE, hdl_customers_delete, 0 },
    { HDL_GET,    "/api/v1/orders",             RT_USER,   0,        hdl_orders_list,   0 },
    { HDL_POST,   "/api/v1/orders",             RT_USER,   RT_WRITE, hdl_orders_create, 0 },
    { HDL_GET,    "/api/v1/orders/{id}",        RT_USER,   0,        hdl_orders_get,    0 },
    { HDL_PATCH,  "/api/v1/orders/{id}/status", RT_USER,   RT_WRITE, hdl_orders_status, 0 },
    { HDL_DELETE, "/api/v1/orders/{id}",        RT_ADMIN,  RT_WRITE, hdl_orders_delete, 0 },
    { HDL_GET,    "/api/v1/bank-accounts",      RT_USER,   0,        hdl_bank_list,     0 },
    { HDL_POST,   "/api/v1/bank-accounts",      RT_USER,   RT_WRITE, hdl_bank_create,   0 },
    { HDL_GET,    "/api/v1/bank-accounts/{id}", RT_USER,   0,        hdl_bank_get,      0 },
    { HDL_GET,    "/api/v1/bank-accounts/{id}/transfers", RT_USER, 0, hdl_bank_history, 0 },
    { HDL_POST,   "/api/v1/transfers",          RT_USER,   RT_WRITE, hdl_transfers_create, 0 },
    { HDL_GET,    "/api/v1/audit",              RT_ADMIN,  0,        hdl_audit_list,    0 },
    { HDL_GET,    "/api/v1/webhooks",           RT_ADMIN,  0,        hdl_webhooks_list,   0 },
    { HDL_POST,   "/api/v1/webhooks",           RT_ADMIN,  RT_WRITE, hdl_webhooks_create, 0 },
    { HDL_GET,    "/api/v1/webhooks/{id}",      RT_ADMIN,  0,        hdl_webhooks_get,    0 },
    { HDL_PATCH,  "/api/v1/webhooks/{id}",      RT_ADMIN,  RT_WRITE, hdl_webhooks_patch,  0 },
    { HDL_DELETE, "/api/v1/webhooks/{id}",      RT_ADMIN,  RT_WRITE, hdl_webhooks_delete, 0 },
    { HDL_GET,    "/api/v1/webhooks/{id}/deliveries", RT_ADMIN, 0,   hdl_webhooks_deliveries, 0 },
    { HDL_POST,   "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", RT_ADMIN, RT_WRITE,
      hdl_webhooks_retry, 0 },
#ifdef OF_TEST_ROUTES
    { HDL_GET,    "/__test/slow",            RT_PUBLIC, 0,        test_slow,         0 },
    { HDL_GET,    "/__test/sleep_db",        RT_PUBLIC, 0,        test_sleep_db,     0 },
    { HDL_GET,    "/__test/rl_park",         RT_PUBLIC, 0,        test_rl_park,      0 },
#endif
};

const struct route *
routes_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}
