/*
 * cli.h -- subcommands that live outside master/ and are dispatched by main.c.
 *
 * `orderflow migrate ...`     -> migrate_cli()   (store/, the migration runner)
 * `orderflow user create ...` -> usercmd_cli()   (store/, creates a user)
 *
 * Both get the loaded settings (the JWT secret is not required) and the
 * arguments from the subcommand word on: argv[0] is "migrate" or "user", and
 * -c/--config FILE has already been removed. They return the process exit
 * code (0 ok, 1 failure, 2 usage) and print their own messages.
 *
 * A declaration marked OF_CLI_WEAK lets the binary link before store/
 * provides the function; main.c prints "not built" when it is missing. Note:
 * a weak reference does not by itself pull an object out of a static
 * library, so once store/ has the function, drop OF_CLI_WEAK from it.
 */
#ifndef OF_MASTER_CLI_H
#define OF_MASTER_CLI_H

#include "config/config.h"

#ifndef OF_CLI_WEAK
#define OF_CLI_WEAK __attribute__((weak))
#endif

/* store/migrate.c and store/usercmd.c exist: strong references, so they are linked for certain */
int migrate_cli(const struct of_cfg *cfg, int argc, char **argv);
int usercmd_cli(const struct of_cfg *cfg, int argc, char **argv);

#endif
