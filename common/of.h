/*
 * of.h -- return codes shared by every layer.
 *
 * Functions return OF_OK (0) on success and a negative code otherwise; the
 * detail of an error lives on the object that failed, never in a global.
 */
#ifndef OF_OF_H
#define OF_OF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum of_rc {
    OF_OK          = 0,
    OF_ERR         = -1,   /* bug or internal failure: 500 */
    OF_AGAIN       = -2,   /* not yet; try later */
    OF_NOTFOUND    = -3,   /* 404 */
    OF_CONFLICT    = -4,   /* 409 */
    OF_INVALID     = -5,   /* 422 */
    OF_UNAVAILABLE = -6,   /* database down or queue timeout: 503 */
    OF_FORBIDDEN   = -7,   /* 403 */
    OF_BADREQ      = -8,   /* domain rule refused: 400 */
    OF_UNAUTH      = -9,   /* 401 */
};

#define OF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define OF_UNUSED(x) ((void)(x))

#endif
