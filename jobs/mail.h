/*
 * mail.h -- the customer mails of the jobs process: deciding whether an event
 * sends one, rendering it (RFC 5322 headers, RFC 2047 encoded-words, a UTF-8
 * quoted-printable text body) and configuring a libcurl easy handle that sends
 * it over SMTP. No I/O here: the caller drives the handle (curl multi on the
 * jobs loop, or curl_easy_perform in a test tool) and asks mail_outcome() what
 * the result means for the delivery.
 */
#ifndef OF_JOBS_MAIL_H
#define OF_JOBS_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>

#include "common/of.h"
#include "config/config.h"

struct mail_msg;                                   /* opaque */

/* Decide and render: OF_OK with *out set (free it with mail_msg_free),
 * OF_NOTFOUND when this event sends no mail (inactive customer, no address;
 * order.status_changed to anything but shipped/cancelled; transfer.created or
 * any other type), OF_ERR on a malformed event or an address that cannot be
 * sent to. customer_name may be NULL: the order's customer_name is used. */
int  mail_render(const struct cfg_mail *cfg, const char *event_json, const char *customer_email,
                 const char *customer_name, bool customer_active, struct mail_msg **out);

/* Configure a fresh easy handle to send msg over SMTP per cfg (URL, envelope,
 * STARTTLS, login, timeouts of timeout_s seconds). The handle reads the
 * message from msg, which must outlive the transfer; one transfer at a time
 * per msg. OF_OK, or OF_ERR (no/unsupported smtp_url, a curl option refused). */
int  mail_easy_setup(CURL *easy, const struct cfg_mail *cfg, const struct mail_msg *msg, long timeout_s);

/* The outcome of a finished transfer (rc from curl, smtp_code from
 * CURLINFO_RESPONSE_CODE): OF_OK (accepted), OF_AGAIN (4xx, a refused or
 * failed connection, a timeout: retry), OF_ERR (5xx or a broken setup:
 * permanent, the delivery goes dead). */
int  mail_outcome(CURLcode rc, long smtp_code);

/* The rendered message (headers + body, CRLF line ends), for tests and logs. */
const char *mail_msg_text(const struct mail_msg *msg, size_t *len);
void mail_msg_free(struct mail_msg *msg);

#endif
