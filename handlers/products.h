/*
 * products.h -- /api/v1/products: public reads, admin writes.
 */
#ifndef OF_HDL_PRODUCTS_H
#define OF_HDL_PRODUCTS_H

#include "handlers/hdl.h"

void hdl_products_list(struct hdl_req *r);
void hdl_products_get(struct hdl_req *r);
void hdl_products_create(struct hdl_req *r);
void hdl_products_patch(struct hdl_req *r);
void hdl_products_delete(struct hdl_req *r);

#endif
