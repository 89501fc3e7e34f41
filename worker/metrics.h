/*
 * metrics.h -- GET /metrics: the Prometheus text exposition (format 0.0.4)
 * of the shared-memory scoreboard, summed over every worker slot plus the
 * counters of retired workers, so totals never go backwards when a worker
 * is replaced.
 *
 * Exported families (HELP and TYPE lines included):
 *   http_requests_total{method,route,status}          counter (route = template)
 *   http_request_duration_seconds{route}              histogram, buckets of
 *                                                     of_sb_bucket_bounds + +Inf (the
 *                                                     methods of one template together)
 *   db_pool_connections{state="open|busy|idle"}       gauge, all live workers
 *   db_pool_waiting                                   gauge, requests queued for a connection
 *   orderflow_workers                                 gauge, slots with a live pid
 *   orderflow_worker_restarts_total                   counter
 *   process_start_time_seconds                        gauge, the master's start (unix s)
 *   orderflow_db_pool_wait_seconds                    histogram, wait for a free connection
 *   orderflow_db_statement_duration_seconds{statement} summary (sum, count), round trips
 *   orderflow_trace_spans_exported_total              counter, spans the receiver took
 *   orderflow_trace_spans_dropped_total               counter, queue full or export failed
 *   orderflow_access_log_dropped_total                counter, log pipe full (lines dropped)
 *
 * Reading the scoreboard takes no lock: counters are relaxed atomics, so a
 * scrape is a consistent-enough snapshot, as with any Prometheus client.
 */
#ifndef OF_METRICS_H
#define OF_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/mem.h"
#include "common/scoreboard.h"
#include "config/config.h"
#include "store/pool.h"

/* Render every metric into a buffer owned by m (freed at of_mem_release);
 * *out is NUL-terminated. Returns the length. Route labels come from the
 * router's table (router_route_name), so router_init() must have run. */
size_t metrics_render(struct of_scoreboard *sb, struct of_mem *m, char **out);

/* The pool's statement table (ids = positions, as trace.c counts them):
 * names for orderflow_db_statement_duration_seconds. Static; kept by pointer. */
void metrics_statements(const struct pool_stmt *const *stmts, size_t n);

/* May this (resolved) client address read /metrics? client_ip is the text
 * form http.c resolved through trusted proxies; "unix" (a unix-socket peer
 * with no forwarded address) counts as the loopback address. Anything that
 * is not an address is refused. */
bool metrics_allowed(const struct of_cfg *cfg, const char *client_ip);

#endif
