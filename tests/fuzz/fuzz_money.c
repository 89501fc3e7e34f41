/*
 * fuzz_money.c -- libFuzzer target for domain/money.h.
 *
 * Properties: money_parse_str never reads past len and, when it accepts,
 * the value is within the input bound and survives format -> parse
 * unchanged; money_from_json_real on any 8-byte double either refuses or
 * gives cents whose decimal form parses back to the same double.
 * Build and run: tests/fuzz/build.sh, then build-fuzz/fuzz_money corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size heap copy so ASan catches any over-read */
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);

    int64_t c;
    if (money_parse_str(s, size, &c) == OF_OK) {
        if (c > MONEY_INPUT_MAX || c < -MONEY_INPUT_MAX)
            abort();
        char    buf[MONEY_FMT_CAP];
        int64_t back;
        money_format(c, buf);
        if (money_parse_str(buf, strlen(buf), &back) != OF_OK || back != c)
            abort();
    }

    if (size >= sizeof(double)) {
        double v;
        memcpy(&v, data, sizeof(v));
        if (money_from_json_real(v, &c) == OF_OK) {
            char buf[MONEY_FMT_CAP];
            money_format(c, buf);
            if (strtod(buf, NULL) != v && !(v == 0 && c == 0))
                abort();
        }
        int64_t i;
        memcpy(&i, data, sizeof(i));
        char buf[MONEY_FMT_CAP];
        money_format(i, buf);   /* any int64 formats without overflow */
    }
    free(s);
    return 0;
}
