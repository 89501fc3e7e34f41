/*
 * ops.c -- /health and /ready (static strings: no JSON building), and
 * /metrics (the text comes from the worker through svc->probe).
 */
#include "handlers/ops.h"
#include "handlers/services.h"

#include <string.h>

static const char health_body[] = "{\"status\":\"ok\"}";
static const char ready_body[] = "{\"status\":\"ready\",\"database\":\"ok\"}";
static const char down_body[] = "{\"status\":\"unavailable\",\"database\":\"down\"}";

void
hdl_health(struct hdl_req *r)
{
    r->io->send(r, 200, "application/json", health_body, sizeof(health_body) - 1);
}

void
hdl_ready(struct hdl_req *r)
{
    const struct hdl_ops_probe *p = &r->svc->probe;
    if (p->db_ready != NULL && p->db_ready(p->ctx)) {
        r->io->send(r, 200, "application/json", ready_body, sizeof(ready_body) - 1);
        return;
    }
    r->io->add_header(r, "Retry-After", "1");
    r->io->send(r, 503, "application/json", down_body, sizeof(down_body) - 1);
}

void
hdl_metrics(struct hdl_req *r)
{
    const struct hdl_ops_probe *p = &r->svc->probe;
    if (p->metrics_allowed == NULL || !p->metrics_allowed(p->ctx, r->client_ip)) {
        hdl_reply_error(r, 403, "Insufficient permissions");
        return;
    }
    if (p->metrics == NULL) {
        hdl_reply_error(r, 500, "Internal server error");
        return;
    }
    char  *text = NULL;
    size_t len = p->metrics(p->ctx, &text, r->mem);
    r->io->send(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
