/*
 * cli_cfgref.c -- `orderflow config-reference [--man]` (hidden; see cli.h).
 *
 * Owns the reference of every setting, printed from config/'s key table
 * (cfg_key_describe) so that the documentation cannot drift from the parser:
 * plain text by default, the orderflow.cfg(5) man page in roff with --man
 * (the build generates docs/man's page from it).
 */
#include "master/cli.h"
#include "common/of.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Text into roff: backslashes escaped, a leading dot or quote neutralised
 * (hyphens stay hyphens: the table's text has no options in it). */
static void
ref_roff(FILE *out, const char *s)
{
    if (s[0] == '.' || s[0] == '\'')
        fputs("\\&", out);
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else
            fputc(*s, out);
    }
}

/* The default as it would be written in the file. */
static void
ref_default(FILE *out, const struct cfg_key_info *k)
{
    if (!k->list) {
        if (k->quoted)
            fputc('"', out);
        ref_roff(out, k->def != NULL ? k->def : "");
        if (k->quoted)
            fputc('"', out);
        return;
    }
    fputc('[', out);
    const char *p = k->def != NULL ? k->def : "";
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char   item[256];
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        fputs(p == k->def ? " " : ", ", out);
        if (k->quoted)
            fputc('"', out);
        ref_roff(out, item);
        if (k->quoted)
            fputc('"', out);
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    fputs(k->def != NULL && k->def[0] != '\0' ? " ]" : "]", out);
}

static void
ref_man_key(FILE *out, const struct cfg_key_info *k)
{
    fprintf(out, ".TP\n.B %s\n", k->name);
    ref_roff(out, k->desc);
    fprintf(out, "\n.br\nType: %s.\nDefault: \\fB", k->kind);
    ref_default(out, k);
    fputs("\\fR", out);
    if (k->def == NULL && !k->list)
        fputs(" (not set)", out);
    fputs(".\n", out);
    if (k->ranged)
        fprintf(out, "Range: %s%" PRId64 "..%" PRId64 ".\n", k->list ? "each " : "", k->min, k->max);
    if (k->env != NULL)
        fprintf(out, "Environment: \\fB%s\\fR overrides it.\n", k->env);
}

static const char ref_man_head[] =
    ".TH ORDERFLOW.CFG 5 \"\" \"orderflow " OF_VERSION "\" \"OrderFlow\"\n"
    ".nh\n"
    ".SH NAME\n"
    "orderflow.cfg \\- settings of the OrderFlow API server\n"
    ".SH SYNOPSIS\n"
    ".I /etc/orderflow/orderflow.cfg\n"
    ".SH DESCRIPTION\n"
    "The settings of\n.BR orderflow (8),\n"
    "in libconfig syntax: groups of \\fIname\\fR = \\fIvalue\\fR; settings.\n"
    "Every group and setting is optional; a setting not listed here is an error\n"
    "(\\(lqunknown setting\\(rq), both when the server starts and with\n"
    ".BR \"orderflow check\\-config \\-c\" \" FILE\" ,\n"
    "which prints the effective settings (file and environment) with secrets redacted.\n"
    "Integers above 2147483647 need an L suffix (5000000000L).\n"
    "Strings are written in double quotes, lists in square brackets:\n"
    ".PP\n.nf\n.RS\n"
    "server:\n{\n  listen = \"127.0.0.1:8000\";\n  workers = 4;\n};\n"
    "metrics:\n{\n  allow = [ \"127.0.0.1/32\", \"10.0.0.0/8\" ];\n};\n"
    ".RE\n.fi\n"
    ".PP\n"
    "This page is generated from the table the configuration parser uses, so each\n"
    "setting below exists, with exactly this default and range.\n"
    ".SH SETTINGS\n";

static const char ref_man_tail[] =
    ".SH ENVIRONMENT\n"
    "Besides the variables named above, which override their setting:\n"
    ".TP\n.B ORDERFLOW_JWT_SECRET\n"
    "The token signing secret, at least 32 bytes. Not a file setting; \\fBserve\\fR\n"
    "refuses to start without it.\n"
    ".TP\n.BR ORDERFLOW_SMTP_USER \", \" ORDERFLOW_SMTP_PASSWORD\n"
    "The SMTP login for \\fBmail.smtp_url\\fR. Not file settings.\n"
    ".TP\n.B ORDERFLOW_CONFIG\n"
    "The settings file when \\fB\\-c\\fR is not given.\n"
    ".SH FILES\n"
    ".TP\n.I /etc/orderflow/orderflow.cfg\n"
    "The settings the packaged service starts with (a conffile).\n"
    ".TP\n.I /etc/orderflow/env\n"
    "Secrets for the service, as VARIABLE=value lines (mode 0600).\n"
    ".SH SEE ALSO\n"
    ".BR orderflow (8)\n";

static int
ref_man(FILE *out)
{
    struct cfg_key_info k;
    const char         *group = "";

    fputs(ref_man_head, out);
    for (size_t i = 0; cfg_key_describe(i, &k) == OF_OK; i++) {
        if (strcmp(k.group, group) != 0) {
            fprintf(out, ".SS %s\n", k.group);
            group = k.group;
        }
        ref_man_key(out, &k);
    }
    fputs(ref_man_tail, out);
    return fflush(out) == 0 ? 0 : 1;
}

static int
ref_text(FILE *out)
{
    struct cfg_key_info k;

    for (size_t i = 0; cfg_key_describe(i, &k) == OF_OK; i++) {
        fprintf(out, "%s.%s\t%s\t%s", k.group, k.name, k.kind, k.def != NULL ? k.def : "");
        if (k.ranged)
            fprintf(out, "\t%" PRId64 "..%" PRId64, k.min, k.max);
        else
            fputs("\t", out);
        fprintf(out, "\t%s\t%s\n", k.env != NULL ? k.env : "", k.desc);
    }
    return fflush(out) == 0 ? 0 : 1;
}

int
cli_config_reference(int argc, char **argv)
{
    if (argc == 1)
        return ref_text(stdout);
    if (argc == 2 && strcmp(argv[1], "--man") == 0)
        return ref_man(stdout);
    fputs("usage: orderflow config-reference [--man]\n", stderr);
    return 2;
}
