/*
 * migrate.c -- the schema migration runner (see migrate.h).
 *
 * Blocking libpq on purpose: this runs from the command line, never inside a
 * worker; the command itself (arguments, which directory) is master/'s. Order of work: connect, take the advisory lock, make sure
 * schema_migrations exists, read applied versions, then apply (or revert)
 * one file per transaction. The lock is a session lock, released when the
 * connection closes, so a crashed run never leaves it behind.
 */
#include "store/migrate.h"
#include "store/pgblock.h"
#include "common/of.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

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

/* One run: what was asked, the connection, the migrations known. */
struct mig_run {
    const struct migrate_opts *o;
    PGconn                    *c;
    struct mig_set             s;
};

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
mig_scan(struct mig_run *r)
{
    struct mig_set *s = &r->s;
    const char     *dir = r->o->dir;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(r->o->err, "migrate: cannot open migrations directory %s: %s\n", dir, strerror(errno));
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
            fprintf(r->o->err, "migrate: too many migrations in %s\n", dir);
            closedir(d);
            return -1;
        }
        if (m->name[0] != '\0' && strcmp(m->name, name) != 0) {
            fprintf(r->o->err, "migrate: version %lld has two names: %s and %s\n",
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
mig_read_file(const struct mig_run *r, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        fprintf(r->o->err, "migrate: cannot open %s: %s\n", path, strerror(errno));
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
    fprintf(r->o->err, "migrate: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return NULL;
}

/* Run sql; on failure print it with context and return -1. */
static int
mig_exec(const struct mig_run *r, const char *sql, const char *what)
{
    PGresult *res = PQexec(r->c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    fprintf(r->o->err, "migrate: %s failed: %s", what, PQerrorMessage(r->c));
    PQclear(res);
    return -1;
}

static int
mig_exec_params(const struct mig_run *r, const char *sql, int n, const char *const *params,
                const char *what)
{
    PGresult *res = PQexecParams(r->c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    fprintf(r->o->err, "migrate: %s failed: %s", what, PQerrorMessage(r->c));
    PQclear(res);
    return -1;
}

static int
mig_load_applied(struct mig_run *r)
{
    struct mig_set *s = &r->s;
    PGresult *res = PQexec(r->c, "SELECT version, name, to_char(applied_at AT TIME ZONE 'UTC', "
                                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(r->o->err, "migrate: reading schema_migrations failed: %s", PQerrorMessage(r->c));
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t ver;
        const char *v = PQgetvalue(res, i, 0);
        if (of_parse_i64(v, strlen(v), 1, INT64_MAX, &ver) != 0)
            continue;
        struct mig *m = mig_add(s, ver);
        if (m == NULL)
            break;
        if (m->name[0] == '\0')
            of_strlcpy(m->name, PQgetvalue(res, i, 1), sizeof(m->name));
        m->applied = true;
        of_strlcpy(m->applied_at, PQgetvalue(res, i, 2), sizeof(m->applied_at));
    }
    PQclear(res);
    qsort(s->v, s->n, sizeof(s->v[0]), mig_cmp);
    return 0;
}

/* One migration step in one transaction: the file plus its bookkeeping row. */
static int
mig_step(const struct mig_run *r, struct mig *m, bool up)
{
    char  ver[32];
    char  what[256];
    const char *path = up ? m->up : m->down;

    if (path[0] == '\0') {
        fprintf(r->o->err, "migrate: %04lld_%s has no .%s.sql file\n",
                (long long)m->version, m->name, up ? "up" : "down");
        return -1;
    }
    char *sql = mig_read_file(r, path);
    if (sql == NULL)
        return -1;
    snprintf(ver, sizeof(ver), "%lld", (long long)m->version);
    snprintf(what, sizeof(what), "%s %04lld_%s", up ? "up" : "down", (long long)m->version, m->name);
    const char *params[2] = { ver, m->name };
    int rc = -1;
    if (mig_exec(r, "BEGIN", "BEGIN") != 0)
        goto done;
    if (mig_exec(r, sql, what) != 0)
        goto rollback;
    if (up && mig_exec_params(r, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              2, params, "recording the migration") != 0)
        goto rollback;
    if (!up && mig_exec_params(r, "DELETE FROM schema_migrations WHERE version = $1",
                               1, params, "recording the migration") != 0)
        goto rollback;
    if (mig_exec(r, "COMMIT", "COMMIT") != 0)
        goto done;
    fprintf(r->o->out, "%s %04lld_%s\n", up ? "applied " : "reverted", (long long)m->version,
            m->name);
    rc = 0;
    goto done;
rollback:
    mig_exec(r, "ROLLBACK", "ROLLBACK");
done:
    free(sql);
    return rc;
}

static int
mig_up(struct mig_run *r, long limit)
{
    struct mig_set *s = &r->s;
    long done = 0;
    for (size_t i = 0; i < s->n && (limit < 0 || done < limit); i++) {
        if (s->v[i].applied)
            continue;
        if (mig_step(r, &s->v[i], true) != 0)
            return -1;
        s->v[i].applied = true;
        done++;
    }
    if (done == 0)
        fprintf(r->o->out, "nothing to apply: database is up to date\n");
    return 0;
}

static int
mig_down(struct mig_run *r, long limit)
{
    struct mig_set *s = &r->s;
    long done = 0;
    for (size_t i = s->n; i > 0 && done < limit; i--) {
        struct mig *m = &s->v[i - 1];
        if (!m->applied)
            continue;
        if (mig_step(r, m, false) != 0)
            return -1;
        m->applied = false;
        done++;
    }
    if (done == 0)
        fprintf(r->o->out, "nothing to revert\n");
    return 0;
}

static void
mig_status(const struct mig_run *r)
{
    const struct mig_set *s = &r->s;
    FILE  *out = r->o->out;
    size_t applied = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct mig *m = &s->v[i];
        const char *note = m->up[0] == '\0' ? "  (no .up.sql file)" : "";
        if (m->applied) {
            applied++;
            fprintf(out, "applied  %04lld_%s  %s%s\n", (long long)m->version, m->name,
                    m->applied_at, note);
        } else {
            fprintf(out, "pending  %04lld_%s%s\n", (long long)m->version, m->name, note);
        }
    }
    fprintf(out, "%zu applied, %zu pending\n", applied, s->n - applied);
}

static int
mig_connect(struct mig_run *r)
{
    char err[2048];

    r->c = pgblock_connect(&r->o->db, "orderflow-migrate", err, sizeof(err));
    if (r->c == NULL) {
        fprintf(r->o->err, "migrate: %s", err);
        return -1;
    }
    PQsetNoticeReceiver(r->c, NULL, NULL);
    PQsetNoticeProcessor(r->c, mig_notice, NULL);
    return 0;
}

/* Connected: lock, make sure the bookkeeping table exists, read it, act. */
static int
mig_locked_run(struct mig_run *r)
{
    const struct migrate_opts *o = r->o;
    int rc = -1;

    if (mig_exec(r, "SET client_min_messages = warning", "SET") != 0
        || mig_exec(r, "SELECT pg_advisory_lock(" MIG_LOCK_KEY ")", "taking the migration lock") != 0
        || mig_exec(r, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version bigint PRIMARY KEY,"
                       " name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                    "creating schema_migrations") != 0
        || mig_load_applied(r) != 0)
        return -1;
    if (o->action == MIGRATE_UP)
        rc = mig_up(r, o->limit);
    else if (o->action == MIGRATE_DOWN)
        rc = mig_down(r, o->limit);
    else {
        mig_status(r);
        rc = 0;
    }
    mig_exec(r, "SELECT pg_advisory_unlock(" MIG_LOCK_KEY ")", "releasing the migration lock");
    return rc;
}

int
migrate_apply(const struct migrate_opts *o)
{
    struct mig_run r = { .o = o };
    int rc = OF_ERR;

    r.s.v = calloc(MIG_MAX, sizeof(*r.s.v));
    if (r.s.v == NULL)
        return OF_ERR;
    if (mig_scan(&r) != 0 || mig_connect(&r) != 0)
        goto out;
    rc = mig_locked_run(&r) == 0 ? OF_OK : OF_ERR;
out:
    if (r.c != NULL)
        PQfinish(r.c);
    free(r.s.v);
    fflush(o->out);
    return rc;
}
