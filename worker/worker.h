/*
 * worker.h -- a worker process: one libevent loop serving HTTP on the
 * inherited listen socket, with its own PostgreSQL pool.
 *
 * worker_run() never returns: it exits 0 after a graceful stop (SIGTERM,
 * SIGQUIT, max_requests reached), or at once on SIGINT. It writes a heartbeat
 * into sb->slots[slot] every second; the master kills it when that stops.
 */
#ifndef OF_WORKER_H
#define OF_WORKER_H

#include <stdint.h>

#include "common/scoreboard.h"
#include "config/config.h"

struct worker_args {
    const struct of_cfg  *cfg;
    int                   listen_fd;
    struct of_scoreboard *sb;
    int                   slot;
    uint32_t              generation;
    long                  max_requests;   /* with jitter applied; 0 = never */
};

_Noreturn void worker_run(const struct worker_args *a);

#endif
