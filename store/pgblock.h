/*
 * pgblock.h -- one blocking libpq connection, for work that runs from the
 * command line and never inside a worker: the migration runner and creating
 * a user (master/ calls both). Workers use the async pool (store/pool.h).
 *
 * Owns only the connecting: the callers run their statements and
 * PQfinish() the connection. No config/: the caller passes the URL and the
 * timeout it wants.
 */
#ifndef OF_STORE_PGBLOCK_H
#define OF_STORE_PGBLOCK_H

#include <stddef.h>

struct pg_conn;   /* libpq's PGconn */

/* Where to connect. */
struct pgblock_target {
    const char *url;               /* libpq URL or keyword/value string */
    int         connect_timeout;   /* seconds; <= 0 means 10 */
};

/* Connect to t->url, naming the session app_name. NULL on failure with
 * "out of memory\n" or "cannot connect to the database: <libpq's message>"
 * (ending in a newline) in err. */
struct pg_conn *pgblock_connect(const struct pgblock_target *t, const char *app_name,
                                char *err, size_t cap);

#endif
