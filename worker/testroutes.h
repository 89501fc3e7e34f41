/*
 * testroutes.h -- routes that exist only in test builds (-DOF_TEST_ROUTES=ON):
 *   GET /__test/slow?ms=N       answers after N ms without touching the database
 *   GET /__test/sleep_db?ms=N   runs SELECT pg_sleep(N/1000) through the pool
 *   GET /__test/rl_park         takes the lock of the caller's login-per-IP
 *                               rate-limit bucket and never lets go (the
 *                               worker's loop stops there, to be SIGKILLed)
 * They let end-to-end tests hold a request in flight on purpose.
 */
#ifndef OF_TESTROUTES_H
#define OF_TESTROUTES_H

#include "handlers/hdl.h"

void test_slow(struct hdl_req *r);
void test_sleep_db(struct hdl_req *r);
void test_rl_park(struct hdl_req *r);

#endif
