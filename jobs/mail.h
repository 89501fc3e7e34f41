/*
 * mail.h -- rendering an event's mail and preparing a libcurl SMTP easy
 * handle for it (helper E2b's part; the jobs engine calls these).
 */
#ifndef OF_JOBS_MAIL_H
#define OF_JOBS_MAIL_H

#include <stdbool.h>
#include <curl/curl.h>

#include "config/config.h"

struct mail_msg;                                   /* opaque */
/* Decide and render: OF_OK with *out set, OF_NOTFOUND when this event sends no mail
 * (inactive customer, a status mail for another status), OF_ERR on a bad event.
 * customer_email/name/active come from the jobs process's lookup of the order's customer. */
int  mail_render(const struct cfg_mail *cfg, const char *event_json, const char *customer_email,
                 const char *customer_name, bool customer_active, struct mail_msg **out);
/* Configure easy (a fresh CURL *) to send msg over SMTP per cfg (URL, STARTTLS, login from cfg->smtp_user/password, timeouts). */
int  mail_easy_setup(CURL *easy, const struct cfg_mail *cfg, const struct mail_msg *msg, long timeout_s);
/* After the transfer: the SMTP reply code (CURLINFO_RESPONSE_CODE) -> OF_OK (2xx), OF_AGAIN (4xx, refused connection: retry), OF_ERR (5xx: dead). */
int  mail_outcome(CURLcode rc, long smtp_code);
void mail_msg_free(struct mail_msg *msg);

#endif
