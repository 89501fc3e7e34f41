/*
 * ops.h -- operations endpoints: /health (never touches the database),
 * /ready (this worker's pool state), /metrics (Prometheus text, only for
 * clients in metrics.allow, else 403).
 */
#ifndef OF_HDL_OPS_H
#define OF_HDL_OPS_H

#include "handlers/hdl.h"

void hdl_health(struct hdl_req *r);
void hdl_ready(struct hdl_req *r);
void hdl_metrics(struct hdl_req *r);

#endif
