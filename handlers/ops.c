/*
 * ops.c -- /health and /ready (fixed shapes, no JSON building), and
 * /metrics (the text comes from the worker through svc->probe). /ready
 * names the role of the node the pool is connected to ("primary", or
 * "standby" if database.url reaches one without target_session_attrs) and,
 * with read replicas configured, their state ("ok", "lagging", "down").
 */
#include "handlers/ops.h"
#include "handlers/services.h"

#include <stdio.h>
#include <string.h>

static const char health_body[] = "{\"status\":\"ok\"}";
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
        const char *role = p->db_role != NULL ? p->db_role(p->ctx) : NULL;
        const char *rep = p->replica != NULL ? p->replica(p->ctx) : NULL;
        char body[128];
        int n = snprintf(body, sizeof(body),
                         "{\"status\":\"ready\",\"database\":\"ok\",\"role\":\"%s\"%s%s%s}",
                         role != NULL ? role : "primary", rep != NULL ? ",\"replica\":\"" : "",
                         rep != NULL ? rep : "", rep != NULL ? "\"" : "");
        r->io->send(r, 200, "application/json", body, (size_t)n);
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
