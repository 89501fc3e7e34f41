/*
 * listen.c -- the one listen socket every worker accepts on.
 *
 * Taken from systemd when LISTEN_FDS is set (socket activation), otherwise
 * bound from server.listen: "host:port" / "[v6]:port" via getaddrinfo with
 * SO_REUSEADDR (IPv6 sockets are v6-only so "[::]" and "0.0.0.0" can
 * coexist), or "unix:/path" with server.unix_mode. A stale unix socket file
 * (nobody accepting) is replaced; a live one is an error. After a USR2
 * binary upgrade the new master takes the old master's socket instead.
 */
#include "master/master.h"
#include "common/netaddr.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static int
listen_from_systemd(bool *from_systemd)
{
    int n = sd_listen_fds(1);
    if (n <= 0) {
        if (n < 0)
            of_log_errno(OF_LOG_WARN, -n, "sd_listen_fds() failed; binding server.listen");
        return -1;
    }
    int fd = SD_LISTEN_FDS_START;
    if (n > 1)
        of_log_warn("systemd passed %d sockets; using the first (fd %d)", n, fd);
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
        of_log_error("fd %d from systemd is not a listening stream socket", fd);
        return -2;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    *from_systemd = true;
    of_log_info("listening on the socket passed by systemd (fd %d)", fd);
    return fd;
}

/* A socket handed over by the previous master on USR2 (binary upgrade):
 * ORDERFLOW_INHERIT_FD = "N" or "N,systemd". A unix socket's path comes from
 * the socket itself, so this master unlinks it at exit like its own. */
static int
listen_inherited(char *unix_path, size_t cap, bool *from_systemd)
{
    const char *v = getenv(MASTER_INHERIT_ENV);
    if (v == NULL || v[0] == '\0')
        return -1;
    const char *comma = strchr(v, ',');
    size_t      len = comma != NULL ? (size_t)(comma - v) : strlen(v);
    int64_t     fd;
    if (of_parse_i64(v, len, 0, 65535, &fd) != 0 || sd_is_socket((int)fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
        of_log_error("%s=%s is not a listening socket", MASTER_INHERIT_ENV, v);
        unsetenv(MASTER_INHERIT_ENV);
        return -2;
    }
    *from_systemd = comma != NULL && strcmp(comma + 1, "systemd") == 0;
    unsetenv(MASTER_INHERIT_ENV);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) | O_NONBLOCK);

    struct sockaddr_un sun;
    socklen_t          sl = sizeof(sun);
    memset(&sun, 0, sizeof(sun));
    if (!*from_systemd && getsockname((int)fd, (struct sockaddr *)&sun, &sl) == 0 &&
        sun.sun_family == AF_UNIX && sun.sun_path[0] != '\0')
        of_strlcpy(unix_path, sun.sun_path, cap);
    of_log_info("listening on the socket inherited from the previous master (fd %d)", (int)fd);
    return (int)fd;
}

/* Is somebody accepting on the unix socket at path? */
static bool
unix_in_use(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool used = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(fd);
    return used;
}

static int
listen_unix(const struct of_cfg *cfg, const struct netaddr_listen *l, char *unix_path, size_t cap)
{
    struct sockaddr_un sun;
    struct stat        st;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    of_strlcpy(sun.sun_path, l->path, sizeof(sun.sun_path));

    if (lstat(l->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            of_log_error("listen %s: the path exists and is not a socket", cfg->server.listen);
            return -1;
        }
        if (unix_in_use(&sun)) {
            of_log_error("listen %s: another process is accepting on it", cfg->server.listen);
            return -1;
        }
        unlink(l->path);
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        of_log_errno(OF_LOG_ERROR, errno, "socket(AF_UNIX) failed");
        return -1;
    }
    /* bind creates the file through the umask: make that the wanted mode so
     * the socket is never reachable with looser permissions, then chmod
     * anyway in case the umask cannot express it */
    mode_t old = umask((mode_t)(~cfg->server.unix_mode & 0777));
    int    brc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    int    berr = errno;
    umask(old);
    if (brc != 0) {
        of_log_errno(OF_LOG_ERROR, berr, "bind(%s) failed", cfg->server.listen);
        goto fail;
    }
    if (chmod(l->path, (mode_t)cfg->server.unix_mode) != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "chmod(%s, %04o) failed", l->path, (unsigned)cfg->server.unix_mode);
        unlink(l->path);
        goto fail;
    }
    if (listen(fd, cfg->server.backlog) != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "listen(%s) failed", cfg->server.listen);
        unlink(l->path);
        goto fail;
    }
    of_strlcpy(unix_path, l->path, cap);
    of_log_info("listening on %s (mode %04o, backlog %d)", cfg->server.listen,
                (unsigned)cfg->server.unix_mode, cfg->server.backlog);
    return fd;
fail:
    close(fd);
    return -1;
}

static int
listen_tcp(const struct of_cfg *cfg, const struct netaddr_listen *l)
{
    struct addrinfo hints, *res = NULL;
    int             fd = -1, err = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(l->host, l->port, &hints, &res);
    if (rc != 0) {
        of_log_error("listen %s: cannot resolve host: %s", cfg->server.listen, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, cfg->server.backlog) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        of_log_errno(OF_LOG_ERROR, err, "bind(%s) failed", cfg->server.listen);
        return -1;
    }
    of_log_info("listening on %s (backlog %d)", cfg->server.listen, cfg->server.backlog);
    return fd;
}

int
master_listen_open(const struct of_cfg *cfg, char *unix_path, size_t cap, bool *from_systemd)
{
    struct netaddr_listen l;

    unix_path[0] = '\0';
    *from_systemd = false;
    int fd = listen_inherited(unix_path, cap, from_systemd);
    if (fd >= 0)
        return fd;
    if (fd == -2)
        return -1;
    fd = listen_from_systemd(from_systemd);
    if (fd >= 0)
        return fd;
    if (fd == -2)
        return -1;
    if (netaddr_listen_parse(cfg->server.listen, &l) != 0) {
        of_log_error("server.listen \"%s\" is invalid", cfg->server.listen);
        return -1;
    }
    return l.is_unix ? listen_unix(cfg, &l, unix_path, cap) : listen_tcp(cfg, &l);
}
