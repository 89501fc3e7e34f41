/*
 * deliver.c -- one attempt per claimed delivery, with libcurl's multi
 * interface driven by the jobs process's libevent loop
 * (CURLMOPT_SOCKETFUNCTION + CURLMOPT_TIMERFUNCTION, curl_multi_socket_action):
 * nothing here blocks. Webhooks are signed per Standard Webhooks 1.0, never
 * follow redirects, and connect only to public addresses unless
 * webhooks.allow_private (checked on the address actually connected to, in
 * CURLOPT_OPENSOCKETFUNCTION, so DNS rebinding cannot pass). Mail goes
 * through jobs/mail.h.
 */
#include "jobs/jobs_int.h"
#include "jobs/mail.h"
#include "jobs/webhook.h"
#include "common/log.h"
#include "common/of.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <sodium.h>

#define EXCERPT_MAX 200

struct delivery {
    struct jobs       *j;
    struct delivery   *prev, *next;
    int64_t            id;
    bool               mail;
    int                attempt;         /* this attempt's number, 1 = first */
    CURL              *easy;
    struct curl_slist *hdrs;
    struct mail_msg   *msg;
    char              *body;
    bool               refused;         /* the open-socket check said no */
    uint64_t           start_ns;
    size_t             excerpt_len;
    char               excerpt[EXCERPT_MAX + 1];
    char               errbuf[CURL_ERROR_SIZE];
};

/* ---- libcurl multi on libevent ---- */

static void dl_check_done(struct jobs *j);

static void
on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    int          flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int          running = 0;
    curl_multi_socket_action(j->multi, fd, flags, &running);
    dl_check_done(j);
}

static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct jobs  *j = userp;
    struct event *ev = socketp;
    OF_UNUSED(easy);

    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL)
            event_free(ev);
        curl_multi_assign(j->multi, s, NULL);
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev != NULL)
        event_free(ev);
    ev = event_new(j->base, s, kind, on_sock_event, j);
    if (ev == NULL || event_add(ev, NULL) != 0)
        of_fatal("event_new for a libcurl socket failed");
    curl_multi_assign(j->multi, s, ev);
    return 0;
}

static void
on_curl_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct jobs *j = arg;
    int          running = 0;
    OF_UNUSED(fd);
    OF_UNUSED(what);
    curl_multi_socket_action(j->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    dl_check_done(j);
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct jobs *j = userp;
    OF_UNUSED(multi);
    if (timeout_ms < 0) {
        evtimer_del(j->curl_timer);
        return 0;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    evtimer_add(j->curl_timer, &tv);
    return 0;
}

int
deliver_init(struct jobs *j, const struct deliver_hooks *hooks)
{
    j->dh = hooks;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return OF_ERR;
    j->multi = curl_multi_init();
    j->curl_timer = evtimer_new(j->base, on_curl_timeout, j);
    if (j->multi == NULL || j->curl_timer == NULL)
        return OF_ERR;
    curl_multi_setopt(j->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(j->multi, CURLMOPT_SOCKETDATA, j);
    curl_multi_setopt(j->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(j->multi, CURLMOPT_TIMERDATA, j);
    curl_multi_setopt(j->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)j->cfg->jobs.concurrency);
    return OF_OK;
}

/* ---- one delivery ---- */

static void
dl_free(struct delivery *d)
{
    struct jobs *j = d->j;
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        j->active = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    j->inflight--;
    if (d->easy != NULL) {
        curl_multi_remove_handle(j->multi, d->easy);
        curl_easy_cleanup(d->easy);
    }
    curl_slist_free_all(d->hdrs);
    if (d->msg != NULL)
        mail_msg_free(d->msg);
    free(d->body);
    free(d);
}

/* Record a failed attempt: retried on the schedule, or dead after it. */
static void
dl_failed(struct delivery *d, int code, const char *err, bool permanent)
{
    const struct cfg_webhooks *w = &d->j->cfg->webhooks;
    double u = (double)randombytes_uniform(1000000) / 1e6;
    double delay = permanent ? -1.0 : jobs_retry_delay(w->retry_schedule, w->n_retry_schedule, d->attempt, u);
    d->j->dh->finished(d->j, d->id, delay < 0 ? OUTBOX_DEAD : OUTBOX_RETRY, code, err, delay);
    of_sb_jobs_record(d->j->sb, d->mail ? 0 : 1, delay < 0 ? 2 : 1, (of_mono_ns() - d->start_ns) / 1000);
}

static void
dl_succeeded(struct delivery *d, int code, const char *note)
{
    d->j->dh->finished(d->j, d->id, OUTBOX_SUCCEEDED, code, note, 0);
    of_sb_jobs_record(d->j->sb, d->mail ? 0 : 1, 0, (of_mono_ns() - d->start_ns) / 1000);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct delivery *d = arg;
    size_t           n = size * nmemb, room = EXCERPT_MAX - d->excerpt_len;
    size_t           take = n < room ? n : room;
    memcpy(d->excerpt + d->excerpt_len, ptr, take);
    d->excerpt_len += take;
    d->excerpt[d->excerpt_len] = '\0';
    return n;                      /* the rest is read and dropped */
}

static curl_socket_t
on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct delivery *d = arg;
    if (purpose == CURLSOCKTYPE_IPCXN && !d->j->cfg->webhooks.allow_private &&
        !jobs_addr_public(&a->addr)) {
        d->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void
webhook_done(struct delivery *d, CURLcode rc)
{
    long code = 0;
    char err[400];
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
    if (d->refused) {
        dl_failed(d, 0, "refused: non-public address", false);
        return;
    }
    if (rc != CURLE_OK) {
        snprintf(err, sizeof(err), "%s", d->errbuf[0] != '\0' ? d->errbuf : curl_easy_strerror(rc));
        dl_failed(d, code > 0 ? (int)code : 0, err, false);
        return;
    }
    if (code >= 200 && code < 300) {
        dl_succeeded(d, (int)code, NULL);
        return;
    }
    snprintf(err, sizeof(err), "HTTP %ld%s: %s", code,
             code >= 300 && code < 400 ? " (redirect not followed)" : "", d->excerpt);
    dl_failed(d, (int)code, err, false);
}

static void
mail_done(struct delivery *d, CURLcode rc)
{
    long code = 0;
    char err[400];
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
    int out = mail_outcome(rc, code);
    if (out == OF_OK) {
        dl_succeeded(d, (int)code, NULL);
        return;
    }
    snprintf(err, sizeof(err), "SMTP %ld: %s", code,
             d->errbuf[0] != '\0' ? d->errbuf : curl_easy_strerror(rc));
    dl_failed(d, code > 0 ? (int)code : 0, err, out != OF_AGAIN);
}

static void
dl_check_done(struct jobs *j)
{
    CURLMsg *msg;
    int      left = 0;
    while ((msg = curl_multi_info_read(j->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct delivery *d = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
        if (d == NULL)
            continue;
        if (d->mail)
            mail_done(d, msg->data.result);
        else
            webhook_done(d, msg->data.result);
        dl_free(d);
    }
    j->dh->pump(j);
}

static struct curl_slist *
webhook_headers(struct delivery *d, const char *event_id, const char *traceparent, const char *sig,
                int64_t ts)
{
    char               line[512];
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof(line), "webhook-id: %s", event_id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "webhook-signature: %s", sig);
    h = curl_slist_append(h, line);
    if (traceparent != NULL && traceparent[0] != '\0' && strlen(traceparent) < 256) {
        snprintf(line, sizeof(line), "traceparent: %s", traceparent);
        h = curl_slist_append(h, line);
    }
    d->hdrs = h;
    return h;
}

/* OF_OK with d->easy ready; otherwise the reason in err (a permanent failure). */
static int
webhook_setup(struct delivery *d, const struct outbox_job *job, char *err, size_t cap)
{
    const struct cfg_webhooks *w = &d->j->cfg->webhooks;
    bool https = job->url != NULL && strncasecmp(job->url, "https://", 8) == 0;
    bool http = job->url != NULL && strncasecmp(job->url, "http://", 7) == 0;
    char sig[WEBHOOK_SIG_MAX];
    int64_t ts = (int64_t)time(NULL);

    if (!https && !(http && w->allow_http)) {
        snprintf(err, cap, "refused: %s", http ? "http:// not allowed" : "not an https:// URL");
        return OF_ERR;
    }
    d->body = strdup(job->payload != NULL ? job->payload : "{}");
    if (d->body == NULL || webhook_sign(job->secret, job->event_id, ts, d->body, strlen(d->body),
                                        sig, sizeof(sig)) != OF_OK) {
        snprintf(err, cap, "the webhook's secret is unusable");
        return OF_ERR;
    }
    CURL *e = d->easy;
    curl_easy_setopt(e, CURLOPT_URL, job->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, w->allow_http ? "http,https" : "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, webhook_headers(d, job->event_id, job->traceparent, sig, ts));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "orderflow-webhooks/" OF_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, d);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)w->timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)w->timeout);
    return OF_OK;
}

/* OF_OK with d->easy ready; OF_NOTFOUND: no mail for this event (done);
 * otherwise the reason in err (a permanent failure). */
static int
mail_setup(struct delivery *d, const struct outbox_job *job, char *err, size_t cap)
{
    const struct of_cfg *cfg = d->j->cfg;
    int rc = mail_render(&cfg->mail, job->payload, job->cust_email, job->cust_name,
                         job->cust_active, &d->msg);
    if (rc == OF_NOTFOUND)
        return OF_NOTFOUND;
    if (rc == OF_ERR) {
        snprintf(err, cap, "mail: the event cannot be rendered");
        return OF_ERR;
    }
    if (rc != OF_OK) {
        snprintf(err, cap, "mail not built");
        return OF_ERR;
    }
    if (mail_easy_setup(d->easy, &cfg->mail, d->msg, (long)cfg->webhooks.timeout) != OF_OK) {
        snprintf(err, cap, "mail: setting up SMTP failed");
        return OF_ERR;
    }
    return OF_OK;
}

void
deliver_start(struct jobs *j, const struct outbox_job *job)
{
    struct delivery *d = calloc(1, sizeof(*d));
    char             err[256] = "";
    if (d == NULL)
        of_fatal("out of memory starting a delivery");
    d->j = j;
    d->id = job->id;
    d->mail = job->mail;
    d->attempt = job->attempts + 1;
    d->start_ns = of_mono_ns();
    d->next = j->active;
    if (j->active != NULL)
        j->active->prev = d;
    j->active = d;
    j->inflight++;

    if ((d->easy = curl_easy_init()) == NULL)
        of_fatal("curl_easy_init failed");
    curl_easy_setopt(d->easy, CURLOPT_PRIVATE, (char *)d);
    curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->errbuf);
    int rc = d->mail ? mail_setup(d, job, err, sizeof(err)) : webhook_setup(d, job, err, sizeof(err));
    if (rc == OF_OK && curl_multi_add_handle(j->multi, d->easy) == CURLM_OK)
        return;
    if (rc == OF_NOTFOUND)
        dl_succeeded(d, 0, "no mail for this event");
    else
        dl_failed(d, 0, err[0] != '\0' ? err : "curl_multi_add_handle failed", true);
    dl_free(d);
}

void
deliver_abort_all(struct jobs *j)
{
    while (j->active != NULL) {
        struct delivery *d = j->active;
        j->dh->finished(j, d->id, OUTBOX_RELEASE, 0, NULL, 0);
        dl_free(d);
    }
}
