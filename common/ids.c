/*
 * ids.c -- event ids and webhook secrets (see ids.h).
 */
#include "common/ids.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void
of_event_id_encode(uint64_t ms, const unsigned char rnd[10], char out[OF_EVENT_ID_CAP])
{
    memcpy(out, "evt_", 4);
    char *p = out + 4;
    /* 48 bits of time in 10 characters (the first carries 3 bits) */
    ms &= (UINT64_C(1) << 48) - 1;
    for (int i = 9; i >= 0; i--) {
        p[i] = crockford[ms & 31];
        ms >>= 5;
    }
    /* 80 random bits in 16 characters: two 40-bit halves of 8 each */
    for (int half = 0; half < 2; half++) {
        uint64_t v = 0;
        for (int b = 0; b < 5; b++)
            v = (v << 8) | rnd[half * 5 + b];
        for (int i = 7; i >= 0; i--) {
            p[10 + half * 8 + i] = crockford[v & 31];
            v >>= 5;
        }
    }
    out[OF_EVENT_ID_LEN] = '\0';
}

void
of_event_id_new(char out[OF_EVENT_ID_CAP])
{
    struct timespec ts;
    unsigned char   rnd[10];

    clock_gettime(CLOCK_REALTIME, &ts);
    randombytes_buf(rnd, sizeof(rnd));
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    of_event_id_encode(ms, rnd, out);
}

void
of_webhook_secret_new(char out[OF_WHSEC_CAP])
{
    unsigned char raw[OF_WHSEC_RAW];

    randombytes_buf(raw, sizeof(raw));
    memcpy(out, "whsec_", 6);
    sodium_bin2base64(out + 6, OF_WHSEC_CAP - 6, raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof(raw));
}
