/*
 * trace.c -- see trace.h. Owns the worker's random-id buffer, the current
 * request context, the sampling decision, the statement-id map of the pool
 * observer and the OTLP exporter (otlp.c) when one is configured.
 */
#include "worker/trace.h"
#include "worker/otlp.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STMT_MAP 512        /* open addressing, > 2 x OF_SB_MAX_STMTS */

static struct {
    otlp                        *exp;          /* NULL: tracing export off */
    struct of_sb_slot           *slot;
    double                       ratio;
    uint64_t                     slow_ns;      /* 0: no slow-statement log */
    int64_t                      wall_offset;  /* unix ns - monotonic ns */
    struct trace_req            *cur;
    size_t                       rnd_pos;
    uint8_t                      rnd[4096];
    const struct pool_stmt      *map_key[STMT_MAP];
    int                          map_id[STMT_MAP];
} tr = { .rnd_pos = 4096 };

/* ---- ids ---- */

static void
rnd_take(uint8_t *out, size_t n)
{
    if (tr.rnd_pos + n > sizeof(tr.rnd)) {
        randombytes_buf(tr.rnd, sizeof(tr.rnd));
        tr.rnd_pos = 0;
    }
    memcpy(out, tr.rnd + tr.rnd_pos, n);
    tr.rnd_pos += n;
}

/* A random id that is not all zero (the spec's invalid value). */
static void
new_id(uint8_t *out, size_t n)
{
    rnd_take(out, n);
    out[n - 1] |= (uint8_t)(out[0] == 0 && out[n - 1] == 0);
}

static bool
sample_root(void)
{
    if (tr.ratio >= 1.0)
        return true;
    if (tr.ratio <= 0.0)
        return false;
    uint64_t r;
    rnd_take((uint8_t *)&r, sizeof(r));
    return (double)(r >> 11) * 0x1.0p-53 < tr.ratio;
}

/* ---- the request's context ---- */

void
trace_begin(struct trace_req *t, const char *traceparent, const char *tracestate)
{
    struct tp_ctx in;
    bool          sampled;

    t->tracestate = NULL;
    t->has_parent = tp_parse(traceparent, &in);
    if (t->has_parent) {
        memcpy(t->trace_id, in.trace_id, 16);
        memcpy(t->parent_id, in.parent_id, 8);
        sampled = (in.flags & TP_FLAG_SAMPLED) != 0;
        if (tracestate != NULL && tracestate[0] != '\0' && tp_state_valid(tracestate))
            t->tracestate = tracestate;
    } else {
        new_id(t->trace_id, 16);
        sampled = sample_root();
    }
    new_id(t->span_id, 8);
    t->flags = sampled ? TP_FLAG_SAMPLED : 0;
    t->exported = sampled && tr.exp != NULL;
    tp_format(t->traceparent, t->trace_id, t->span_id, t->flags);
    /* "trace_id":"<32>","span_id":"<16>" from the formatted header */
    char *p = t->log_ctx;
    memcpy(p, "\"trace_id\":\"", 12);
    memcpy(p + 12, t->traceparent + 3, 32);
    memcpy(p + 44, "\",\"span_id\":\"", 13);
    memcpy(p + 57, t->traceparent + 36, 16);
    memcpy(p + 73, "\"", 2);
}

struct trace_req *
trace_swap(struct trace_req *t)
{
    struct trace_req *prev = tr.cur;
    tr.cur = t;
    of_log_set_context(t != NULL ? t->log_ctx : NULL);
    return prev;
}

struct trace_req *
trace_current(void)
{
    return tr.cur;
}

/* ---- spans ---- */

static struct otlp_span *
child_span(const struct trace_req *t, enum otlp_what what, uint64_t start, uint64_t end)
{
    struct otlp_span *s = otlp_reserve(tr.exp);
    if (s == NULL)
        return NULL;
    memcpy(s->trace_id, t->trace_id, 16);
    memcpy(s->parent_id, t->span_id, 8);
    new_id(s->span_id, 8);
    s->has_parent = true;
    s->what = what;
    s->kind = what == OTLP_DB ? OTLP_KIND_CLIENT : OTLP_KIND_INTERNAL;
    s->start_ns = (uint64_t)((int64_t)start + tr.wall_offset);
    s->end_ns = (uint64_t)((int64_t)end + tr.wall_offset);
    s->error = false;
    return s;
}

void
trace_server_span(const struct trace_req *t, const struct trace_server *v)
{
    if (!t->exported)
        return;
    struct otlp_span *s = otlp_reserve(tr.exp);
    if (s == NULL)
        return;
    memcpy(s->trace_id, t->trace_id, 16);
    memcpy(s->span_id, t->span_id, 8);
    memcpy(s->parent_id, t->parent_id, 8);
    s->has_parent = t->has_parent;
    s->what = OTLP_HTTP;
    s->kind = OTLP_KIND_SERVER;
    s->start_ns = (uint64_t)((int64_t)v->start_ns + tr.wall_offset);
    s->end_ns = (uint64_t)((int64_t)v->end_ns + tr.wall_offset);
    s->error = v->status >= 500;
    s->method = v->method;
    s->route = v->route;
    s->status = v->status;
    of_strlcpy(s->client, v->client, sizeof(s->client));
    of_strlcpy(s->request_id, v->request_id, sizeof(s->request_id));
    otlp_commit(tr.exp);
}

struct trace_req *
trace_hash_start(uint64_t *start_ns)
{
    if (tr.cur != NULL && tr.cur->exported)
        *start_ns = of_mono_ns();
    return tr.cur;
}

void
trace_hash_end(const struct trace_req *t, uint64_t start_ns, bool verify)
{
    if (t == NULL || !t->exported)
        return;
    struct otlp_span *s = child_span(t, OTLP_HASH, start_ns, of_mono_ns());
    if (s == NULL)
        return;
    of_strlcpy(s->name, verify ? "password verify" : "password hash", sizeof(s->name));
    otlp_commit(tr.exp);
}

/* ---- the pool observer ---- */

static size_t
map_slot(const struct pool_stmt *st)
{
    uintptr_t k = (uintptr_t)st;
    return (size_t)(((uint64_t)k * 0x9e3779b97f4a7c15ull) >> 55) % STMT_MAP;
}

static int
stmt_id(const struct pool_stmt *st)
{
    for (size_t i = map_slot(st), n = 0; n < STMT_MAP; i = (i + 1) % STMT_MAP, n++) {
        if (tr.map_key[i] == st)
            return tr.map_id[i];
        if (tr.map_key[i] == NULL)
            return -1;
    }
    return -1;
}

/* Appends s to out[cap] at *at, NUL-terminated, truncating. */
static void
cat(char *out, size_t cap, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - 1 - *at)
        n = cap - 1 - *at;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
}

/* "[BEGIN ]<statement>[ COMMIT]" (per round trip: no printf). */
static void
stmt_names(const struct pool_trace *t, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    if (t->begin)
        cat(out, cap, &at, "BEGIN ");
    if (t->st != NULL)
        cat(out, cap, &at, t->st->name);
    if (t->commit)
        cat(out, cap, &at, t->st != NULL ? " COMMIT" : "COMMIT");
}

static void
slow_statement(const struct pool_trace *t, uint64_t dur_ns)
{
    char names[112];
    stmt_names(t, names, sizeof(names));
    struct trace_req *prev = trace_swap(t->trace);
    of_log_warn("slow statement %s: %llu.%03llu ms", names,
                (unsigned long long)(dur_ns / 1000000u),
                (unsigned long long)(dur_ns / 1000u % 1000u));
    trace_swap(prev);
}

static void
obs_round_trip(void *arg, const struct pool_trace *t)
{
    OF_UNUSED(arg);
    if (t->sent_ns != 0)
        of_sb_db_wait(tr.slot, (t->sent_ns - t->queued_ns) / 1000u);
    if (!t->round_trip || t->sent_ns == 0)
        return;
    uint64_t dur = t->done_ns - t->sent_ns;
    if (t->st != NULL)
        of_sb_db_stmt(tr.slot, stmt_id(t->st), dur / 1000u);
    if (tr.slow_ns > 0 && dur >= tr.slow_ns)
        slow_statement(t, dur);
    const struct trace_req *rq = t->trace;
    if (rq == NULL || !rq->exported)
        return;
    struct otlp_span *s = child_span(rq, OTLP_DB, t->sent_ns, t->done_ns);
    if (s == NULL)
        return;
    stmt_names(t, s->name, sizeof(s->name));
    s->rows = t->rows;
    s->error = t->rc != OF_OK;
    otlp_commit(tr.exp);
}

static void *
obs_current(void *arg)
{
    OF_UNUSED(arg);
    return tr.cur;
}

static void *
obs_resume(void *arg, void *trace)
{
    OF_UNUSED(arg);
    return trace_swap(trace);
}

static const struct pool_observer observer = {
    .current = obs_current, .round_trip = obs_round_trip, .resume = obs_resume,
};

const struct pool_observer *
trace_pool_observer(void)
{
    return &observer;
}

/* ---- life ---- */

int
trace_init(struct event_base *base, const struct cfg_tracing *cfg, struct of_sb_slot *slot,
           const struct pool_stmt *const *stmts, size_t nstmts)
{
    tr.slot = slot;
    tr.ratio = cfg->sample_ratio;
    tr.slow_ns = (uint64_t)cfg->slow_statement_ms * 1000000u;
    for (size_t id = 0; id < nstmts && id < OF_SB_MAX_STMTS; id++) {
        size_t i = map_slot(stmts[id]);
        while (tr.map_key[i] != NULL)
            i = (i + 1) % STMT_MAP;
        tr.map_key[i] = stmts[id];
        tr.map_id[i] = (int)id;
    }
    if (cfg->otlp_endpoint == NULL || cfg->otlp_endpoint[0] == '\0')
        return OF_OK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tr.wall_offset = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (int64_t)of_mono_ns();
    tr.exp = otlp_create(base, cfg->otlp_endpoint, cfg->service_name, &slot->db);
    return tr.exp != NULL ? OF_OK : OF_ERR;
}

void
trace_flush(int timeout_ms)
{
    otlp_flush_now(tr.exp, timeout_ms);
}

void
trace_shutdown(void)
{
    otlp_destroy(tr.exp);
    tr.exp = NULL;
}
