/*
 * jobs_int.h -- state shared by the jobs process's files: jobs.c (process,
 * loop, queue) and deliver.c (libcurl multi, one attempt per delivery).
 */
#ifndef OF_JOBS_INT_H
#define OF_JOBS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <curl/curl.h>
#include <event2/event.h>

#include "common/mem.h"
#include "common/scoreboard.h"
#include "config/config.h"
#include "store/outbox.h"
#include "store/pglisten.h"
#include "store/pool.h"

struct delivery;
struct jobs;

/* What deliver.c tells its owner (jobs.c), so deliver.c calls nothing of
 * jobs.c by name: a delivery is over -- queue its result for writing (err
 * may be NULL); and a pass of the multi handle ended -- write results, fan
 * out, claim, whatever is due and allowed now. */
struct deliver_hooks {
    void (*finished)(struct jobs *j, int64_t id, enum outbox_outcome o, int code,
                     const char *err, double delay_s);
    void (*pump)(struct jobs *j);
};

struct jobs {
    const struct of_cfg  *cfg;
    struct of_scoreboard *sb;
    struct of_sb_slot    *slot;
    struct event_base    *base;
    pool                 *pool;
    pglisten             *listen;
    struct event         *hb_timer, *poll_timer, *prune_timer, *stop_timer, *kick;
    struct event         *sigs[4];
    /* libcurl multi */
    const struct deliver_hooks *dh;
    CURLM                *multi;
    struct event         *curl_timer;
    struct delivery      *active;          /* in flight, doubly linked */
    int                   inflight;
    /* the queue */
    bool                  fanning, fanout_wanted;
    bool                  claiming, claim_wanted;
    int                   claim_asked;     /* limit of the claim in flight */
    bool                  measuring, pruning;
    bool                  stopping;
    /* finished attempts waiting to be written (one statement for many) */
    struct outbox_result *results;
    size_t                n_results, cap_results;
    size_t                n_recording;     /* the first n_recording are being written */
    uint64_t              last_measure_ns;
};

/* deliver.c */
int  deliver_init(struct jobs *j, const struct deliver_hooks *hooks);
/* Start one claimed delivery (copies what it needs from job). */
void deliver_start(struct jobs *j, const struct outbox_job *job);
/* Abort every delivery in flight; each is given back (RELEASE). */
void deliver_abort_all(struct jobs *j);

#endif
