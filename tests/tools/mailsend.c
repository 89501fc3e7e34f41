/*
 * mailsend.c -- test-only driver of jobs/mail.h (built as of-mailsend next to
 * the orderflow binary): renders the event JSON read from a file, prints the
 * message with --print, and otherwise sends it with curl_easy_perform (a test
 * tool may block) exactly as the jobs process configures the handle.
 *
 *   of-mailsend --url URL --to ADDR [--name NAME] [--from FROM] [--inactive]
 *               [--starttls] [--cainfo PEM] [--timeout S] [--print] EVENT_FILE
 *
 * Login from ORDERFLOW_SMTP_USER / ORDERFLOW_SMTP_PASSWORD, as the server.
 * Prints "outcome=OK|AGAIN|ERR curl=<code> smtp=<code>" and exits 0 (OK),
 * 75 (AGAIN), 1 (ERR), 3 (no mail for this event) or 2 (usage).
 */
#include "jobs/mail.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
    struct cfg_mail cfg;
    const char     *to, *name, *cainfo, *file;
    bool            inactive, print;
    long            timeout;
};

static int
usage(void)
{
    fprintf(stderr, "usage: of-mailsend --url URL --to ADDR [--name NAME] [--from FROM] [--inactive]\n"
                    "                   [--starttls] [--cainfo PEM] [--timeout S] [--print] EVENT_FILE\n");
    return 2;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "url", required_argument, NULL, 'u' },     { "to", required_argument, NULL, 't' },
        { "name", required_argument, NULL, 'n' },    { "from", required_argument, NULL, 'f' },
        { "inactive", no_argument, NULL, 'i' },      { "starttls", no_argument, NULL, 's' },
        { "cainfo", required_argument, NULL, 'c' },  { "timeout", required_argument, NULL, 'T' },
        { "print", no_argument, NULL, 'p' },         { NULL, 0, NULL, 0 },
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->cfg.from = "orders@localhost";
    o->timeout = 10;
    o->cfg.smtp_user = getenv("ORDERFLOW_SMTP_USER");
    o->cfg.smtp_password = getenv("ORDERFLOW_SMTP_PASSWORD");
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': o->cfg.smtp_url = optarg; break;
        case 't': o->to = optarg; break;
        case 'n': o->name = optarg; break;
        case 'f': o->cfg.from = optarg; break;
        case 'i': o->inactive = true; break;
        case 's': o->cfg.starttls = true; break;
        case 'c': o->cainfo = optarg; break;
        case 'T': o->timeout = strtol(optarg, NULL, 10); break;
        case 'p': o->print = true; break;
        default: return -1;
        }
    }
    if (optind + 1 != argc || o->to == NULL)
        return -1;
    o->file = argv[optind];
    return 0;
}

static char *
slurp(const char *path)
{
    FILE  *f = fopen(path, "rb");
    char  *buf = NULL;
    size_t len = 0;

    if (f == NULL)
        return NULL;
    FILE *mem = open_memstream(&buf, &len);
    char  chunk[4096];
    size_t n;
    while (mem != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    if (mem != NULL)
        fclose(mem);
    return buf;
}

static int
send_msg(const struct opts *o, const struct mail_msg *msg)
{
    static const char *const names[] = { "OK", "ERR", "AGAIN" };
    CURL *e = curl_easy_init();
    long  code = 0;

    if (e == NULL || mail_easy_setup(e, &o->cfg, msg, o->timeout) != OF_OK) {
        fprintf(stderr, "of-mailsend: mail_easy_setup failed\n");
        return 1;
    }
    if (o->cainfo != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->cainfo);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    int out = mail_outcome(rc, code);
    printf("outcome=%s curl=%d smtp=%ld\n", names[-out], (int)rc, code);
    return out == OF_OK ? 0 : out == OF_AGAIN ? 75 : 1;
}

int
main(int argc, char **argv)
{
    struct opts      o;
    struct mail_msg *msg = NULL;

    if (parse_opts(argc, argv, &o) != 0)
        return usage();
    char *ev = slurp(o.file);
    if (ev == NULL) {
        perror(o.file);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = mail_render(&o.cfg, ev, o.to, o.name, !o.inactive, &msg);
    free(ev);
    if (rc == OF_NOTFOUND) {
        printf("outcome=NOMAIL\n");
        return 3;
    }
    if (rc != OF_OK) {
        printf("outcome=ERR render\n");
        return 1;
    }
    if (o.print) {
        size_t len;
        const char *t = mail_msg_text(msg, &len);
        fwrite(t, 1, len, stdout);
        rc = 0;
    } else {
        rc = send_msg(&o, msg);
    }
    mail_msg_free(msg);
    curl_global_cleanup();
    return rc;
}
