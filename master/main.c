/*
 * main.c -- the orderflow command line.
 *
 *   orderflow [serve] [-c FILE]          run the server (master + workers)
 *   orderflow check-config [-c FILE]     print the effective settings, exit 1 on error
 *   orderflow migrate [-c FILE] ARGS...  database migrations (cli_migrate.c)
 *   orderflow user create [-c FILE] ...  create a user (cli_user.c)
 *   orderflow --version | --help
 *
 * -c/--config may appear anywhere before "--"; without it ORDERFLOW_CONFIG
 * names the file, and without that the built-in defaults (plus environment)
 * are used. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/of.h"
#include "config/config.h"
#include "master/cli.h"
#include "master/master.h"

#define MAIN_MAX_ARGS 256

static void
main_usage(FILE *out)
{
    fputs("usage: orderflow [serve] [-c FILE]\n"
          "       orderflow check-config [-c FILE]\n"
          "       orderflow migrate [-c FILE] ARGS...\n"
          "       orderflow user create [-c FILE] ARGS...\n"
          "       orderflow --version | --help\n"
          "\n"
          "  serve         run the server: a master process supervising workers (default)\n"
          "  check-config  validate the settings and print them, secrets redacted\n"
          "  migrate       apply or inspect database migrations\n"
          "  user create   create a user\n"
          "\n"
          "  -c, --config FILE  libconfig settings file (default: $ORDERFLOW_CONFIG, else\n"
          "                     built-in defaults); see config/orderflow.cfg\n"
          "\n"
          "environment: ORDERFLOW_DATABASE_URL, ORDERFLOW_JWT_SECRET (>= 32 bytes, needed\n"
          "by serve), ORDERFLOW_LISTEN, ORDERFLOW_WORKERS, ORDERFLOW_CONFIG\n"
          "\n"
          "signals to the master: TERM graceful stop, INT/QUIT quick stop, HUP reload\n"
          "config and replace workers, TTIN/TTOU one worker more/less, USR1 reopen log\n",
          out);
}

/* Pull -c FILE / --config FILE / --config=FILE out of argv; the rest goes
 * to rest[] in order. Returns the count in rest or -1 on a usage error. */
static int
main_split_args(int argc, char **argv, const char **config, char **rest)
{
    int  n = 0;
    bool dashdash = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
        } else if (!dashdash && (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "orderflow: %s needs a file name\n", a);
                return -1;
            }
            *config = argv[++i];
            continue;
        } else if (!dashdash && strncmp(a, "--config=", 9) == 0) {
            *config = a + 9;
            continue;
        }
        if (n >= MAIN_MAX_ARGS - 1) {
            fputs("orderflow: too many arguments\n", stderr);
            return -1;
        }
        rest[n++] = argv[i];
    }
    rest[n] = NULL;
    return n;
}

static int
main_check_config(const char *path)
{
    struct of_cfg cfg;
    char          err[1024];

    if (cfg_load(&cfg, path, false, err, sizeof(err)) != OF_OK) {
        fprintf(stderr, "orderflow: %s\n", err);
        return 1;
    }
    cfg_dump(&cfg, stdout);
    cfg_free(&cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int
main_serve(const char *path)
{
    char           err[1024];
    struct of_cfg *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL) {
        of_log_error("out of memory");
        return 1;
    }
    if (cfg_load(cfg, path, true, err, sizeof(err)) != OF_OK) {
        of_log_error("configuration error: %s", err);
        free(cfg);
        return 1;
    }
    enum of_log_level lvl = OF_LOG_INFO;
    of_log_level_parse(cfg->server.log_level, &lvl);
    of_log_set_role("master");
    if (of_log_open(cfg->server.log_file, lvl) != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "cannot open server.log_file %s", cfg->server.log_file);
        cfg_free(cfg);
        free(cfg);
        return 1;
    }
    return master_serve(cfg);
}

typedef int (*main_sub_fn)(const struct of_cfg *cfg, int argc, char **argv);

static int
main_sub(main_sub_fn fn, const char *path, int argc, char **argv)
{
    struct of_cfg cfg;
    char          err[1024];

    if (cfg_load(&cfg, path, false, err, sizeof(err)) != OF_OK) {
        fprintf(stderr, "orderflow: %s\n", err);
        return 1;
    }
    int rc = fn(&cfg, argc, argv);
    cfg_free(&cfg);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *config = NULL;
    char       *rest[MAIN_MAX_ARGS];

    master_save_argv(argc, argv);
    int n = main_split_args(argc, argv, &config, rest);
    if (n < 0) {
        main_usage(stderr);
        return 2;
    }
    if (config == NULL) {
        const char *env = getenv("ORDERFLOW_CONFIG");
        if (env != NULL && env[0] != '\0')
            config = env;
    }
    const char *cmd = n > 0 ? rest[0] : "serve";

    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("orderflow %s\n", OF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "migrate") == 0)
        return main_sub(cli_migrate, config, n, rest);
    if (strcmp(cmd, "user") == 0)
        return main_sub(cli_user, config, n, rest);
    if (strcmp(cmd, "config-reference") == 0)   /* hidden: generates orderflow.cfg(5) */
        return cli_config_reference(n, rest);
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "check-config") != 0) {
        fprintf(stderr, "orderflow: unknown command or option \"%s\"\n", cmd);
        main_usage(stderr);
        return 2;
    }
    if (n > 1) {
        fprintf(stderr, "orderflow: %s takes no argument \"%s\"\n", cmd, rest[1]);
        main_usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "check-config") == 0)
        return main_check_config(config);
    return main_serve(config);
}
