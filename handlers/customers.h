/*
 * customers.h -- /api/v1/customers: every authenticated user reads and
 * writes the shared customer base; deletion is admin-only.
 */
#ifndef OF_HDL_CUSTOMERS_H
#define OF_HDL_CUSTOMERS_H

#include "handlers/hdl.h"

void hdl_customers_list(struct hdl_req *r);
void hdl_customers_get(struct hdl_req *r);
void hdl_customers_create(struct hdl_req *r);
void hdl_customers_patch(struct hdl_req *r);
void hdl_customers_delete(struct hdl_req *r);

#endif
