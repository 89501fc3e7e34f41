/*
 * config.c -- see config.h.
 *
 * Every setting the file may hold is one row of cfg_keys[]: group, name, kind,
 * where it lives in struct of_cfg and its range. Loading walks the file and
 * looks each setting up in that table (anything not there is an error), and
 * cfg_dump() walks the same table, so the parser, the validator and the dump
 * cannot drift apart. Defaults are set in cfg_defaults() and documented in
 * config.h and config/orderflow.cfg.
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
#include <sys/un.h>
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
};

struct cfg_key {
    const char   *group;
    const char   *name;
    enum cfg_kind kind;
    size_t        off;       /* offset of the field in struct of_cfg */
    size_t        off_n;     /* lists: offset of the count */
    int64_t       min, max;  /* numbers */
};

#define F(field) offsetof(struct of_cfg, field)

static const struct cfg_key cfg_keys[] = {
    { "server", "listen",              K_LISTEN,   F(server.listen), 0, 0, 0 },
    { "server", "workers",             K_INT,      F(server.workers), 0, 0, OF_SB_MAX_WORKERS },
    { "server", "backlog",             K_INT,      F(server.backlog), 0, 1, 65535 },
    { "server", "unix_mode",           K_MODE,     F(server.unix_mode), 0, 0, 0777 },
    { "server", "max_body_size",       K_SIZE,     F(server.max_body_size), 0, 1, 1073741824 },
    { "server", "max_header_size",     K_SIZE,     F(server.max_header_size), 0, 1024, 1048576 },
    { "server", "header_timeout",      K_INT,      F(server.header_timeout), 0, 1, 3600 },
    { "server", "timeout",             K_INT,      F(server.timeout), 0, 1, 3600 },
    { "server", "keepalive_timeout",   K_INT,      F(server.keepalive_timeout), 0, 0, 3600 },
    { "server", "worker_timeout",      K_INT,      F(server.worker_timeout), 0, 2, 86400 },
    { "server", "graceful_timeout",    K_INT,      F(server.graceful_timeout), 0, 1, 86400 },
    { "server", "max_requests",        K_LONG,     F(server.max_requests), 0, 0, 1000000000000 },
    { "server", "max_requests_jitter", K_LONG,     F(server.max_requests_jitter), 0, 0, 1000000000000 },
    { "server", "pidfile",             K_STR,      F(server.pidfile), 0, 0, 0 },
    { "server", "user",                K_STR,      F(server.user), 0, 0, 0 },
    { "server", "group",               K_STR,      F(server.group), 0, 0, 0 },
    { "server", "log_file",            K_STR,      F(server.log_file), 0, 0, 0 },
    { "server", "log_level",           K_LEVEL,    F(server.log_level), 0, 0, 0 },
    { "server", "access_log",          K_BOOL,     F(server.access_log), 0, 0, 0 },
    { "server", "forwarded_allow_ips", K_CIDRLIST, F(server.forwarded_allow), F(server.n_forwarded_allow), 0, 0 },

    { "database", "url",                 K_STR,  F(database.url), 0, 0, 0 },
    { "database", "pool_size",           K_INT,  F(database.pool_size), 0, 1, 1000 },
    { "database", "queue_timeout",       K_INT,  F(database.queue_timeout_ms), 0, 1, 600000 },
    { "database", "statement_timeout",   K_INT,  F(database.statement_timeout_ms), 0, 0, 3600000 },
    { "database", "connect_timeout",     K_INT,  F(database.connect_timeout), 0, 1, 600 },
    { "database", "prepared_statements", K_BOOL, F(database.prepared_statements), 0, 0, 0 },

    { "auth", "token_ttl",          K_INT,  F(auth.token_ttl), 0, 60, 31536000 },
    { "auth", "allow_registration", K_BOOL, F(auth.allow_registration), 0, 0, 0 },
    { "auth", "hash_threads",       K_INT,  F(auth.hash_threads), 0, 1, 64 },

    { "rate_limit", "login_per_minute",  K_INT, F(rate_limit.login_per_minute), 0, 0, 1000000 },
    { "rate_limit", "writes_per_minute", K_INT, F(rate_limit.writes_per_minute), 0, 0, 1000000 },

    { "cors", "allow_origins", K_STRLIST, F(cors.allow_origins), F(cors.n_origins), 0, 0 },
    { "cors", "max_age",       K_INT,     F(cors.max_age), 0, 0, 86400 },

    { "metrics", "allow", K_CIDRLIST, F(metrics.allow), F(metrics.n_allow), 0, 0 },
};

static const char *const cfg_groups[] = { "server", "database", "auth", "rate_limit", "cors", "metrics" };

#define FIELD(cfg, k, type) ((type *)(void *)((char *)(cfg) + (k)->off))
#define CFIELD(cfg, k, type) ((const type *)(const void *)((const char *)(cfg) + (k)->off))

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

/* Replace the value of every password=... parameter (keyword/value strings
 * and URL query strings), in place. */
static void
cfg_redact_params(char *s, size_t cap)
{
    static const char key[] = "password=";
    static const char red[] = "REDACTED";
    char             *p = s;

    while ((p = strcasestr(p, key)) != NULL) {
        if (p != s && p[-1] != ' ' && p[-1] != '?' && p[-1] != '&' && p[-1] != '\t') {
            p += sizeof(key) - 1;
            continue;
        }
        char *v = p + sizeof(key) - 1, *e = v;
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
            *v = '\0';   /* no room for the marker: cut the value off */
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

/* ---- defaults and the file -------------------------------------------- */

static int
cfg_defaults(struct of_cfg *cfg)
{
    static const char *const fwd[] = { "127.0.0.1", "::1" };
    static const char *const met[] = { "127.0.0.1/32", "::1/128" };

    memset(cfg, 0, sizeof(*cfg));
    struct cfg_server *s = &cfg->server;
    if (cfg_strdup(&s->listen, "127.0.0.1:8000") != OF_OK ||
        cfg_strdup(&s->log_level, "info") != OF_OK)
        return OF_ERR;
    s->workers = 0;
    s->backlog = 1024;
    s->unix_mode = 0660;
    s->max_body_size = 1048576;
    s->max_header_size = 8192;
    s->header_timeout = 10;
    s->timeout = 30;
    s->keepalive_timeout = 5;
    s->worker_timeout = 30;
    s->graceful_timeout = 30;
    s->access_log = true;
    for (size_t i = 0; i < OF_ARRAY_LEN(fwd); i++)
        netaddr_cidr_parse(fwd[i], &s->forwarded_allow[s->n_forwarded_allow++]);

    cfg->database.pool_size = 4;
    cfg->database.queue_timeout_ms = 2000;
    cfg->database.statement_timeout_ms = 5000;
    cfg->database.connect_timeout = 5;
    cfg->database.prepared_statements = true;

    cfg->auth.token_ttl = 3600;
    cfg->auth.allow_registration = true;
    cfg->auth.hash_threads = 2;

    cfg->rate_limit.login_per_minute = 10;
    cfg->rate_limit.writes_per_minute = 600;

    cfg->cors.max_age = 600;

    for (size_t i = 0; i < OF_ARRAY_LEN(met); i++)
        netaddr_cidr_parse(met[i], &cfg->metrics.allow[cfg->metrics.n_allow++]);
    return OF_OK;
}

/* "file:line: " prefix for a setting. */
struct cfg_ctx {
    const char *file;
    char       *err;
    size_t      errlen;
};

static int
cfg_set_list(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st,
             const struct cfg_ctx *cx)
{
    int line = config_setting_source_line(st);
    if (!config_setting_is_array(st) && !config_setting_is_list(st)) {
        cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be a list of strings", cx->file, line,
                k->group, k->name);
        return OF_ERR;
    }
    int n = config_setting_length(st);
    if (n > CFG_MAX_LIST) {
        cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s may hold at most %d entries", cx->file, line,
                k->group, k->name, CFG_MAX_LIST);
        return OF_ERR;
    }
    size_t *count = (size_t *)(void *)((char *)cfg + k->off_n);
    if (k->kind == K_STRLIST) {
        char **arr = FIELD(cfg, k, char *);
        for (size_t i = 0; i < *count; i++) {
            free(arr[i]);
            arr[i] = NULL;
        }
    }
    *count = 0;
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(st, (unsigned)i);
        const char       *v = config_setting_get_string(e);
        if (v == NULL || v[0] == '\0') {
            cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be a list of non-empty strings",
                    cx->file, line, k->group, k->name);
            return OF_ERR;
        }
        if (k->kind == K_CIDRLIST) {
            if (netaddr_cidr_parse(v, &FIELD(cfg, k, struct netaddr_cidr)[i]) != OF_OK) {
                cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s: \"%s\" is not an address or CIDR",
                        cx->file, line, k->group, k->name, v);
                return OF_ERR;
            }
        } else {
            if (strcmp(v, "*") == 0) {
                cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must list origins, not \"*\"",
                        cx->file, line, k->group, k->name);
                return OF_ERR;
            }
            char **arr = FIELD(cfg, k, char *);
            arr[i] = strdup(v);
            if (arr[i] == NULL) {
                cfg_err(cx->err, cx->errlen, "out of memory");
                return OF_ERR;
            }
        }
        *count = (size_t)i + 1;
    }
    return OF_OK;
}

static int
cfg_set_string(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st,
               const struct cfg_ctx *cx)
{
    int         line = config_setting_source_line(st);
    const char *v = config_setting_get_string(st);

    if (config_setting_type(st) != CONFIG_TYPE_STRING || v == NULL) {
        cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be a string", cx->file, line, k->group,
                k->name);
        return OF_ERR;
    }
    if (k->kind == K_LISTEN) {
        struct netaddr_listen l;
        if (netaddr_listen_parse(v, &l) != OF_OK) {
            cfg_err(cx->err, cx->errlen,
                    "%s:%d: %s.%s must be \"host:port\", \"[v6]:port\" or \"unix:/path\" (got \"%s\")",
                    cx->file, line, k->group, k->name, v);
            return OF_ERR;
        }
    }
    if (k->kind == K_LEVEL) {
        if (strcmp(v, "debug") != 0 && strcmp(v, "info") != 0 && strcmp(v, "warn") != 0 &&
            strcmp(v, "error") != 0) {
            cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be debug, info, warn or error",
                    cx->file, line, k->group, k->name);
            return OF_ERR;
        }
    }
    if (k->kind == K_MODE) {
        int64_t m = -1;
        size_t  len = strlen(v);
        bool    ok = len >= 1 && len <= 4;
        for (size_t i = 0; ok && i < len; i++)
            ok = v[i] >= '0' && v[i] <= '7';
        if (ok)
            m = strtol(v, NULL, 8);
        if (!ok || m < k->min || m > k->max) {
            cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be an octal mode string like \"0660\"",
                    cx->file, line, k->group, k->name);
            return OF_ERR;
        }
        *FIELD(cfg, k, int) = (int)m;
        return OF_OK;
    }
    if (cfg_strdup(FIELD(cfg, k, char *), v) != OF_OK) {
        cfg_err(cx->err, cx->errlen, "out of memory");
        return OF_ERR;
    }
    return OF_OK;
}

static int
cfg_set_number(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st,
               const struct cfg_ctx *cx)
{
    int line = config_setting_source_line(st);
    int t = config_setting_type(st);

    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be an integer", cx->file, line, k->group,
                k->name);
        return OF_ERR;
    }
    long long v = config_setting_get_int64(st);
    if (v < k->min || v > k->max) {
        cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be %lld..%lld", cx->file, line, k->group,
                k->name, (long long)k->min, (long long)k->max);
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
cfg_set(struct of_cfg *cfg, const struct cfg_key *k, config_setting_t *st, const struct cfg_ctx *cx)
{
    switch (k->kind) {
    case K_INT:
    case K_LONG:
    case K_SIZE:
        return cfg_set_number(cfg, k, st, cx);
    case K_BOOL:
        if (config_setting_type(st) != CONFIG_TYPE_BOOL) {
            cfg_err(cx->err, cx->errlen, "%s:%d: %s.%s must be true or false", cx->file,
                    config_setting_source_line(st), k->group, k->name);
            return OF_ERR;
        }
        *FIELD(cfg, k, bool) = config_setting_get_bool(st) != 0;
        return OF_OK;
    case K_STRLIST:
    case K_CIDRLIST:
        return cfg_set_list(cfg, k, st, cx);
    default:
        return cfg_set_string(cfg, k, st, cx);
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
cfg_apply_group(struct of_cfg *cfg, config_setting_t *grp, const struct cfg_ctx *cx)
{
    const char *gname = config_setting_name(grp);
    int         n = config_setting_length(grp);

    for (int i = 0; i < n; i++) {
        config_setting_t     *st = config_setting_get_elem(grp, (unsigned)i);
        const char           *name = config_setting_name(st);
        const struct cfg_key *k = cfg_key_find(gname, name);
        if (k == NULL) {
            cfg_err(cx->err, cx->errlen, "%s:%d: unknown setting %s.%s", cx->file,
                    config_setting_source_line(st), gname, name);
            return OF_ERR;
        }
        if (cfg_set(cfg, k, st, cx) != OF_OK)
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

    struct cfg_ctx    cx = { path, err, errlen };
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
        if (cfg_apply_group(cfg, grp, &cx) != OF_OK)
            goto out;
    }
    rc = OF_OK;
out:
    config_destroy(&c);
    return rc;
}

/* ---- environment ------------------------------------------------------ */

static int
cfg_env(struct of_cfg *cfg, bool require_secret, char *err, size_t errlen)
{
    const char *v;

    if ((v = getenv("ORDERFLOW_DATABASE_URL")) != NULL && v[0] != '\0') {
        if (cfg_strdup(&cfg->database.url, v) != OF_OK)
            goto oom;
    }
    if ((v = getenv("ORDERFLOW_LISTEN")) != NULL && v[0] != '\0') {
        struct netaddr_listen l;
        if (netaddr_listen_parse(v, &l) != OF_OK) {
            cfg_err(err, errlen,
                    "ORDERFLOW_LISTEN: server.listen must be \"host:port\", \"[v6]:port\" or "
                    "\"unix:/path\" (got \"%s\")", v);
            return OF_ERR;
        }
        if (cfg_strdup(&cfg->server.listen, v) != OF_OK)
            goto oom;
    }
    if ((v = getenv("ORDERFLOW_WORKERS")) != NULL && v[0] != '\0') {
        int64_t w;
        if (of_parse_i64(v, strlen(v), 0, OF_SB_MAX_WORKERS, &w) != 0) {
            cfg_err(err, errlen, "ORDERFLOW_WORKERS: server.workers must be 0..%d",
                    OF_SB_MAX_WORKERS);
            return OF_ERR;
        }
        cfg->server.workers = (int)w;
    }
    v = getenv("ORDERFLOW_JWT_SECRET");
    if (v != NULL && v[0] != '\0') {
        size_t len = strlen(v);
        if (len < CFG_SECRET_MIN) {
            cfg_err(err, errlen, "ORDERFLOW_JWT_SECRET must be at least %d bytes (it has %zu)",
                    CFG_SECRET_MIN, len);
            return OF_ERR;
        }
        cfg->auth.jwt_secret = malloc(len + 1);
        if (cfg->auth.jwt_secret == NULL)
            goto oom;
        memcpy(cfg->auth.jwt_secret, v, len + 1);
        cfg->auth.jwt_secret_len = len;
    } else if (require_secret) {
        cfg_err(err, errlen, "ORDERFLOW_JWT_SECRET is not set (serving needs a secret of at "
                "least %d bytes)", CFG_SECRET_MIN);
        return OF_ERR;
    }
    return OF_OK;
oom:
    cfg_err(err, errlen, "out of memory");
    return OF_ERR;
}

/* ---- public ----------------------------------------------------------- */

int
cfg_load(struct of_cfg *cfg, const char *path, bool require_secret, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (cfg_defaults(cfg) != OF_OK) {
        cfg_err(err, errlen, "out of memory");
        goto fail;
    }
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
    if (cfg->auth.jwt_secret != NULL) {
        explicit_bzero(cfg->auth.jwt_secret, cfg->auth.jwt_secret_len);
        free(cfg->auth.jwt_secret);
    }
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
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
    case K_STRLIST:
    case K_CIDRLIST: {
        size_t n = *(const size_t *)(const void *)((const char *)cfg + k->off_n);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            fputs(i == 0 ? " " : ", ", out);
            if (k->kind == K_CIDRLIST)
                cfg_dump_cidr(out, &CFIELD(cfg, k, struct netaddr_cidr)[i]);
            else
                cfg_dump_str(out, CFIELD(cfg, k, char *)[i]);
        }
        fputs(n > 0 ? " ]" : "]", out);
        break;
    }
    default: {
        const char *s = *CFIELD(cfg, k, char *);
        if (k->off == F(database.url) && s != NULL) {
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
        fputs("};\n", out);
    }
}
