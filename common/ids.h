/*
 * ids.h -- random identifiers and secrets made with libsodium's randomness:
 * event ids ("evt_" + 26 characters, ULID-style: 48-bit millisecond time
 * then 80 random bits in Crockford base32, so ids sort by creation time) and
 * webhook signing secrets ("whsec_" + base64 of 32 random bytes, Standard
 * Webhooks). Nothing here allocates.
 */
#ifndef OF_IDS_H
#define OF_IDS_H

#include <stddef.h>
#include <stdint.h>

#define OF_EVENT_ID_LEN 30                    /* "evt_" + 26 */
#define OF_EVENT_ID_CAP (OF_EVENT_ID_LEN + 1)
#define OF_WHSEC_RAW    32                    /* secret bytes */
#define OF_WHSEC_CAP    (6 + 44 + 1)          /* "whsec_" + base64(32) + NUL */

/* The id for ms (milliseconds since the epoch, low 48 bits used) and 10
 * random bytes: pure, for tests. */
void of_event_id_encode(uint64_t ms, const unsigned char rnd[10], char out[OF_EVENT_ID_CAP]);
/* A fresh event id: the wall clock and libsodium's randombytes_buf. */
void of_event_id_new(char out[OF_EVENT_ID_CAP]);

/* A fresh webhook secret, "whsec_" + standard base64 (padded) of 32 bytes. */
void of_webhook_secret_new(char out[OF_WHSEC_CAP]);

#endif
