/*
 * cli_user.c -- `orderflow user create` (see cli.h).
 *
 * Owns the command's user interface: arguments, reading the password from
 * stdin with the terminal's echo off, messages and exit codes. Order of
 * work: parse arguments, normalise the email, read and validate the
 * password, hash it with the workers' own function (worker/hasher.h), then
 * insert with registration's statement (store_user_create_now). A duplicate
 * email is detected by the unique index (ON CONFLICT DO NOTHING returns no
 * row), never by a check-then-insert. The password is wiped from memory
 * once hashed. Blocking on purpose: this is a command, not a worker.
 */
#include "master/cli.h"
#include "store/pgblock.h"
#include "store/repos.h"
#include "worker/hasher.h"
#include "domain/rules.h"
#include "common/of.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define UC_PW_CAP (RULES_PASSWORD_MAX * 4 + 4)   /* bytes: 128 chars of UTF-8, CR LF, NUL */

static int
uc_usage(void)
{
    fprintf(stderr, "usage: orderflow user create --email EMAIL [--role admin|user]\n"
                    "       (the password is read from stdin, one line)\n");
    return 2;
}

/* "--key value" or "--key=value"; advances *i past what it consumed. */
static const char *
uc_opt(int argc, char **argv, int *i, const char *key)
{
    size_t kl = strlen(key);
    const char *a = argv[*i];
    if (strncmp(a, key, kl) != 0)
        return NULL;
    if (a[kl] == '=')
        return a + kl + 1;
    if (a[kl] != '\0' || *i + 1 >= argc)
        return NULL;
    (*i)++;
    return argv[*i];
}

/* One line from stdin into buf (without its line end). -1 on EOF before
 * anything, -2 when the line does not fit. */
static int
uc_read_line(char *buf, size_t cap, size_t *len)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;

    if (tty) {
        fprintf(stderr, "Password: ");
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (got == NULL)
        return -1;
    size_t n = strlen(buf);
    bool ended = n > 0 && buf[n - 1] == '\n';
    if (!ended && !feof(stdin))
        return -2;
    if (ended)
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    *len = n;
    return 0;
}

/* 0 inserted, 1 failure (message printed). */
static int
uc_insert(const struct of_cfg *cfg, const char *email, const char *hash, const char *role)
{
    struct pgblock_target db = { cfg->database.url, cfg->database.connect_timeout };
    char    err[2048];
    int64_t id;

    switch (store_user_create_now(&db, email, hash, role, &id, err, sizeof(err))) {
    case OF_OK:
        printf("created user %" PRId64 ": %s (%s)\n", id, email, role);
        return 0;
    case OF_CONFLICT:
        fprintf(stderr, "user create: a user with email %s already exists\n", email);
        return 1;
    default:
        fprintf(stderr, "user create: %s", err);
        return 1;
    }
}

/* Reads, validates and hashes the password into hash. 0 or 1. */
static int
uc_password_hash(char hash[HASHER_STR_BYTES])
{
    char   pw[UC_PW_CAP];
    size_t plen = 0;
    int    rc = 1;

    int lr = uc_read_line(pw, sizeof(pw), &plen);
    if (lr == -1) {
        fprintf(stderr, "user create: no password on stdin\n");
        goto done;
    }
    int vr = lr == -2 ? RULES_E_PASSWORD_LONG : rules_password(pw, plen);
    if (vr != OF_OK) {
        fprintf(stderr, "user create: invalid password: %s\n", rules_strerror(vr));
        goto done;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "user create: sodium_init() failed\n");
        goto done;
    }
    if (hasher_hash_now(hash, pw, plen) != OF_OK) {
        fprintf(stderr, "user create: hashing failed (out of memory?)\n");
        goto done;
    }
    rc = 0;
done:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

int
cli_user(const struct of_cfg *cfg, int argc, char **argv)
{
    const char *email_arg = NULL, *role = "user", *v;
    char        email[RULES_EMAIL_BUFSZ], hash[HASHER_STR_BYTES];
    size_t      elen;
    enum rules_role rr;

    if (argc > 0 && strcmp(argv[0], "user") == 0) {
        argc--;
        argv++;
    }
    if (argc < 1 || strcmp(argv[0], "create") != 0)
        return uc_usage();
    for (int i = 1; i < argc; i++) {
        if ((v = uc_opt(argc, argv, &i, "--email")) != NULL)
            email_arg = v;
        else if ((v = uc_opt(argc, argv, &i, "--role")) != NULL)
            role = v;
        else
            return uc_usage();
    }
    if (email_arg == NULL)
        return uc_usage();
    if (rules_role_parse(role, strlen(role), &rr) != OF_OK) {
        fprintf(stderr, "user create: --role must be admin or user, not \"%s\"\n", role);
        return 2;
    }
    int erc = rules_email(email_arg, strlen(email_arg), email, sizeof(email), &elen);
    if (erc != OF_OK) {
        fprintf(stderr, "user create: invalid email: %s\n", rules_strerror(erc));
        return 1;
    }
    if (cfg->database.url == NULL || cfg->database.url[0] == '\0') {
        fprintf(stderr, "user create: no database: set ORDERFLOW_DATABASE_URL or database.url\n");
        return 1;
    }
    if (uc_password_hash(hash) != 0)
        return 1;
    return uc_insert(cfg, email, hash, rules_role_name(rr));
}
