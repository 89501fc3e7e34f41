/*
 * fuzz_jwt.c -- libFuzzer target for worker/jwt.h's jwt_verify.
 *
 * Arbitrary bytes (as a NUL-terminated token) must never crash, leak or be
 * accepted: nothing the fuzzer makes carries a valid HMAC under the secret,
 * so anything but OF_UNAUTH is a bug. A seed of real tokens helps it reach
 * the claim checks: tests/fuzz/build.sh writes some into corpus-jwt/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef-fuzz";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tok = malloc(size + 1);
    if (tok == NULL)
        return 0;
    memcpy(tok, data, size);
    tok[size] = '\0';

    int64_t id;
    char    role[JWT_ROLE_CAP];
    if (jwt_verify(SECRET, sizeof(SECRET) - 1, tok, &id, role) != OF_UNAUTH)
        abort();
    free(tok);
    return 0;
}
