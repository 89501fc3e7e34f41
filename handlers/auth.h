/*
 * auth.h -- /api/v1/auth/... and /api/v1/users (admin).
 */
#ifndef OF_HDL_AUTH_H
#define OF_HDL_AUTH_H

#include "handlers/hdl.h"
#include "domain/user.h"

void hdl_auth_register(struct hdl_req *r);
void hdl_auth_login(struct hdl_req *r);
void hdl_auth_me(struct hdl_req *r);
void hdl_users_list(struct hdl_req *r);
void hdl_users_patch(struct hdl_req *r);
void hdl_users_delete(struct hdl_req *r);

/* The auth middleware's lookup: who user_id (from a verified token) is,
 * read from the database on this request, so a demoted or deleted user
 * loses access at once. On OF_OK r->who is filled (strings in r->mem);
 * otherwise r->who is untouched and rc is OF_UNAUTH (no such user),
 * OF_UNAVAILABLE or OF_ERR. cb fires once, possibly before this returns. */
typedef void (*hdl_principal_cb)(int rc, struct hdl_req *r);
void hdl_auth_current(struct hdl_req *r, int64_t user_id, hdl_principal_cb cb);

/* {id, email, role, created_at} */
json_t *hdl_user_json(const struct user *u);

#endif
