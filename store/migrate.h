/*
 * migrate.h -- `orderflow migrate up [N] | down [N] | status`.
 *
 * A CLI command, not worker code: it uses one blocking libpq connection to
 * cfg->database.url. Migrations are files NNNN_name.up.sql / NNNN_name.down.sql
 * in $ORDERFLOW_MIGRATIONS_DIR, else OF_SOURCE_DIR "/migrations". Applied
 * versions are rows of schema_migrations(version, name, applied_at). Each step
 * runs in its own transaction together with its schema_migrations row, and the
 * whole run holds a session pg_advisory_lock, so two runs at once apply every
 * migration exactly once.
 */
#ifndef OF_MIGRATE_H
#define OF_MIGRATE_H

#include "config/config.h"

/* argv holds the words after "migrate" ("up", "down", "3"); a leading
 * "migrate" is skipped if present. up: all pending (or the next N); down: the
 * last applied one (or the last N); status: every known migration, applied or
 * pending. Prints progress on stdout, errors on stderr. Returns a process exit
 * code: 0 success, 1 failure, 2 usage error. */
int migrate_cli(const struct of_cfg *cfg, int argc, char **argv);

/* The migrations directory in use (env or compiled default). */
const char *migrate_dir(void);

#endif
