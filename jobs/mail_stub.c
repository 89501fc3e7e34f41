/*
 * mail_stub.c -- stands in for jobs/mail.c until helper E2b's mail code is
 * merged (delete this file then). mail_render answers OF_UNAVAILABLE, which
 * the engine records as a dead delivery with last_error "mail not built".
 */
#include "jobs/mail.h"
#include "common/of.h"

int
mail_render(const struct cfg_mail *cfg, const char *event_json, const char *customer_email,
            const char *customer_name, bool customer_active, struct mail_msg **out)
{
    OF_UNUSED(cfg);
    OF_UNUSED(event_json);
    OF_UNUSED(customer_email);
    OF_UNUSED(customer_name);
    OF_UNUSED(customer_active);
    *out = NULL;
    return OF_UNAVAILABLE;
}

int
mail_easy_setup(CURL *easy, const struct cfg_mail *cfg, const struct mail_msg *msg, long timeout_s)
{
    OF_UNUSED(easy);
    OF_UNUSED(cfg);
    OF_UNUSED(msg);
    OF_UNUSED(timeout_s);
    return OF_ERR;
}

int
mail_outcome(CURLcode rc, long smtp_code)
{
    OF_UNUSED(rc);
    OF_UNUSED(smtp_code);
    return OF_ERR;
}

void
mail_msg_free(struct mail_msg *msg)
{
    OF_UNUSED(msg);
}
