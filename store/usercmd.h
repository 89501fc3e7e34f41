/*
 * usercmd.h -- `orderflow user create --email E [--role admin|user]`.
 *
 * Reads the password from stdin (one line; echo is turned off when stdin is
 * a terminal), validates email and password as API.md's Auth section says,
 * hashes with argon2id (libsodium, the same cost as the workers' hasher) and
 * inserts the user. Blocking libpq on purpose: this is a command, not a
 * worker. Dispatched by master/main.c (see master/cli.h).
 */
#ifndef OF_STORE_USERCMD_H
#define OF_STORE_USERCMD_H

#include "config/config.h"

/* argv[0] is "user" (or the action itself); returns the exit code:
 * 0 created, 1 failure (invalid input, duplicate email, database), 2 usage. */
int usercmd_cli(const struct of_cfg *cfg, int argc, char **argv);

#endif
