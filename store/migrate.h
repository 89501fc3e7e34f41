/*
 * migrate.h -- the schema migration runner.
 *
 * Uses one blocking libpq connection (store/pgblock.h): it runs from the
 * command line (master/'s `orderflow migrate`), never inside a worker.
 * Migrations are files NNNN_name.up.sql / NNNN_name.down.sql in a directory
 * the caller names. Applied versions are rows of schema_migrations(version,
 * name, applied_at). Each step runs in its own transaction together with its
 * schema_migrations row, and the whole run holds a session
 * pg_advisory_lock, so two runs at once apply every migration exactly once.
 */
#ifndef OF_MIGRATE_H
#define OF_MIGRATE_H

#include <stdio.h>

#include "store/pgblock.h"

enum migrate_action {
    MIGRATE_UP,         /* all pending, oldest first (or the next limit) */
    MIGRATE_DOWN,       /* the last limit applied ones, newest first */
    MIGRATE_STATUS,     /* list every known migration, applied or pending */
};

struct migrate_opts {
    struct pgblock_target db;
    const char           *dir;      /* the migrations directory */
    enum migrate_action   action;
    long                  limit;    /* UP: < 0 = all; DOWN: how many (>= 1) */
    FILE                 *out;      /* progress and the status listing */
    FILE                 *err;      /* what went wrong, one line each */
};

/* Run one action. Returns OF_OK, or OF_ERR after saying why on o->err (a
 * failed step is rolled back; the steps before it stay applied). */
int migrate_apply(const struct migrate_opts *o);

#endif
