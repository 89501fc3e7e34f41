/*
 * user.c -- role names.
 */
#include "domain/user.h"
#include "domain/rules.h"

#include <string.h>

const char *
role_name(enum role r)
{
    return r == ROLE_ADMIN ? "admin" : "user";
}

bool
role_parse(const char *s, enum role *out)
{
    enum rules_role rr;
    if (rules_role_parse(s, strlen(s), &rr) != OF_OK)
        return false;
    *out = rr == RULES_ROLE_ADMIN ? ROLE_ADMIN : ROLE_USER;
    return true;
}
