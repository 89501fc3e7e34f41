/*
 * orders.h -- /api/v1/orders (auth): create (Idempotency-Key honoured),
 * list, get, status transitions; delete (admin).
 */
#ifndef OF_HDL_ORDERS_H
#define OF_HDL_ORDERS_H

#include "handlers/hdl.h"

void hdl_orders_list(struct hdl_req *r);
void hdl_orders_get(struct hdl_req *r);
void hdl_orders_create(struct hdl_req *r);
void hdl_orders_status(struct hdl_req *r);
void hdl_orders_delete(struct hdl_req *r);

#endif
