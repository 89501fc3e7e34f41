/*
 * fuzz_rules.c -- libFuzzer target for domain/rules.h's text and email
 * rules: no over-read of (s, len), and an accepted email stays accepted and
 * unchanged when normalised again (idempotent normalisation).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);

    const char *t;
    size_t      tl;
    if (rules_text(s, size, 1, 200, &t, &tl) == OF_OK && (t < s || t + tl > s + size))
        abort();

    char   out[RULES_EMAIL_BUFSZ], again[RULES_EMAIL_BUFSZ];
    size_t n, n2;
    if (rules_email(s, size, out, sizeof(out), &n) == OF_OK) {
        if (rules_email(out, n, again, sizeof(again), &n2) != OF_OK || n2 != n ||
            memcmp(out, again, n) != 0)
            abort();
    }
    (void)rules_password(s, size);
    (void)rules_idem_key(s, size);
    free(s);
    return 0;
}
