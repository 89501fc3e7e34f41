/*
 * ops.h -- operations endpoints: /health (never touches the database) and
 * /ready (this worker's pool state).
 */
#ifndef OF_HDL_OPS_H
#define OF_HDL_OPS_H

#include "handlers/hdl.h"

void hdl_health(struct hdl_req *r);
void hdl_ready(struct hdl_req *r);

#endif
