/*
 * jobs.c -- the jobs process: its loop, signals and heartbeat, and the queue
 * work -- fan new events out into deliveries, claim due deliveries under a
 * lease, hand them to deliver.c, write the results back in batches, prune
 * old rows at start and once a minute, and publish the queue's gauges for /metrics.
 *
 * Wake-ups: a NOTIFY on of_events (store/pglisten) and a 1 s poll as the
 * fallback. At most one fan-out, one claim and one result write are in
 * flight at a time; deliveries in flight never exceed jobs.concurrency.
 */
#include "jobs/jobs.h"
#include "jobs/jobs_int.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define FANOUT_BATCH     500
#define RECORD_BATCH     500
#define PRUNE_BATCH      1000
#define PRUNE_EVERY_S    60
#define MEASURE_EVERY_NS 2000000000ull
#define JOBS_POOL_SIZE   2

static struct jobs self;

static int64_t
mono_s(void)
{
    return (int64_t)(of_mono_ns() / 1000000000u);
}

static bool
jobs_idle(const struct jobs *j)
{
    return j->inflight == 0 && j->n_results == 0 && !j->claiming && !j->fanning;
}

static _Noreturn void
jobs_exit(struct jobs *j, int code)
{
    of_log_info("jobs process exiting");
    atomic_store(&j->slot->state, OF_SB_STOPPING);
    exit(code);
}

static void jobs_pump(struct jobs *j);

/* ---- writing results ---- */

static void
jobs_finished(struct jobs *j, int64_t id, enum outbox_outcome o, int code, const char *err,
              double delay_s)
{
    if (j->n_results == j->cap_results) {
        size_t ncap = j->cap_results ? j->cap_results * 2 : 64;
        struct outbox_result *n = realloc(j->results, ncap * sizeof(*n));
        if (n == NULL)
            of_fatal("out of memory queueing a delivery result");
        j->results = n;
        j->cap_results = ncap;
    }
    char *e = err != NULL ? strndup(err, 500) : NULL;
    j->results[j->n_results++] = (struct outbox_result){ id, o, code, e, delay_s };
}

static void
on_recorded(int rc, void *arg)
{
    struct of_mem *m = arg;
    struct jobs   *j = &self;
    size_t         n = j->n_recording;
    j->n_recording = 0;
    of_mem_release(m);
    free(m);
    if (rc != OF_OK) {
        /* kept; the next pump (at the latest the 1 s poll) tries again */
        of_log_warn("writing %zu delivery results failed (rc %d); will retry", n, rc);
        return;
    }
    for (size_t i = 0; i < n; i++)
        free((char *)j->results[i].err);
    memmove(j->results, j->results + n, (j->n_results - n) * sizeof(*j->results));
    j->n_results -= n;
    jobs_pump(j);
}

static void
record_results(struct jobs *j)
{
    if (j->n_recording > 0 || j->n_results == 0)
        return;
    struct of_mem *m = malloc(sizeof(*m));
    if (m == NULL)
        of_fatal("out of memory");
    of_mem_init(m);
    j->n_recording = j->n_results < RECORD_BATCH ? j->n_results : RECORD_BATCH;
    outbox_record(j->pool, m, j->results, j->n_recording, on_recorded, m);
}

/* ---- fan-out and claims ---- */

static struct of_mem *
op_mem(void)
{
    struct of_mem *m = malloc(sizeof(*m));
    if (m == NULL)
        of_fatal("out of memory");
    of_mem_init(m);
    return m;
}

static void
op_mem_free(struct of_mem *m)
{
    of_mem_release(m);
    free(m);
}

static void
on_fanout(int rc, int n, void *arg)
{
    struct jobs *j = &self;
    op_mem_free(arg);
    j->fanning = false;
    if (rc == OF_OK && n > 0) {
        j->claim_wanted = true;
        j->fanout_wanted = j->fanout_wanted || n >= FANOUT_BATCH;
    } else if (rc != OF_OK) {
        of_log_debug("fan-out failed (rc %d)", rc);
    }
    jobs_pump(j);
}

static void
on_claimed(int rc, struct outbox_job *jobs, int n, void *arg)
{
    struct jobs *j = &self;
    j->claiming = false;
    for (int i = 0; rc == OF_OK && i < n; i++) {
        if (j->stopping)
            jobs_finished(j, jobs[i].id, OUTBOX_RELEASE, 0, NULL, 0);   /* give it back */
        else
            deliver_start(j, &jobs[i]);
    }
    /* a full batch: more may be due; claim again as soon as there is room */
    if (rc == OF_OK && n > 0 && n >= j->claim_asked)
        j->claim_wanted = true;
    op_mem_free(arg);
    jobs_pump(j);
}

static void
jobs_pump(struct jobs *j)
{
    record_results(j);
    if (j->stopping) {
        if (jobs_idle(j) && j->n_recording == 0)
            event_base_loopbreak(j->base);
        return;
    }
    if (j->fanout_wanted && !j->fanning) {
        j->fanout_wanted = false;
        j->fanning = true;
        struct of_mem *fm = op_mem();
        outbox_fanout(j->pool, fm, FANOUT_BATCH, j->cfg->mail.smtp_url != NULL, on_fanout, fm);
    }
    int room = j->cfg->jobs.concurrency - j->inflight;
    if (j->claim_wanted && !j->claiming && room > 0) {
        j->claim_wanted = false;
        j->claiming = true;
        j->claim_asked = room;
        struct of_mem *m = op_mem();
        outbox_claim(j->pool, m, room, j->cfg->jobs.lease, on_claimed, m);
    }
}

/* ---- gauges and retention ---- */

static void
on_measured(int rc, const struct outbox_gauges *g, void *arg)
{
    struct jobs *j = &self;
    op_mem_free(arg);
    j->measuring = false;
    if (rc != OF_OK)
        return;
    atomic_store(&j->sb->jobs.pending_events, g->pending_events);
    atomic_store(&j->sb->jobs.pending_deliveries, g->pending_deliveries);
    atomic_store(&j->sb->jobs.oldest_pending_s, g->oldest_pending_s);
    atomic_store(&j->sb->jobs.measured, 1);
}

static void
on_pruned(int rc, int n, void *arg)
{
    struct jobs *j = &self;
    op_mem_free(arg);
    j->pruning = false;
    if (rc == OF_OK && n > 0)
        of_log_info("retention: deleted %d old deliveries and events", n);
}

static void
on_prune_timer(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (j->pruning || j->stopping)
        return;
    j->pruning = true;
    struct of_mem *m = op_mem();
    outbox_prune(j->pool, m, j->cfg->jobs.retention_days, PRUNE_BATCH, on_pruned, m);
}

/* ---- wake-ups ---- */

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    j->fanout_wanted = true;
    j->claim_wanted = true;
    if (!j->measuring && !j->stopping && of_mono_ns() - j->last_measure_ns >= MEASURE_EVERY_NS) {
        j->measuring = true;
        j->last_measure_ns = of_mono_ns();
        struct of_mem *m = op_mem();
        outbox_measure(j->pool, m, on_measured, m);
    }
    jobs_pump(j);
}

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct jobs *j = arg;
    OF_UNUSED(channel);
    OF_UNUSED(payload);
    j->fanout_wanted = true;
    /* one pump per loop pass however many notifications came */
    event_active(j->kick, EV_TIMEOUT, 0);
}

static void
on_listen_state(void *arg, bool up)
{
    struct jobs *j = arg;
    of_log_info("jobs: LISTEN of_events %s", up ? "up" : "down (the 1 s poll carries on)");
    if (up) {
        j->fanout_wanted = true;   /* whatever came while it was down */
        event_active(j->kick, EV_TIMEOUT, 0);
    }
}

static const struct pglisten_hooks listen_hooks = { on_notify, on_listen_state };

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
    OF_UNUSED(fd);
    OF_UNUSED(what);
    jobs_pump(arg);
}

/* ---- heartbeat, signals, stopping ---- */

static void jobs_begin_stop(struct jobs *j, const char *why);

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    atomic_store_explicit(&j->slot->heartbeat, mono_s(), memory_order_relaxed);
    struct pool_stats ps;
    pool_get_stats(j->pool, &ps);
    atomic_store_explicit(&j->slot->db_ok, ps.db_ok, memory_order_relaxed);
    if (getppid() == 1)
        jobs_begin_stop(j, "master went away");
}

/* graceful_timeout is near: abort what is still in flight and give it back */
static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    if (j->inflight > 0) {
        of_log_warn("jobs: %d deliveries still in flight at the stop deadline; giving them back",
                    j->inflight);
        deliver_abort_all(j);
    }
    jobs_pump(j);
    /* one more second to write that down, then go whatever happened */
    struct timeval one = { 1, 0 };
    event_base_loopexit(j->base, &one);
}

static void
jobs_begin_stop(struct jobs *j, const char *why)
{
    if (j->stopping)
        return;
    j->stopping = true;
    of_log_info("jobs process stopping (%s): %d deliveries in flight", why, j->inflight);
    atomic_store(&j->slot->state, OF_SB_STOPPING);
    int             g = j->cfg->server.graceful_timeout;
    struct timeval  tv = { g > 2 ? g - 2 : 1, 0 };
    j->stop_timer = evtimer_new(j->base, on_stop_timeout, j);
    evtimer_add(j->stop_timer, &tv);
    jobs_pump(j);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct jobs *j = arg;
    OF_UNUSED(what);
    switch (sig) {
    case SIGTERM:
    case SIGQUIT:
        jobs_begin_stop(j, sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
        break;
    case SIGINT:
        jobs_exit(j, 0);
    case SIGUSR1:
        if (of_log_reopen() != 0)
            of_log_errno(OF_LOG_ERROR, errno, "reopening the log failed");
        break;
    default:
        break;
    }
}

/* ---- setup ---- */

static void
reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    static const int dfl[] = { SIGCHLD, SIGALRM, SIGUSR2, SIGWINCH };
    for (size_t i = 0; i < OF_ARRAY_LEN(dfl); i++)
        sigaction(dfl[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    static const int ign[] = { SIGPIPE, SIGHUP, SIGTTIN, SIGTTOU };
    for (size_t i = 0; i < OF_ARRAY_LEN(ign); i++)
        sigaction(ign[i], &sa, NULL);
}

static pool *
jobs_pool_create(struct event_base *base, const struct of_cfg *cfg)
{
    const struct cfg_database *d = &cfg->database;
    struct pool_opts o = {
        .url = d->url,
        .size = JOBS_POOL_SIZE,
        .queue_timeout_ms = d->queue_timeout_ms,
        .statement_timeout_ms = d->statement_timeout_ms,
        .connect_timeout_s = d->connect_timeout,
        .prepared_statements = d->prepared_statements,
        .application_name = "orderflow-jobs",
    };
    return pool_create(base, &o, store_outbox_stmts, store_outbox_nstmts);
}

static struct event *
add_timer(struct jobs *j, event_callback_fn fn, int every_s, bool persist)
{
    struct event  *ev = event_new(j->base, -1, persist ? EV_PERSIST : 0, fn, j);
    struct timeval tv = { every_s, 0 };
    if (ev == NULL || event_add(ev, &tv) != 0)
        of_fatal("setting up a timer failed");
    return ev;
}

static void
jobs_setup(struct jobs *j)
{
    static const char *const channels[] = { "of_events" };
    static const int         sigs[] = { SIGTERM, SIGQUIT, SIGINT, SIGUSR1 };

    if ((j->base = event_base_new()) == NULL)
        of_fatal("event_base_new() failed");
    if ((j->pool = jobs_pool_create(j->base, j->cfg)) == NULL)
        of_fatal("pool_create() failed");
    static const struct deliver_hooks dh = { jobs_finished, jobs_pump };
    if (deliver_init(j, &dh) != OF_OK)
        of_fatal("setting up libcurl failed");
    j->listen = pglisten_create(j->base, j->cfg->database.url, "orderflow-jobs", channels, 1,
                                &listen_hooks, j);
    if (j->listen == NULL)
        of_fatal("pglisten_create() failed");
    for (size_t i = 0; i < OF_ARRAY_LEN(sigs); i++) {
        j->sigs[i] = evsignal_new(j->base, sigs[i], on_signal, j);
        event_add(j->sigs[i], NULL);
    }
    j->kick = event_new(j->base, -1, 0, on_kick, j);
    j->hb_timer = add_timer(j, on_heartbeat, 1, true);
    j->poll_timer = add_timer(j, on_poll, 1, true);
    j->prune_timer = add_timer(j, on_prune_timer, PRUNE_EVERY_S, true);
}

_Noreturn void
jobs_run(const struct jobs_args *a)
{
    struct jobs *j = &self;

    reset_signals();
    prctl(PR_SET_NAME, "of-jobs", 0, 0, 0);
    of_log_set_role("jobs");
    memset(j, 0, sizeof(*j));
    j->cfg = a->cfg;
    j->sb = a->sb;
    j->slot = &a->sb->slots[a->slot];
    atomic_store(&j->slot->kind, OF_SB_KIND_JOBS);
    atomic_store(&j->slot->pid, getpid());
    atomic_store(&j->slot->generation, a->generation);
    atomic_store(&j->slot->heartbeat, mono_s());
    atomic_store(&j->slot->state, OF_SB_BOOTING);

    jobs_setup(j);
    atomic_store(&j->slot->state, OF_SB_READY);
    of_log_info("jobs process ready (slot %d, generation %u, concurrency %d)", a->slot,
                a->generation, j->cfg->jobs.concurrency);
    j->fanout_wanted = j->claim_wanted = true;
    event_active(j->kick, EV_TIMEOUT, 0);
    event_active(j->prune_timer, EV_TIMEOUT, 0);   /* retention at start, then every minute */
    event_base_dispatch(j->base);
    if (j->inflight > 0 || j->n_results > 0)
        of_log_warn("jobs: leaving %d deliveries in flight, %zu results unwritten (their leases "
                    "run out)", j->inflight, j->n_results);
    jobs_exit(j, 0);
}
