/*
 * config.c -- see config.h.
 *
 * Every setting the file may hold is one row of cfg_keys[]: group, name, kind,
 * where it lives in struct of_cfg, its range, its default and the environment
 * variable (if any) that overrides it. Defaults, the file, the environment and
 * cfg_dump() all walk that one table, and a value -- a default, a file setting
 * or an environment variable -- goes through the same setter, so the parser,
 * the validator, the defaults and the dump cannot drift apart. config.h and
 * config/orderflow.cfg document the same defaults for readers.
 *
 * Struct fields ending in _ms are named without the suffix in the file
 * (database.queue_timeout is milliseconds, as the sample says).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/of.h"
#include "common/scoreboard.h"
#include "common/util.h"

#define CFG_SECRET_MIN 32

enum cfg_kind {
    K_INT,        /* int */
    K_LONG,       /* long */
    K_SIZE,       /* size_t */
    K_BOOL,       /* bool */
    K_STR,        /* char *, "" = not set (NULL) */
    K_LISTEN,     /* char *, required, netaddr_listen_parse() */
    K_LEVEL,      /* char *, debug|info|warn|error */
    K_MODE,       /* int, written as an octal string "0660" */
    K_STRLIST,    /* char *[CFG_MAX_LIST] + size_t count */
    K_CIDRLIST,   /* struct netaddr_cidr[CFG_MAX_LIST] + size_t count */
    K_INTLIST,    /* int[CFG_MAX_LIST] + size_t count, each min..max */
    K_DOUBLE,     /* double, min..max */
};

struct cfg_key {
    const char   *group;
    const char   *name;
    enum cfg_kind kind;
    size_t        off;       /* offset of the field in struct of_cfg */
    size_t        off_n;     /* lists: offset of the count */
    int64_t       min, max;  /* numbers */
    const char   *def;       /* default as text ("1024", "true", "0660", lists
                              * comma-separated); NULL = zero / not set */
    const char   *env;       /* environment variable that overrides it, or NULL */
    const char   *desc;      /* one line for orderflow.cfg(5) */
};

#define F(field) offsetof(struct of_cfg, field)
#define KEY(g, n, kind, field, lo, hi, def, desc)       { g, n, kind, F(field), 0, lo, hi, def, NULL, desc }
#define KEY_ENV(g, n, kind, field, lo, hi, def, env, desc) { g, n, kind, F(field), 0, lo, hi, def, env, desc }
#define LIST(g, n, kind, field, count, def, desc)       { g, n, kind, F(field), F(count), 0, 0, def, NULL, desc }
#define NLIST(g, n, field, count, lo, hi, def, desc)    { g, n, K_INTLIST, F(field), F(count), lo, hi, def, NULL, desc }

/* One row per setting, each on one line. The last column is the one-line
 * description orderflow.cfg(5) prints (`orderflow config-reference --man`). */
static const struct cfg_key cfg_keys[] = {
    KEY_ENV("server", "listen", K_LISTEN, server.listen, 0, 0, "127.0.0.1:8000", "ORDERFLOW_LISTEN", "Where to listen: \"host:port\", \"[v6addr]:port\" or \"unix:/path/to.sock\"; ignored when systemd passes a socket (LISTEN_FDS)."),
    KEY_ENV("server", "workers", K_INT, server.workers, 0, OF_SB_MAX_WORKERS, "0", "ORDERFLOW_WORKERS", "Worker processes; 0 = one per CPU."),
    KEY("server", "backlog",             K_INT,   server.backlog, 1, 65535, "1024", "listen(2) backlog."),
    KEY("server", "unix_mode",           K_MODE,  server.unix_mode, 0, 0777, "0660", "Permissions of a unix listen socket, an octal string."),
    KEY("server", "max_body_size",       K_SIZE,  server.max_body_size, 1, 1073741824, "1048576", "Largest request body in bytes; a larger one gets 413."),
    KEY("server", "max_header_size",     K_SIZE,  server.max_header_size, 1024, 1048576, "8192", "Largest request line plus headers in bytes."),
    KEY("server", "header_timeout",      K_INT,   server.header_timeout, 1, 3600, "10", "Seconds a client has to send the request headers."),
    KEY("server", "timeout",             K_INT,   server.timeout, 1, 3600, "30", "Read/write timeout in seconds."),
    KEY("server", "keepalive_timeout",   K_INT,   server.keepalive_timeout, 0, 3600, "5", "Seconds an idle keep-alive connection stays open; 0 = no keep-alive."),
    KEY("server", "worker_timeout",      K_INT,   server.worker_timeout, 2, 86400, "30", "A worker whose heartbeat is older than this many seconds is killed and replaced."),
    KEY("server", "graceful_timeout",    K_INT,   server.graceful_timeout, 1, 86400, "30", "Seconds in-flight requests get to finish on TERM or HUP before workers are killed."),
    KEY("server", "max_requests",        K_LONG,  server.max_requests, 0, 1000000000000, "0", "Recycle a worker after this many requests; 0 = never."),
    KEY("server", "max_requests_jitter", K_LONG,  server.max_requests_jitter, 0, 1000000000000, "0", "Each worker adds a random 0..max_requests_jitter to max_requests."),
    KEY("server", "pidfile",             K_STR,   server.pidfile, 0, 0, NULL, "Write the master's pid here (\"\" = no pidfile); removed on exit."),
    KEY("server", "user",                K_STR,   server.user, 0, 0, NULL, "When started as root: drop to this user after binding (\"\" = keep)."),
    KEY("server", "group",               K_STR,   server.group, 0, 0, NULL, "Group to drop to (\"\" = the user's primary group)."),
    KEY("server", "log_file",            K_STR,   server.log_file, 0, 0, NULL, "JSON log lines go here (\"\" or \"-\" = stderr); USR1 reopens it."),
    KEY("server", "log_level",           K_LEVEL, server.log_level, 0, 0, "info", "debug, info, warn or error."),
    KEY("server", "access_log",          K_BOOL,  server.access_log, 0, 0, "true", "One JSON log line per request."),
    LIST("server", "forwarded_allow_ips", K_CIDRLIST, server.forwarded_allow, server.n_forwarded_allow, "127.0.0.1, ::1", "Peers (addresses or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are trusted."),

    KEY_ENV("database", "url", K_STR, database.url, 0, 0, NULL, "ORDERFLOW_DATABASE_URL", "libpq connection string or URI (\"\" = not set); redacted whenever settings are printed."),
    KEY("database", "pool_size",           K_INT,  database.pool_size, 1, 1000, "4", "Connections per worker."),
    KEY("database", "queue_timeout",       K_INT,  database.queue_timeout_ms, 1, 600000, "2000", "Milliseconds a request waits for a free connection before a 503."),
    KEY("database", "statement_timeout",   K_INT,  database.statement_timeout_ms, 0, 3600000, "5000", "Milliseconds a statement may run; 0 = no limit."),
    KEY("database", "connect_timeout",     K_INT,  database.connect_timeout, 1, 600, "5", "Seconds to establish a connection."),
    KEY("database", "prepared_statements", K_BOOL, database.prepared_statements, 0, 0, "true", "Named prepared statements; false behind PgBouncer < 1.21 in transaction mode."),
    KEY("database", "replica_url",         K_STR,  database.replica_url, 0, 0, NULL, "Read replicas for public catalog reads (\"\" = every read goes to url); redacted when printed."),
    KEY("database", "replica_max_lag",     K_DOUBLE, database.replica_max_lag, 0, 86400, "1.0", "Seconds of replay lag a replica may have and still serve reads."),

    KEY("auth", "token_ttl",          K_INT,  auth.token_ttl, 60, 31536000, "3600", "Access token lifetime in seconds."),
    KEY("auth", "allow_registration", K_BOOL, auth.allow_registration, 0, 0, "true", "Whether POST /api/v1/auth/register is open."),
    KEY("auth", "hash_threads",       K_INT,  auth.hash_threads, 1, 64, "2", "Password-hashing threads per worker; each hash in flight uses 64 MiB."),

    KEY("rate_limit", "login_per_minute",  K_INT, rate_limit.login_per_minute, 0, 1000000, "10", "Login attempts per minute per client IP and per username; 0 = off."),
    KEY("rate_limit", "writes_per_minute", K_INT, rate_limit.writes_per_minute, 0, 1000000, "600", "POST/PATCH/DELETE requests per minute per user; 0 = off."),

    LIST("cors", "allow_origins", K_STRLIST, cors.allow_origins, cors.n_origins, NULL, "Origins allowed to call the API from a browser; \"*\" is refused."),
    KEY("cors", "max_age",        K_INT,     cors.max_age, 0, 86400, "600", "Access-Control-Max-Age of preflight answers, seconds."),

    LIST("metrics", "allow", K_CIDRLIST, metrics.allow, metrics.n_allow, "127.0.0.1/32, ::1/128", "Peers (addresses or CIDRs) allowed to read /metrics."),

    KEY("jobs", "enabled",        K_BOOL, jobs.enabled, 0, 0, "true", "Run the jobs process (outbox: mail and webhooks) on this host."),
    KEY("jobs", "concurrency",    K_INT,  jobs.concurrency, 1, 1024, "16", "Deliveries in flight at once."),
    KEY("jobs", "lease",          K_INT,  jobs.lease, 5, 86400, "60", "Seconds a claimed delivery stays this process's before others retake it."),
    KEY("jobs", "retention_days", K_INT,  jobs.retention_days, 1, 3650, "7", "Days succeeded deliveries and their events are kept."),

    KEY("mail", "smtp_url", K_STR,  mail.smtp_url, 0, 0, NULL, "smtp://host:port or smtps://host:port (\"\" = send no mail); login from ORDERFLOW_SMTP_USER and ORDERFLOW_SMTP_PASSWORD."),
    KEY("mail", "from",     K_STR,  mail.from, 0, 0, "orders@localhost", "Sender address of outgoing mail."),
    KEY("mail", "starttls", K_BOOL, mail.starttls, 0, 0, "false", "Upgrade smtp:// with STARTTLS (required when true)."),

    KEY("webhooks", "timeout",         K_INT,  webhooks.timeout, 1, 300, "10", "Seconds one delivery attempt may take."),
    NLIST("webhooks", "retry_schedule", webhooks.retry_schedule, webhooks.n_retry_schedule, 1, 604800, "5, 300, 1800, 7200, 18000, 36000, 36000", "Seconds before each retry (at most 32 entries); then the delivery is dead."),
    KEY("webhooks", "allow_http",      K_BOOL, webhooks.allow_http, 0, 0, "false", "Accept http:// webhook URLs (default: https:// only)."),
    KEY("webhooks", "allow_private",   K_BOOL, webhooks.allow_private, 0, 0, "false", "Deliver to loopback, private and link-local addresses (default: refused)."),

    KEY("cache", "enabled",     K_BOOL, cache.enabled, 0, 0, "true", "Per-worker cache of public product reads, invalidated through LISTEN/NOTIFY."),
    KEY("cache", "max_entries", K_INT,  cache.max_entries, 1, 10000000, "100000", "Cache entries per worker."),
    KEY("cache", "ttl",         K_INT,  cache.ttl, 1, 86400, "60", "Seconds a cache entry may live."),

    KEY("tracing", "otlp_endpoint",     K_STR,    tracing.otlp_endpoint, 0, 0, NULL, "OTLP/HTTP endpoint (spans go to ENDPOINT/v1/traces); \"\" = export nothing."),
    KEY("tracing", "sample_ratio",      K_DOUBLE, tracing.sample_ratio, 0, 1, "1.0", "Share of new traces sampled; a caller's sampled flag is followed."),
    KEY("tracing", "service_name",      K_STR,    tracing.service_name, 0, 0, "orderflow", "service.name of exported spans."),
    KEY("tracing", "slow_statement_ms", K_INT,    tracing.slow_statement_ms, 0, 3600000, "500", "Log statements slower than this many milliseconds; 0 = off."),
};

static const char *const cfg_groups[] = { "server", "database", "auth", "rate_limit", "cors", "metrics",
                                          "jobs", "mail", "webhooks", "cache", "tracing" };

#define FIELD(cfg, k, type) ((type *)(void *)((char *)(cfg) + (k)->off))
#define CFIELD(cfg, k, type) ((const type *)(const void *)((const char *)(cfg) + (k)->off))
#define COUNT(cfg, k) ((size_t *)(void *)((char *)(cfg) + (k)->off_n))

/* Where a value came from, for messages: "file:line: group.name ..." for
 * the file, "VAR: group.name ..." for the environment and the defaults. */
struct cfg_src {
    const char *where;       /* file path, or the environment variable's name */
    int         line;        /* line in the file; -1 when where is not a file */
    char       *err;
    size_t      errlen;
};

/* ---- small helpers ---------------------------------------------------- */

static void
cfg_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int
cfg_strdup(char **dst, const char *src)
{
    char *p = NULL;
    if (src != NULL && src[0] != '\0') {
        p = strdup(src);
        if (p == NULL)
            return OF_ERR;
    }
    free(*dst);
    *dst = p;
    return OF_OK;
}

static int
cfg_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > OF_SB_MAX_WORKERS ? OF_SB_MAX_WORKERS : (int)n;
}

/* ---- redaction --------------------------------------------------------- */

/* If a "password" or "sslpassword" key (any case) starts at k -- at the
 * start of s or after a separator -- followed by blanks, '=' and blanks: where
 * its value starts. Else NULL. */
static char *
cfg_redact_value_at(char *s, char *k, char **key_start)
{
    char *start = k;
    if (k - s >= 3 && strncasecmp(k - 3, "ssl", 3) == 0)
        start = k - 3;
    if (start != s && start[-1] != ' ' && start[-1] != '?' && start[-1] != '&' && start[-1] != '\t')
        return NULL;
    char *e = k + 8;
    while (*e == ' ' || *e == '\t')
        e++;
    if (*e != '=')
        return NULL;
    for (e++; *e == ' ' || *e == '\t'; e++)
        ;
    *key_start = start;
    return e;
}

/* Replace the value of every password / sslpassword parameter (keyword/value
 * strings, blanks around '=' allowed, and URL query strings), in place. */
static void
cfg_redact_params(char *s, size_t cap)
{
    static const char red[] = "REDACTED";
    char             *p = s, *key;

    while ((p = strcasestr(p, "password")) != NULL) {
        char *v = cfg_redact_value_at(s, p, &key), *e;
        if (v == NULL) {
            p += 8;
            continue;
        }
        e = v;
        if (*e == '\'') {
            for (e++; *e != '\0' && *e != '\''; e++)
                if (*e == '\\' && e[1] != '\0')
                    e++;
            if (*e == '\'')
                e++;
        } else {
            while (*e != '\0' && *e != ' ' && *e != '&' && *e != '\t')
                e++;
        }
        if ((size_t)(v - s) + sizeof(red) > cap) {
            *key = '\0';   /* no room for the marker: cut the key and value off */
            break;
        }
        size_t tail = strlen(e);
        size_t need = (size_t)(v - s) + (sizeof(red) - 1) + tail + 1;
        if (need > cap)
            tail = cap - ((size_t)(v - s) + sizeof(red));
        memmove(v + sizeof(red) - 1, e, tail);
        memcpy(v, red, sizeof(red) - 1);
        v[sizeof(red) - 1 + tail] = '\0';
        p = v + sizeof(red) - 1;
    }
}

/* Redact into out, which is large enough for the result (see below). */
static void
cfg_redact_full(const char *url, char *out, size_t cap)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL) {
        of_strlcpy(out, url, cap);
        cfg_redact_params(out, cap);
        return;
    }
    const char *auth = sep + 3;
    size_t      alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon == NULL) {
        of_strlcpy(out, url, cap);
    } else {
        snprintf(out, cap, "%.*sREDACTED%s", (int)(colon + 1 - url), url, at);
    }
    cfg_redact_params(out, cap);
}

void
cfg_redact_url(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return;
    out[0] = '\0';
    if (url == NULL)
        return;
    /* Redact a full copy, then truncate: truncating first could leave the
     * start of a password that no longer looks like one. Each "password="
     * (9 bytes) grows by at most 8 ("REDACTED"), so 2 * len + 16 is enough. */
    size_t len = strlen(url), big = 2 * len + 16;
    char  *buf = malloc(big);
    if (buf == NULL) {
        of_strlcpy(out, "REDACTED", cap);
        return;
    }
    cfg_redact_full(url, buf, big);
    of_strlcpy(out, buf, cap);
    free(buf);
}

/* ---- one value, from whatever source ---------------------------------- */

/* "<src>: group.name<tail>": the prefix, then fmt (which starts with its own
 * separator, " must be ..." or ": \"x\" is ..."). */
static void
cfg_bad(const struct cfg_src *src, const struct cfg_key *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cfg_bad(const struct cfg_src *src, const struct cfg_key *k, const char *fmt, ...)
{
    va_list ap;
    int     n;

    if (src->errlen == 0)
        return;
    if (src->line >= 0)
        n = snprintf(src->err, src->errlen, "%s:%d: %s.%s", src->where, src->line, k->group,
                     k->name);
    else
        n = snprintf(src->err, src->errlen, "%s: %s.%s", src->where, k->group, k->name);
    if (n < 0 || (size_t)n >= src->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(src->err + n, src->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int
cfg_oom(const struct cfg_src *src)
{
    cfg_err(src->err, src->errlen, "out of memory");
    return OF_ERR;
}

static int
cfg_set_int64(struct of_cfg *cfg, const struct cfg_key *k, int64_t v, const struct cfg_src *src)
{
    if (v < k->min || v > k->max) {
        cfg_bad(src, k, " must be %lld..%lld", (long long)k->min, (long long)k->max);
        return OF_ERR;
    }
    switch (k->kind) {
    case K_INT:  *FIELD(cfg, k, int) = (int)v; break;
    case K_LONG: *FIELD(cfg, k, long) = (long)v; break;
    case K_SIZE: *FIELD(cfg, k, size_t) = (size_t)v; break;
    default: break;
    }
    return OF_OK;
}

static int
cfg_set_double(struct of_cfg *cfg, const struct cfg_key *k, double v, const struct cfg_src *src)
{
    if (!(v >= (double)k->min && v <= (double)k->max)) {
        cfg_bad(src, k, " must be a number in %lld..%lld", (long long)k->min, (long long)k->max);
        return OF_ERR;
    }
    *FIELD(cfg, k, double) = v;
    return OF_OK;
}

static int
cfg_set_mode(struct of_cfg *cfg, const struct cfg_key *k, const char *v, const struct cfg_src *src)
{
    int64_t m = -1;
    size_t  len = strlen(v);
    bool    ok = len >= 1 && len <= 4;

    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] >= '0' && v[i] <= '7';
    if (ok)
        m = strtol(v, NULL, 8);
    if (!ok || m < k->min || m > k->max) {
        cfg_bad(src, k, " must be an octal mode string like \"0660\"");
        return OF_ERR;
    }
    *FIELD(cfg, k, int) = (int)m;
    return OF_OK;
}

/* A string-valued setting (K_STR, K_LISTEN, K_LEVEL, K_MODE) from its text. */
static int
cfg_set_str(struct of_cfg *cfg, const struct cfg_key *k, const char *v, const struct cfg_src *src)
{
    struct netaddr_listen l;

    if (k->kind == K_LISTEN && netaddr_listen_parse(v, &l) != OF_OK) {
        cfg_bad(src, k, " must be \"host:port\", \"[v6]:port\" or \"unix:/path\" (got \"%s\")", v);
        return OF_ERR;
    }
    if (k->kind == K_LEVEL && strcmp(v, "debug") != 0 && strcmp(v, "info") != 0 &&
        strcmp(v, "warn") != 0 && strcmp(v, "error") != 0) {
        cfg_bad(src, k, " must be debug, info, warn or error");
        return OF_ERR;
    }
    if (k->kind == K_MODE)
        return cfg_set_mode(cfg, k, v, src);
    if (cfg_strdup(FIELD(cfg, k, char *), v) != OF_OK)
        return cfg_oom(src);
    return OF_OK;
}

/* Forget a list's entries before it is set anew. */
static void
cfg_list_clear(struct of_cfg *cfg, const struct cfg_key *k)
{
    size_t *count = COUNT(cfg, k);

    if (k->kind == K_STRLIST) {
        char **arr = FIELD(cfg, k, char *);
        for (size_t i = 0; i < *count; i++) {
            free(arr[i]);
            arr[i] = NULL;
        }
    }
    *count = 0;
}

/* Append entry v (len bytes, not NUL-terminated) to a list that has room. */
static int
cfg_list_add(struct of_cfg *cfg, const struct cfg_key *k, const char *v, size_t len,
             const struct cfg_src *src)
{
    size_t *count = COUNT(cfg, k);
    char   *s = strndup(v, len);

    if (s == NULL)
        return cfg_oom(src);
    if (s[0] == '\0') {
        cfg_bad(src, k, " must be a list of non-empty strings");
        goto fail;
    }
    if (k->kind == K_INTLIST) {
        int64_t n;
        if (of_parse_i64(s, len, k->min, k->max, &n) != 0) {
            cfg_bad(src, k, ": \"%s\" must be %lld..%lld", s, (long long)k->min, (long long)k->max);
            goto fail;
        }
        FIELD(cfg, k, int)[*count] = (int)n;
        free(s);
    } else if (k->kind == K_CIDRLIST) {
        if (netaddr_cidr_parse(s, &FIELD(cfg, k, struct netaddr_cidr)[*count]) != OF_OK) {
            cfg_bad(src, k, ": \"%s\" is not an address or CIDR", s);
            goto fail;
        }
        free(s);
    } else {
        if (strcmp(s, "*") == 0) {
            cfg_bad(src, k, " must list origins, not \"*\"");
            goto fail;
        }
        FIELD(cfg, k, char *)[*count] = s;
    }
    (*count)++;
    return OF_OK;
fail:
    free(s);
    return OF_ERR;
}

/* A list from text: entries separated by commas, spaces around them ignored. */
static int
cfg_set_list_text(struct of_cfg *cfg, const struct cfg_key *k, const char *v,
                  const struct cfg_src *src)
{
    cfg_list_clear(cfg, k);
    while (*v != '\0') {
        const char *e = v;
        size_t      len = strcspn(v, ",");
        v += len + (v[len] == ',');
        of_trim(&e, &len);
        if (*COUNT(cfg, k) == CFG_MAX_LIST) {
            cfg_bad(src, k, " may hold at most %d entries", CFG_MAX_LIST);
            return OF_ERR;
        }
        if (cfg_list_add(cfg, k, e, len, src) != OF_OK)
            return OF_ERR;
    }
    return OF_OK;
}

/* Any setting from its text: a default or an environment variable. */
static int
cfg_set_text(struct of_cfg *cfg, const struct cfg_key *k, const char *v, const struct cfg_src *src)
{
    int64_t n;

    switch (k->kind) {
    case K_INT:
    case K_LONG:
    case K_SIZE:
        if (of_parse_i64(v, strlen(v), k->min, k->max, &n) != 0) {
            cfg_bad(src, k, " must be %lld..%lld", (long long)k->min, (long long)k->max);
            return OF_ERR;
        }
        return cfg_set_int64(cfg, k, n, src);
    case K_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            cfg_bad(src, k, " must be true or false");
            return OF_ERR;
        }
        *FIELD(cfg, k, bool) = v[0] == 't';
        return OF_OK;
    case K_STRLIST:
    case K_CIDRLIST:
    case K_INTLIST:
        return cfg_set_list_text(cfg, k, v, src);
    case K_DOUBLE: {
        char  *end = NULL;
        double d;
        errno = 0;
        d = strtod(v, &end);
        if (end == v || *end != '\0' || errno != 0)
            d = -1.0 - (double)k->max;   /* out of range: one message below */
        return cfg_set_double(cfg, k, d, src);
    }
    default:
        return cfg_set_str(cfg, k, v, src);
    }
}

/* ---- defaults and the environment ------------------------------------- */

static int
cfg_defaults(struct of_cfg *cfg, char *err, size_t errlen)
{
    struct cfg_src src = { "default", -1, err, errlen };

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OF_ARRAY_LEN(cfg_keys); i++)
        if (cfg_keys[i].def != NULL && cfg_set_text(cfg, &cfg_keys[i], cfg_keys[i].def, &src) != OF_OK)
            return OF_ERR;
    return OF_OK;
}

/* The JWT secret is no setting of the file: it comes only from here. */
static int
cfg_env_secret(struct of_cfg *cfg, bool require_secret, char *err, size_t errlen)
{
    const char *v = getenv("ORDERFLOW_JWT_SECRET");

    if (v == NULL || v[0] == '\0') {
        if (!require_secret)
            return OF_OK;
        cfg_err(err, errlen, "ORDERFLOW_JWT_SECRET is not set (serving needs a secret of at "
                "least %d bytes)", CFG_SECRET_MIN);
        return OF_ERR;
    }
    size_t len = strlen(v);
    if (len < CFG_SECRET_MIN) {
        cfg_err(err, errlen, "ORDERFLOW_JWT_SECRET must be at least %d bytes (it has %zu)",
                CFG_SECRET_MIN, len);
        return OF_ERR;
    }
    cfg->auth.jwt_secret = malloc(len + 1);
    if (cfg->auth.jwt_secret == NULL) {
        cfg_err(err, errlen, "out of memory");
        return OF_ERR;
    }
    memcpy(cfg->auth.jwt_secret, v, len + 1);
    cfg->auth.jwt_secret_len = len;
    return OF_OK;
}

/* Every key with an environment column, in table order; unset or empty
 * variables leave the value alone. */
static int
cfg_env(struct of_cfg *cfg, bool require_secret, char *err, size_t errlen)
{
    for (size_t i = 0; i < OF_ARRAY_LEN(cfg_keys); i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const char           *v = k->env != NULL ? getenv(k->env) : NULL;
        struct cfg_src        src = { k->env, -1, err, errlen };
        if (v != NULL && v[0] != '\0' && cfg_set_text(cfg, k, v, &src) != OF_OK)
            return OF_ERR;
    }
    if (cfg_strdup(&cfg->mail.smtp_user, getenv("ORDERFLOW_SMTP_USER")) != OF_OK ||
        cfg_strdup(&cfg->mail.smtp_password, getenv("ORDERFLOW_SMTP_PASSWORD")) != OF_OK) {
        cfg_err(err, errlen, "out of memory");
        return OF_ERR;
    }
    return cfg_env_secret(cfg, require_secret, err, errlen);
}

/* ---- the file --------------------------------------------------------- */

static int
cfg_set_list(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st,
             const struct cfg_src *src)
{
    if (!config_setting_is_array(st) && !config_setting_is_list(st)) {
        cfg_bad(src, k, " must be a list of strings");
        return OF_ERR;
    }
    int n = config_setting_length(st);
    if (n > CFG_MAX_LIST) {
        cfg_bad(src, k, " may hold at most %d entries", CFG_MAX_LIST);
        return OF_ERR;
    }
    cfg_list_clear(cfg, k);
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(st, (unsigned)i);
        if (k->kind == K_INTLIST) {
            char num[32];
            int  t = config_setting_type(e);
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
                cfg_bad(src, k, " must be a list of integers");
                return OF_ERR;
            }
            snprintf(num, sizeof(num), "%lld", (long long)config_setting_get_int64(e));
            if (cfg_list_add(cfg, k, num, strlen(num), src) != OF_OK)
                return OF_ERR;
            continue;
        }
        const char *v = config_setting_get_string(e);
        if (v == NULL) {
            cfg_bad(src, k, " must be a list of non-empty strings");
            return OF_ERR;
        }
        if (cfg_list_add(cfg, k, v, strlen(v), src) != OF_OK)
            return OF_ERR;
    }
    return OF_OK;
}

static int
cfg_set(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st, const struct cfg_src *src)
{
    int t = config_setting_type(st);

    switch (k->kind) {
    case K_INT:
    case K_LONG:
    case K_SIZE:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
            cfg_bad(src, k, " must be an integer");
            return OF_ERR;
        }
        return cfg_set_int64(cfg, k, config_setting_get_int64(st), src);
    case K_BOOL:
        if (t != CONFIG_TYPE_BOOL) {
            cfg_bad(src, k, " must be true or false");
            return OF_ERR;
        }
        *FIELD(cfg, k, bool) = config_setting_get_bool(st) != 0;
        return OF_OK;
    case K_STRLIST:
    case K_CIDRLIST:
    case K_INTLIST:
        return cfg_set_list(cfg, k, st, src);
    case K_DOUBLE:
        if (t == CONFIG_TYPE_FLOAT)
            return cfg_set_double(cfg, k, config_setting_get_float(st), src);
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            return cfg_set_double(cfg, k, (double)config_setting_get_int64(st), src);
        cfg_bad(src, k, " must be a number");
        return OF_ERR;
    default:
        if (t != CONFIG_TYPE_STRING || config_setting_get_string(st) == NULL) {
            cfg_bad(src, k, " must be a string");
            return OF_ERR;
        }
        return cfg_set_str(cfg, k, config_setting_get_string(st), src);
    }
}

static const struct cfg_key *
cfg_key_find(const char *group, const char *name)
{
    for (size_t i = 0; i < OF_ARRAY_LEN(cfg_keys); i++)
        if (strcmp(cfg_keys[i].group, group) == 0 && strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

static bool
cfg_group_known(const char *name)
{
    for (size_t i = 0; i < OF_ARRAY_LEN(cfg_groups); i++)
        if (strcmp(cfg_groups[i], name) == 0)
            return true;
    return false;
}

static int
cfg_apply_group(struct of_cfg *cfg, config_setting_t *grp, const char *path, char *err, size_t errlen)
{
    const char *gname = config_setting_name(grp);
    int         n = config_setting_length(grp);

    for (int i = 0; i < n; i++) {
        config_setting_t     *st = config_setting_get_elem(grp, (unsigned)i);
        const char           *name = config_setting_name(st);
        const struct cfg_key *k = cfg_key_find(gname, name);
        if (k == NULL) {
            cfg_err(err, errlen, "%s:%d: unknown setting %s.%s", path,
                    config_setting_source_line(st), gname, name);
            return OF_ERR;
        }
        struct cfg_src src = { path, (int)config_setting_source_line(st), err, errlen };
        if (cfg_set(cfg, k, st, &src) != OF_OK)
            return OF_ERR;
    }
    return OF_OK;
}

static int
cfg_read_file(struct of_cfg *cfg, const char *path, char *err, size_t errlen)
{
    config_t c;
    int      rc = OF_ERR;

    config_init(&c);
    if (config_read_file(&c, path) != CONFIG_TRUE) {
        if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
            cfg_err(err, errlen, "%s: cannot read the file: %s", path, strerror(errno));
        else
            cfg_err(err, errlen, "%s:%d: %s",
                    config_error_file(&c) != NULL ? config_error_file(&c) : path,
                    config_error_line(&c), config_error_text(&c));
        goto out;
    }

    config_setting_t *root = config_root_setting(&c);
    int               n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        config_setting_t *grp = config_setting_get_elem(root, (unsigned)i);
        const char       *gname = config_setting_name(grp);
        int               line = config_setting_source_line(grp);
        if (!cfg_group_known(gname)) {
            cfg_err(err, errlen, "%s:%d: unknown setting %s", path, line, gname);
            goto out;
        }
        if (!config_setting_is_group(grp)) {
            cfg_err(err, errlen, "%s:%d: %s must be a group: %s: { ... };", path, line, gname, gname);
            goto out;
        }
        if (cfg_apply_group(cfg, grp, path, err, errlen) != OF_OK)
            goto out;
    }
    rc = OF_OK;
out:
    config_destroy(&c);
    return rc;
}

/* ---- public ----------------------------------------------------------- */

int
cfg_load(struct of_cfg *cfg, const char *path, bool require_secret, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (cfg_defaults(cfg, err, errlen) != OF_OK)
        goto fail;
    if (path != NULL) {
        cfg->path = strdup(path);
        if (cfg->path == NULL) {
            cfg_err(err, errlen, "out of memory");
            goto fail;
        }
        if (cfg_read_file(cfg, path, err, errlen) != OF_OK)
            goto fail;
    }
    if (cfg_env(cfg, require_secret, err, errlen) != OF_OK)
        goto fail;
    cfg->server.workers_effective = cfg->server.workers > 0 ? cfg->server.workers : cfg_cpus();
    return OF_OK;
fail:
    cfg_free(cfg);
    return OF_ERR;
}

void
cfg_free(struct of_cfg *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < OF_ARRAY_LEN(cfg_keys); i++) {
        const struct cfg_key *k = &cfg_keys[i];
        if (k->kind == K_STR || k->kind == K_LISTEN || k->kind == K_LEVEL) {
            char **p = FIELD(cfg, k, char *);
            free(*p);
            *p = NULL;
        }
    }
    for (size_t i = 0; i < cfg->cors.n_origins; i++)
        free(cfg->cors.allow_origins[i]);
    free(cfg->mail.smtp_user);
    if (cfg->mail.smtp_password != NULL) {
        explicit_bzero(cfg->mail.smtp_password, strlen(cfg->mail.smtp_password));
        free(cfg->mail.smtp_password);
    }
    if (cfg->auth.jwt_secret != NULL) {
        explicit_bzero(cfg->auth.jwt_secret, cfg->auth.jwt_secret_len);
        free(cfg->auth.jwt_secret);
    }
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- the table, for documentation ----------------------------------- */

size_t
cfg_key_count(void)
{
    return OF_ARRAY_LEN(cfg_keys);
}

static const char *
cfg_kind_name(enum cfg_kind kind)
{
    switch (kind) {
    case K_INT:
    case K_LONG:
    case K_SIZE:     return "integer";
    case K_BOOL:     return "boolean";
    case K_STR:      return "string";
    case K_LISTEN:   return "listen address (string)";
    case K_LEVEL:    return "log level (string)";
    case K_MODE:     return "octal mode (string)";
    case K_STRLIST:  return "list of strings";
    case K_CIDRLIST: return "list of addresses or CIDRs (strings)";
    case K_INTLIST:  return "list of integers";
    case K_DOUBLE:   return "number";
    }
    return "?";
}

int
cfg_key_describe(size_t i, struct cfg_key_info *out)
{
    if (i >= OF_ARRAY_LEN(cfg_keys))
        return OF_ERR;
    const struct cfg_key *k = &cfg_keys[i];
    enum cfg_kind         kd = k->kind;
    *out = (struct cfg_key_info){
        .group = k->group, .name = k->name, .kind = cfg_kind_name(kd),
        .ranged = kd == K_INT || kd == K_LONG || kd == K_SIZE || kd == K_DOUBLE || kd == K_INTLIST,
        .list = kd == K_STRLIST || kd == K_CIDRLIST || kd == K_INTLIST,
        .quoted = kd == K_STR || kd == K_LISTEN || kd == K_LEVEL || kd == K_MODE ||
                  kd == K_STRLIST || kd == K_CIDRLIST,
        .min = k->min, .max = k->max, .def = k->def, .env = k->env, .desc = k->desc,
    };
    return OF_OK;
}

/* ---- dump ------------------------------------------------------------- */

static void
cfg_dump_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void
cfg_dump_cidr(FILE *out, const struct netaddr_cidr *c)
{
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, buf, sizeof(buf));
    fprintf(out, "\"%s/%d\"", buf, c->prefix);
}

static void
cfg_dump_key(const struct of_cfg *cfg, const struct cfg_key *k, FILE *out)
{
    fprintf(out, "  %s = ", k->name);
    switch (k->kind) {
    case K_INT:  fprintf(out, "%d", *CFIELD(cfg, k, int)); break;
    case K_LONG: {
        long v = *CFIELD(cfg, k, long);   /* libconfig needs L past 32 bits */
        fprintf(out, v > INT32_MAX ? "%ldL" : "%ld", v);
        break;
    }
    case K_SIZE: fprintf(out, "%zu", *CFIELD(cfg, k, size_t)); break;
    case K_BOOL: fputs(*CFIELD(cfg, k, bool) ? "true" : "false", out); break;
    case K_MODE: fprintf(out, "\"%04o\"", (unsigned)*CFIELD(cfg, k, int)); break;
    case K_DOUBLE: {
        char num[32];
        snprintf(num, sizeof(num), "%.6g", *CFIELD(cfg, k, double));
        fputs(num, out);
        if (strpbrk(num, ".en") == NULL)
            fputs(".0", out);   /* a float, as libconfig reads it back */
        break;
    }
    case K_STRLIST:
    case K_CIDRLIST:
    case K_INTLIST: {
        size_t n = *(const size_t *)(const void *)((const char *)cfg + k->off_n);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            fputs(i == 0 ? " " : ", ", out);
            if (k->kind == K_INTLIST)
                fprintf(out, "%d", CFIELD(cfg, k, int)[i]);
            else if (k->kind == K_CIDRLIST)
                cfg_dump_cidr(out, &CFIELD(cfg, k, struct netaddr_cidr)[i]);
            else
                cfg_dump_str(out, CFIELD(cfg, k, char *)[i]);
        }
        fputs(n > 0 ? " ]" : "]", out);
        break;
    }
    default: {
        const char *s = *CFIELD(cfg, k, char *);
        if (s != NULL && (k->off == F(database.url) || k->off == F(database.replica_url) ||
                          k->off == F(mail.smtp_url) || k->off == F(tracing.otlp_endpoint))) {
            char red[4096];
            cfg_redact_url(s, red, sizeof(red));
            cfg_dump_str(out, red);
        } else {
            cfg_dump_str(out, s);
        }
        break;
    }
    }
    fputc(';', out);
    if (k->off == F(server.workers))
        fprintf(out, "   # effective: %d", cfg->server.workers_effective);
    if (k->kind == K_STR && *CFIELD(cfg, k, char *) == NULL)
        fputs("   # not set", out);
    fputc('\n', out);
}

void
cfg_dump(const struct of_cfg *cfg, FILE *out)
{
    fprintf(out, "# orderflow effective settings (%s); secrets redacted\n",
            cfg->path != NULL ? cfg->path : "defaults only");
    for (size_t g = 0; g < OF_ARRAY_LEN(cfg_groups); g++) {
        fprintf(out, "%s:\n{\n", cfg_groups[g]);
        for (size_t i = 0; i < OF_ARRAY_LEN(cfg_keys); i++)
            if (strcmp(cfg_keys[i].group, cfg_groups[g]) == 0)
                cfg_dump_key(cfg, &cfg_keys[i], out);
        if (strcmp(cfg_groups[g], "auth") == 0)
            fprintf(out, "  # jwt_secret comes only from ORDERFLOW_JWT_SECRET: %s\n",
                    cfg->auth.jwt_secret != NULL ? "set (REDACTED)" : "not set");
        if (strcmp(cfg_groups[g], "mail") == 0)
            fprintf(out, "  # login comes only from ORDERFLOW_SMTP_USER / ORDERFLOW_SMTP_PASSWORD: %s\n",
                    cfg->mail.smtp_user != NULL ? "set (REDACTED)" : "not set");
        fputs("};\n", out);
    }
}
