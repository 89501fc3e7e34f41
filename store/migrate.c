/*
 * migrate.c -- the schema migration runner (see migrate.h).
 *
 * Blocking libpq on purpose: this runs from the command line, never inside a
 * worker. Order of work: connect, take the advisory lock, make sure
 * schema_migrations exists, read applied versions, then apply (or revert)
 * one file per transaction. The lock is a session lock, released when the
 * connection closes, so a crashed run never leaves it behind.
 */
#include "store/migrate.h"
#include "common/of.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#ifndef OF_SOURCE_DIR
#define OF_SOURCE_DIR "."
#endif

#define MIG_LOCK_KEY "7243553521234001"   /* arbitrary, constant: "orderflow migrate" */
#define MIG_MAX      1024

struct mig {
    int64_t version;
    char    name[128];
    char    up[1024];       /* path of the .up.sql, "" if missing */
    char    down[1024];     /* path of the .down.sql, "" if missing */
    bool    applied;
    char    applied_at[64];
};

struct mig_set {
    struct mig *v;
    size_t      n;
};

const char *
migrate_dir(void)
{
    const char *d = getenv("ORDERFLOW_MIGRATIONS_DIR");
    if (d != NULL && d[0] != '\0')
        return d;
    return OF_SOURCE_DIR "/migrations";
}

static void
mig_notice(void *arg, const char *msg)
{
    OF_UNUSED(arg);
    OF_UNUSED(msg);    /* "table does not exist, skipping" and friends: noise */
}

static struct mig *
mig_find(struct mig_set *s, int64_t version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].version == version)
            return &s->v[i];
    return NULL;
}

static struct mig *
mig_add(struct mig_set *s, int64_t version)
{
    struct mig *m = mig_find(s, version);
    if (m != NULL)
        return m;
    if (s->n == MIG_MAX)
        return NULL;
    m = &s->v[s->n++];
    memset(m, 0, sizeof(*m));
    m->version = version;
    return m;
}

static int
mig_cmp(const void *a, const void *b)
{
    const struct mig *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* "0001_init.up.sql" -> version 1, name "init", up. Returns -1 for other files. */
static int
mig_parse_name(const char *fn, int64_t *version, char *name, size_t namecap, bool *is_up)
{
    const char *us = strchr(fn, '_');
    size_t      len = strlen(fn);
    size_t      tail;

    if (us == NULL || us == fn)
        return -1;
    if (len > 7 && strcmp(fn + len - 7, ".up.sql") == 0) {
        *is_up = true;
        tail = 7;
    } else if (len > 9 && strcmp(fn + len - 9, ".down.sql") == 0) {
        *is_up = false;
        tail = 9;
    } else {
        return -1;
    }
    if (of_parse_i64(fn, (size_t)(us - fn), 1, INT64_MAX, version) != 0)
        return -1;
    size_t nlen = len - tail - (size_t)(us + 1 - fn);
    if (nlen == 0 || nlen >= namecap || us + 1 > fn + len - tail)
        return -1;
    memcpy(name, us + 1, nlen);
    name[nlen] = '\0';
    return 0;
}

static int
mig_scan(struct mig_set *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "migrate: cannot open migrations directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t ver;
        char    name[128];
        bool    is_up;
        if (mig_parse_name(e->d_name, &ver, name, sizeof(name), &is_up) != 0)
            continue;
        struct mig *m = mig_add(s, ver);
        if (m == NULL) {
            fprintf(stderr, "migrate: too many migrations in %s\n", dir);
            closedir(d);
            return -1;
        }
        if (m->name[0] != '\0' && strcmp(m->name, name) != 0) {
            fprintf(stderr, "migrate: version %lld has two names: %s and %s\n",
                    (long long)ver, m->name, name);
            closedir(d);
            return -1;
        }
        of_strlcpy(m->name, name, sizeof(m->name));
        snprintf(is_up ? m->up : m->down, sizeof(m->up), "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return 0;
}

static char *
mig_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        fprintf(stderr, "migrate: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail;
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
        goto fail;
    buf[len] = '\0';
    fclose(f);
    return buf;
fail:
    fprintf(stderr, "migrate: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return NULL;
}

/* Run sql; on failure print it with context and return -1. */
static int
mig_exec(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    fprintf(stderr, "migrate: %s failed: %s", what, PQerrorMessage(c));
    PQclear(r);
    return -1;
}

static int
mig_exec_params(PGconn *c, const char *sql, int n, const char *const *params, const char *what)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    fprintf(stderr, "migrate: %s failed: %s", what, PQerrorMessage(c));
    PQclear(r);
    return -1;
}

static int
mig_load_applied(PGconn *c, struct mig_set *s)
{
    PGresult *r = PQexec(c, "SELECT version, name, to_char(applied_at AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "migrate: reading schema_migrations failed: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t ver;
        const char *v = PQgetvalue(r, i, 0);
        if (of_parse_i64(v, strlen(v), 1, INT64_MAX, &ver) != 0)
            continue;
        struct mig *m = mig_add(s, ver);
        if (m == NULL)
            break;
        if (m->name[0] == '\0')
            of_strlcpy(m->name, PQgetvalue(r, i, 1), sizeof(m->name));
        m->applied = true;
        of_strlcpy(m->applied_at, PQgetvalue(r, i, 2), sizeof(m->applied_at));
    }
    PQclear(r);
    qsort(s->v, s->n, sizeof(s->v[0]), mig_cmp);
    return 0;
}

/* One migration step in one transaction: the file plus its bookkeeping row. */
static int
mig_step(PGconn *c, struct mig *m, bool up)
{
    char  ver[32];
    char  what[256];
    const char *path = up ? m->up : m->down;

    if (path[0] == '\0') {
        fprintf(stderr, "migrate: %04lld_%s has no .%s.sql file\n",
                (long long)m->version, m->name, up ? "up" : "down");
        return -1;
    }
    char *sql = mig_read_file(path);
    if (sql == NULL)
        return -1;
    snprintf(ver, sizeof(ver), "%lld", (long long)m->version);
    snprintf(what, sizeof(what), "%s %04lld_%s", up ? "up" : "down", (long long)m->version, m->name);
    const char *params[2] = { ver, m->name };
    int rc = -1;
    if (mig_exec(c, "BEGIN", "BEGIN") != 0)
        goto done;
    if (mig_exec(c, sql, what) != 0)
        goto rollback;
    if (up && mig_exec_params(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              2, params, "recording the migration") != 0)
        goto rollback;
    if (!up && mig_exec_params(c, "DELETE FROM schema_migrations WHERE version = $1",
                               1, params, "recording the migration") != 0)
        goto rollback;
    if (mig_exec(c, "COMMIT", "COMMIT") != 0)
        goto done;
    printf("%s %04lld_%s\n", up ? "applied " : "reverted", (long long)m->version, m->name);
    rc = 0;
    goto done;
rollback:
    mig_exec(c, "ROLLBACK", "ROLLBACK");
done:
    free(sql);
    return rc;
}

static int
mig_up(PGconn *c, struct mig_set *s, long limit)
{
    long done = 0;
    for (size_t i = 0; i < s->n && (limit < 0 || done < limit); i++) {
        if (s->v[i].applied)
            continue;
        if (mig_step(c, &s->v[i], true) != 0)
            return -1;
        s->v[i].applied = true;
        done++;
    }
    if (done == 0)
        printf("nothing to apply: database is up to date\n");
    return 0;
}

static int
mig_down(PGconn *c, struct mig_set *s, long limit)
{
    long done = 0;
    for (size_t i = s->n; i > 0 && done < limit; i--) {
        struct mig *m = &s->v[i - 1];
        if (!m->applied)
            continue;
        if (mig_step(c, m, false) != 0)
            return -1;
        m->applied = false;
        done++;
    }
    if (done == 0)
        printf("nothing to revert\n");
    return 0;
}

static void
mig_status(struct mig_set *s)
{
    size_t applied = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct mig *m = &s->v[i];
        const char *note = m->up[0] == '\0' ? "  (no .up.sql file)" : "";
        if (m->applied) {
            applied++;
            printf("applied  %04lld_%s  %s%s\n", (long long)m->version, m->name, m->applied_at, note);
        } else {
            printf("pending  %04lld_%s%s\n", (long long)m->version, m->name, note);
        }
    }
    printf("%zu applied, %zu pending\n", applied, s->n - applied);
}

static int
mig_usage(void)
{
    fprintf(stderr, "usage: orderflow migrate up [N] | down [N] | status\n");
    return 2;
}

static PGconn *
mig_connect(const struct of_cfg *cfg)
{
    char ct[16];
    snprintf(ct, sizeof(ct), "%d", cfg->database.connect_timeout > 0 ? cfg->database.connect_timeout : 10);
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { cfg->database.url, ct, "orderflow-migrate", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        fprintf(stderr, "migrate: out of memory\n");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "migrate: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeReceiver(c, NULL, NULL);
    PQsetNoticeProcessor(c, mig_notice, NULL);
    return c;
}

int
migrate_cli(const struct of_cfg *cfg, int argc, char **argv)
{
    struct mig_set s = { 0 };
    PGconn *c = NULL;
    long    limit = -1;
    int     rc = 1;

    if (argc > 0 && strcmp(argv[0], "migrate") == 0) {
        argc--;
        argv++;
    }
    if (argc < 1 || argc > 2)
        return mig_usage();
    const char *cmd = argv[0];
    bool is_up = strcmp(cmd, "up") == 0, is_down = strcmp(cmd, "down") == 0;
    if (!is_up && !is_down && strcmp(cmd, "status") != 0)
        return mig_usage();
    if (argc == 2) {
        int64_t v;
        if (strcmp(cmd, "status") == 0 || of_parse_i64(argv[1], strlen(argv[1]), 1, 1000000, &v) != 0)
            return mig_usage();
        limit = (long)v;
    }
    if (is_down && limit < 0)
        limit = 1;
    if (cfg->database.url == NULL || cfg->database.url[0] == '\0') {
        fprintf(stderr, "migrate: no database: set ORDERFLOW_DATABASE_URL or database.url\n");
        return 1;
    }
    s.v = calloc(MIG_MAX, sizeof(*s.v));
    if (s.v == NULL)
        return 1;
    const char *dir = migrate_dir();
    if (mig_scan(&s, dir) != 0)
        goto out;
    if ((c = mig_connect(cfg)) == NULL)
        goto out;
    if (mig_exec(c, "SET client_min_messages = warning", "SET") != 0
        || mig_exec(c, "SELECT pg_advisory_lock(" MIG_LOCK_KEY ")", "taking the migration lock") != 0
        || mig_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version bigint PRIMARY KEY,"
                       " name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                    "creating schema_migrations") != 0
        || mig_load_applied(c, &s) != 0)
        goto out;
    if (is_up)
        rc = mig_up(c, &s, limit) == 0 ? 0 : 1;
    else if (is_down)
        rc = mig_down(c, &s, limit) == 0 ? 0 : 1;
    else {
        mig_status(&s);
        rc = 0;
    }
    mig_exec(c, "SELECT pg_advisory_unlock(" MIG_LOCK_KEY ")", "releasing the migration lock");
out:
    if (c != NULL)
        PQfinish(c);
    free(s.v);
    fflush(stdout);
    return rc;
}
