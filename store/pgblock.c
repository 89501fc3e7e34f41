/*
 * pgblock.c -- see pgblock.h.
 */
#include "store/pgblock.h"

#include <libpq-fe.h>
#include <stdio.h>

#include "common/util.h"

PGconn *
pgblock_connect(const struct pgblock_target *t, const char *app_name, char *err, size_t cap)
{
    char ct[16];

    snprintf(ct, sizeof(ct), "%d", t->connect_timeout > 0 ? t->connect_timeout : 10);
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { t->url, ct, app_name, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        of_strlcpy(err, "out of memory\n", cap);
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, cap, "cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}
