/*
 * fuzz_config.c -- libFuzzer target for config/config.h: cfg_load on a file
 * holding the input (libconfig syntax, then our validation and defaults).
 *
 * Properties: loading never crashes or leaks; a refusal always says why (a
 * non-empty message); an accepted config can be dumped, and cfg_free
 * releases it. The environment overrides are cleared first.
 * Build and run: tests/fuzz/build.sh, tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/of.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char path[64];
static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    static const char *const env[] = { "ORDERFLOW_DATABASE_URL", "ORDERFLOW_LISTEN",
                                       "ORDERFLOW_WORKERS", "ORDERFLOW_JWT_SECRET",
                                       "ORDERFLOW_CONFIG" };
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        unsetenv(env[i]);
    snprintf(path, sizeof(path), "/tmp/of-fuzz-config-%ld.cfg", (long)getpid());
    devnull = fopen("/dev/null", "w");
    return devnull == NULL ? -1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);

    struct of_cfg cfg;
    char          err[512];
    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
    if (cfg_load(&cfg, path, false, err, sizeof(err)) == OF_OK) {
        cfg_dump(&cfg, devnull);
        cfg_free(&cfg);
    } else if (err[0] == '\0') {
        abort();
    }
    unlink(path);
    return 0;
}
