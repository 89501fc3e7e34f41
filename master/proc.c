/*
 * proc.c -- what the master does to its own process: the pidfile, dropping
 * root after binding, and systemd notifications.
 *
 * The pidfile is written via a temporary file and rename(2), so a reader
 * never sees it half-written, and removed at exit only if it still names us
 * (a second instance that failed to start must not delete ours).
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static pid_t
pidfile_read(const char *path)
{
    char    buf[32];
    int     fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    size_t len = (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        len--;
    int64_t pid;
    if (of_parse_i64(buf, len, 1, INT32_MAX, &pid) != 0)
        return -1;
    return (pid_t)pid;
}

int
master_pidfile_write(const char *path)
{
    char tmp[4200], line[32];

    pid_t old = pidfile_read(path);
    if (old > 0 && old != getpid() && old != getppid() && (kill(old, 0) == 0 || errno == EPERM)) {
        of_log_error("pidfile %s: orderflow is already running as pid %ld", path, (long)old);
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    /* a fresh file only: never through a symlink someone planted at the
     * temporary name (we may be root); a leftover is removed, not followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        of_log_errno(OF_LOG_ERROR, errno, "cannot create pidfile %s", tmp);
        return -1;
    }
    int     len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    ssize_t w = write(fd, line, (size_t)len);
    int     e = errno;
    close(fd);
    if (w != len || rename(tmp, path) != 0) {
        of_log_errno(OF_LOG_ERROR, w != len ? e : errno, "cannot write pidfile %s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

void
master_pidfile_remove(const char *path)
{
    if (path == NULL || pidfile_read(path) != getpid())
        return;
    if (unlink(path) != 0)
        of_log_errno(OF_LOG_WARN, errno, "cannot remove pidfile %s", path);
}

int
master_resolve_user(const char *user, const char *group, uid_t *uid, gid_t *gid, bool *drop)
{
    *drop = false;
    if (user == NULL && group == NULL)
        return 0;
    if (geteuid() != 0) {
        of_log_warn("server.user/server.group ignored: not started as root");
        return 0;
    }
    *uid = getuid();
    *gid = getgid();
    if (user != NULL) {
        errno = 0;
        struct passwd *pw = getpwnam(user);
        if (pw == NULL) {
            of_log_error("server.user \"%s\": no such user", user);
            return -1;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (group != NULL) {
        errno = 0;
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            of_log_error("server.group \"%s\": no such group", group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    *drop = true;
    return 0;
}

int
master_drop_privileges(const char *user, uid_t uid, gid_t gid)
{
    int rc = user != NULL ? initgroups(user, gid) : setgroups(1, &gid);
    if (rc != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "setgroups() failed");
        return -1;
    }
    if (setgid(gid) != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "setgid(%ld) failed", (long)gid);
        return -1;
    }
    if (setuid(uid) != 0) {
        of_log_errno(OF_LOG_ERROR, errno, "setuid(%ld) failed", (long)uid);
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        of_log_error("privileges were not dropped: setuid(0) still works");
        return -1;
    }
    of_log_info("dropped privileges to uid %ld gid %ld", (long)uid, (long)gid);
    return 0;
}

void
master_notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        of_log_errno(OF_LOG_WARN, -rc, "sd_notify() failed");
}
