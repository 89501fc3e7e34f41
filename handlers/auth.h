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

/* {id, email, role, created_at} */
json_t *hdl_user_json(const struct user *u);

#endif
