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

struct of_cfg {
    char                 *path;    /* file it came from, NULL for defaults only */
    struct cfg_server     server;
    struct cfg_database   database;
    struct cfg_auth       auth;
    struct cfg_rate_limit rate_limit;
    struct cfg_cors       cors;
    struct cfg_metrics    metrics;
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

#endif
