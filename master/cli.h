/*
 * cli.h -- the command-line front ends main.c dispatches to besides serve
 * and check-config. They own the user interface (arguments, prompts,
 * messages, exit codes); the work itself is store/'s (store/migrate.h,
 * store/repos.h's store_user_create_now) and worker/'s password hash.
 *
 * `orderflow migrate ...`     -> cli_migrate()  (master/cli_migrate.c)
 * `orderflow user create ...` -> cli_user()     (master/cli_user.c)
 *
 * Both get the loaded settings (the JWT secret is not required) and the
 * arguments from the subcommand word on: argv[0] is "migrate" or "user", and
 * -c/--config FILE has already been removed. They return the process exit
 * code (0 ok, 1 failure, 2 usage) and print their own messages.
 */
#ifndef OF_MASTER_CLI_H
#define OF_MASTER_CLI_H

#include "config/config.h"

/* `migrate up [N] | down [N] | status`: migrations from
 * $ORDERFLOW_MIGRATIONS_DIR, else the compiled-in OF_MIGRATIONS_DIR (an
 * installed build: /usr/share/orderflow/migrations), else OF_SOURCE_DIR
 * "/migrations". up: all
 * pending (or the next N); down: the last applied one (or the last N);
 * status: every known migration. Progress on stdout, errors on stderr. */
int cli_migrate(const struct of_cfg *cfg, int argc, char **argv);

/* `user create --email E [--role admin|user]`: the password is one line of
 * stdin (echo off on a terminal), validated as API.md's Auth section says,
 * hashed as registration hashes it, and inserted with registration's
 * statement. 0 created, 1 failure (invalid input, duplicate email,
 * database), 2 usage. */
int cli_user(const struct of_cfg *cfg, int argc, char **argv);

/* `config-reference [--man]` (hidden, for the build): every setting of
 * config/'s key table, as tab-separated text or as the orderflow.cfg(5) man
 * page in roff. Needs no settings; argv[0] is "config-reference". */
int cli_config_reference(int argc, char **argv);

#endif
