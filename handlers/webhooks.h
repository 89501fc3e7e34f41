/*
 * webhooks.h -- /api/v1/webhooks (admin): subscriptions, their deliveries
 * and the manual retry of one (API.md, Events: Webhooks).
 */
#ifndef OF_HDL_WEBHOOKS_H
#define OF_HDL_WEBHOOKS_H

#include "handlers/hdl.h"

void hdl_webhooks_list(struct hdl_req *r);
void hdl_webhooks_create(struct hdl_req *r);
void hdl_webhooks_get(struct hdl_req *r);
void hdl_webhooks_patch(struct hdl_req *r);
void hdl_webhooks_delete(struct hdl_req *r);
void hdl_webhooks_deliveries(struct hdl_req *r);
void hdl_webhooks_retry(struct hdl_req *r);

#endif
