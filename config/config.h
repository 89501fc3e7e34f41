/*
 * config.h -- the typed settings struct, loaded from a libconfig file,
 * overridden by the environment, validated once.
 *
 * Loading never exits: cfg_load() returns OF_ERR and writes a message naming
 * the file, line and setting into err ("orderflow.cfg:12: server.workers must
 * be 0..256"). The struct owns its strings; cfg_free() releases them.
 */
#ifndef OF_CONFIG_H
#define OF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/netaddr.h"

#define CFG_MAX_LIST 32

struct cfg_server {
    char    *listen;               /* "host:port", "[v6]:port" or "unix:/path"; default "127.0.0.1:8000" */
    int      workers;              /* 0..256, default 0 = one per CPU; effective count in workers_effective */
    int      workers_effective;
    int      backlog;              /* default 1024 */
    int      unix_mode;            /* octal mode of a unix socket, default 0660 */
    size_t   max_body_size;        /* default 1 MiB */
    size_t   max_header_size;      /* default 8 KiB */
    int      header_timeout;       /* seconds, default 10 */
    int      timeout;              /* read/write seconds, default 30 */
    int      keepalive_timeout;    /* seconds, default 5 */
    int      worker_timeout;       /* heartbeat age that gets a worker killed, default 30 */
    int      graceful_timeout;     /* seconds, default 30 */
    long     max_requests;         /* 0 = never recycle (default) */
    long     max_requests_jitter;  /* random 0..jitter added per worker, default 0 */
    char    *pidfile;              /* NULL = none */
    char    *user;                 /* NULL = keep */
    char    *group;                /* NULL = primary group of user */
    char    *log_file;             /* NULL = stderr */
    char    *log_level;            /* debug|info|warn|error, default info */
    bool     access_log;           /* default true */
    size_t   n_forwarded_allow;    /* default ["127.0.0.1", "::1"] */
    struct netaddr_cidr forwarded_allow[CFG_MAX_LIST];
};

struct cfg_database {
    char *url;                     /* env ORDERFLOW_DATABASE_URL wins; NULL = not set */
    int   pool_size;               /* per worker, default 4 */
    int   queue_timeout_ms;        /* default 2000 */
    int   statement_timeout_ms;    /* default 5000 */
    int   connect_timeout;         /* seconds, default 5 */
    bool  prepared_statements;     /* default true; false for PgBouncer < 1.21 */
    char *replica_url;             /* NULL = no replicas: every read goes to url */
    double replica_max_lag;        /* seconds of replay lag a replica may have, default 1.0 */
};

struct cfg_auth {
    int    token_ttl;              /* seconds, default 3600 */
    bool   allow_registration;     /* default true */
    int    hash_threads;           /* per worker, default 2 (64 MiB each in flight) */
    char  *jwt_secret;             /* only from ORDERFLOW_JWT_SECRET; never logged */
    size_t jwt_secret_len;
};

struct cfg_rate_limit {
    int login_per_minute;          /* 0 = off, default 10 */
    int writes_per_minute;         /* 0 = off, default 600 */
};

struct cfg_cors {
    size_t n_origins;
    char  *allow_origins[CFG_MAX_LIST];
    int    max_age;                /* seconds, default 600; allow_origins default [] */
};

struct cfg_metrics {
    size_t          n_allow;       /* default ["127.0.0.1/32", "::1/128"] */
    struct netaddr_cidr allow[CFG_MAX_LIST];
};

struct cfg_jobs {
    bool enabled;                  /* run the jobs process on this host, default true */
    int  concurrency;              /* deliveries in flight, default 16 */
    int  lease;                    /* seconds a claimed row stays ours, default 60 */
    int  retention_days;           /* succeeded deliveries and their events, default 7 */
};

struct cfg_mail {
    char *smtp_url;                /* smtp:// or smtps://; NULL = send no mail (default) */
    char *from;                    /* default "orders@localhost" */
    bool  starttls;                /* default false */
    char *smtp_user;               /* only from ORDERFLOW_SMTP_USER; NULL = no login */
    char *smtp_password;           /* only from ORDERFLOW_SMTP_PASSWORD; never logged */
};

struct cfg_webhooks {
    int    timeout;                /* seconds per delivery attempt, default 10 */
    size_t n_retry_schedule;       /* default [5, 300, 1800, 7200, 18000, 36000, 36000] */
    int    retry_schedule[CFG_MAX_LIST];   /* seconds before attempt 2, 3, ... */
    bool   allow_http;             /* default false: https:// only */
    bool   allow_private;          /* default false: refuse non-public addresses */
};

struct cfg_cache {
    bool enabled;                  /* default true */
    int  max_entries;              /* per worker, default 100000 */
    int  ttl;                      /* seconds, default 60 */
};

struct cfg_tracing {
    char  *otlp_endpoint;          /* OTLP/HTTP base URL; NULL = export nothing (default) */
    double sample_ratio;           /* 0..1, parent-based, default 1.0 */
    char  *service_name;           /* default "orderflow" */
    int    slow_statement_ms;      /* log statements slower than this; 0 = off, default 500 */
};

struct of_cfg {
    char                 *path;    /* file it came from, NULL for defaults only */
    struct cfg_server     server;
    struct cfg_database   database;
    struct cfg_auth       auth;
    struct cfg_rate_limit rate_limit;
    struct cfg_cors       cors;
    struct cfg_metrics    metrics;
    struct cfg_jobs       jobs;
    struct cfg_mail       mail;
    struct cfg_webhooks   webhooks;
    struct cfg_cache      cache;
    struct cfg_tracing    tracing;
};

/* Fill cfg with defaults, then the file at path (may be NULL: defaults only),
 * then environment overrides, then validate. On error returns OF_ERR with a
 * message in err. require_secret: fail unless ORDERFLOW_JWT_SECRET has >= 32
 * bytes (serve needs it; migrate does not). */
int  cfg_load(struct of_cfg *cfg, const char *path, bool require_secret, char *err, size_t errlen);
void cfg_free(struct of_cfg *cfg);

/* Print the effective settings in libconfig syntax, secrets redacted. */
void cfg_dump(const struct of_cfg *cfg, FILE *out);

/* Copy a libpq URL or keyword/value string into out with any password
 * replaced by "REDACTED" (userinfo password and password= parameters). */
void cfg_redact_url(const char *url, char *out, size_t cap);

/* The key table, read-only, for generated documentation (orderflow.cfg(5),
 * `orderflow config-reference`). Keys come in table order, grouped. */
struct cfg_key_info {
    const char *group;
    const char *name;
    const char *kind;      /* "integer", "boolean", "string", "list of strings", ... */
    bool        ranged;    /* min..max apply (numbers, lists of numbers) */
    bool        list;      /* default is comma-separated list items */
    bool        quoted;    /* written as a string in the file */
    int64_t     min, max;
    const char *def;       /* default as text; NULL = not set / empty */
    const char *env;       /* overriding environment variable, or NULL */
    const char *desc;      /* one line */
};

size_t cfg_key_count(void);
/* Fill out for key i (0 <= i < cfg_key_count()); OF_ERR past the end. */
int    cfg_key_describe(size_t i, struct cfg_key_info *out);

#endif
