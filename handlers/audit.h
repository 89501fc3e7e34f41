/*
 * audit.h -- GET /api/v1/audit (admin): the audit log, paged, newest first.
 */
#ifndef OF_HDL_AUDIT_H
#define OF_HDL_AUDIT_H

#include "handlers/hdl.h"

void hdl_audit_list(struct hdl_req *r);

#endif
