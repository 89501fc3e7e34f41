/*
 * log.c -- JSON-lines logger. Each line is assembled in a stack buffer and
 * written with one write(2), so lines from several processes sharing the
 * descriptor (O_APPEND) never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum of_log_level of_log_min = OF_LOG_INFO;

static int         log_fd = STDERR_FILENO;
static bool        log_pipe_nb;        /* log_fd: our non-blocking stderr pipe */
static char        log_path[4096];
static const char *log_role = "master";
static const char *log_ctx = "";       /* members added to each line, or "" */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int
of_log_level_parse(const char *s, enum of_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum of_log_level)i;
            return 0;
        }
    }
    return -1;
}

void
of_log_set_context(const char *members)
{
    log_ctx = members != NULL ? members : "";
}

void
of_log_set_role(const char *role)
{
    log_role = role;
}

int
of_log_open(const char *path, enum of_log_level min)
{
    of_log_min = min;
    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0) {
        log_path[0] = '\0';
        log_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -1;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

int
of_log_fd(void)
{
    return log_fd;
}

/* Opening /proc/self/fd/2 makes a new open file description of the same
 * pipe: O_NONBLOCK on it is ours alone (on fd 2 it would be shared with the
 * master and every other child). */
bool
of_log_use_nonblocking_pipe(void)
{
    struct stat st;
    if (log_pipe_nb)
        return true;
    if (log_fd != STDERR_FILENO || fstat(log_fd, &st) != 0 || !S_ISFIFO(st.st_mode))
        return false;
    int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    log_fd = fd;
    log_pipe_nb = true;
    return true;
}

int
of_log_pipe_fd(void)
{
    return log_pipe_nb ? log_fd : -1;
}

int
of_log_file_fd(void)
{
    return log_path[0] != '\0' ? log_fd : -1;
}

int
of_log_reopen(void)
{
    if (log_path[0] == '\0')
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -1;
    /* dup2 keeps the descriptor number, so forked children see the new file too */
    if (dup2(fd, log_fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

size_t
of_json_escape(char *dst, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char          esc[7];
        size_t        len;

        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c; len = 2;
        } else if (c == '\n') {
            esc[0] = '\\'; esc[1] = 'n'; len = 2;
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; len = 6;
        } else {
            esc[0] = (char)c; len = 1;
        }
        if (n + len >= cap)
            break;
        memcpy(dst + n, esc, len);
        n += len;
    }
    dst[n] = '\0';
    return n;
}

static size_t
log_timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm       tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int    m = snprintf(buf + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
    return m > 0 ? n + (size_t)m : n;
}

static void
log_vwrite(enum of_log_level lvl, int err, const char *fmt, va_list ap)
{
    char msg[2048], emsg[2304], line[4096], ts[40];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    of_json_escape(emsg, sizeof(emsg), msg);
    log_timestamp(ts, sizeof(ts));
    int n;
    if (err != 0) {
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%ld,"
                     "\"msg\":\"%s\",\"errno\":%d,\"error\":\"%s\"%s%s}\n",
                     ts, level_names[lvl], log_role, (long)getpid(), emsg, err, strerror(err),
                     log_ctx[0] ? "," : "", log_ctx);
    } else {
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%ld,\"msg\":\"%s\"%s%s}\n",
                     ts, level_names[lvl], log_role, (long)getpid(), emsg,
                     log_ctx[0] ? "," : "", log_ctx);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 2] = '}';   /* keep it one (truncated-message) JSON line */
        line[n - 1] = '\n';
        line[n - 3] = '"';
    }
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
}

void
of_log_write(enum of_log_level lvl, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, err, fmt, ap);
    va_end(ap);
}

void
of_log_raw(const char *json, size_t len)
{
    char   line[4096];
    if (len + 1 > sizeof(line))
        len = sizeof(line) - 1;
    memcpy(line, json, len);
    line[len] = '\n';
    ssize_t w = write(log_fd, line, len + 1);
    (void)w;
}

void
of_log_lines(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(log_fd, buf, len);
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

_Noreturn void
of_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(OF_LOG_ERROR, 0, fmt, ap);
    va_end(ap);
    abort();
}
