/*
 * jobs.h -- the jobs process (ARCHITECTURE.md "Jobs process"): fans outbox
 * events out into deliveries and delivers them (webhooks, mail) with libcurl
 * multi on its libevent loop. Forked and supervised by the master like a
 * worker, in a scoreboard slot of kind OF_SB_KIND_JOBS.
 *
 * jobs_run() never returns. TERM/QUIT: stop claiming, let in-flight
 * deliveries finish (bounded by graceful_timeout), give unfinished rows back
 * to the queue, exit 0. INT: exit at once (leases run out by themselves).
 */
#ifndef OF_JOBS_H
#define OF_JOBS_H

#include <stdint.h>

#include "common/scoreboard.h"
#include "config/config.h"

struct jobs_args {
    const struct of_cfg  *cfg;
    struct of_scoreboard *sb;
    int                   slot;
    uint32_t              generation;
};

_Noreturn void jobs_run(const struct jobs_args *a);

#endif
