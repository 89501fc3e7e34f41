/*
 * bank.h -- /api/v1/bank-accounts and /api/v1/transfers (authenticated).
 */
#ifndef OF_HDL_BANK_H
#define OF_HDL_BANK_H

#include "handlers/hdl.h"

void hdl_bank_create(struct hdl_req *r);
void hdl_bank_list(struct hdl_req *r);
void hdl_bank_get(struct hdl_req *r);
void hdl_bank_history(struct hdl_req *r);
void hdl_transfers_create(struct hdl_req *r);

#endif
