/*
 * cli_migrate.c -- `orderflow migrate up [N] | down [N] | status` (see cli.h).
 *
 * Owns the command's arguments, the choice of migrations directory
 * ($ORDERFLOW_MIGRATIONS_DIR, else OF_MIGRATIONS_DIR, else the source tree's) and the
 * exit code; store/migrate.c runs the migrations.
 */
#include "master/cli.h"
#include "store/migrate.h"
#include "common/of.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OF_SOURCE_DIR
#define OF_SOURCE_DIR "."
#endif

/* An installed build (the Debian package) compiles its data directory in
 * as OF_MIGRATIONS_DIR; a development build uses the source tree's. */
#ifndef OF_MIGRATIONS_DIR
#define OF_MIGRATIONS_DIR OF_SOURCE_DIR "/migrations"
#endif

static const char *
cli_migrate_dir(void)
{
    const char *d = getenv("ORDERFLOW_MIGRATIONS_DIR");
    if (d != NULL && d[0] != '\0')
        return d;
    return OF_MIGRATIONS_DIR;
}

static int
cli_migrate_usage(void)
{
    fprintf(stderr, "usage: orderflow migrate up [N] | down [N] | status\n");
    return 2;
}

int
cli_migrate(const struct of_cfg *cfg, int argc, char **argv)
{
    struct migrate_opts o = { .limit = -1, .out = stdout, .err = stderr };

    if (argc > 0 && strcmp(argv[0], "migrate") == 0) {
        argc--;
        argv++;
    }
    if (argc < 1 || argc > 2)
        return cli_migrate_usage();
    const char *cmd = argv[0];
    if (strcmp(cmd, "up") == 0)
        o.action = MIGRATE_UP;
    else if (strcmp(cmd, "down") == 0)
        o.action = MIGRATE_DOWN;
    else if (strcmp(cmd, "status") == 0)
        o.action = MIGRATE_STATUS;
    else
        return cli_migrate_usage();
    if (argc == 2) {
        int64_t v;
        if (o.action == MIGRATE_STATUS || of_parse_i64(argv[1], strlen(argv[1]), 1, 1000000, &v) != 0)
            return cli_migrate_usage();
        o.limit = (long)v;
    }
    if (o.action == MIGRATE_DOWN && o.limit < 0)
        o.limit = 1;
    if (cfg->database.url == NULL || cfg->database.url[0] == '\0') {
        fprintf(stderr, "migrate: no database: set ORDERFLOW_DATABASE_URL or database.url\n");
        return 1;
    }
    o.db.url = cfg->database.url;
    o.db.connect_timeout = cfg->database.connect_timeout;
    o.dir = cli_migrate_dir();
    return migrate_apply(&o) == OF_OK ? 0 : 1;
}
