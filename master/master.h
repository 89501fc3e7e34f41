/*
 * master.h -- the master process: listen socket, pidfile, privileges,
 * systemd notifications and the arbiter that supervises the workers.
 * Internal to master/ (main.c is the only other caller).
 */
#ifndef OF_MASTER_H
#define OF_MASTER_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"

/* Run the server: bind (or take the systemd socket), write the pidfile, drop
 * privileges, fork and supervise workers until told to stop. Takes ownership
 * of cfg, which must come from malloc/calloc and have been filled by
 * cfg_load (it is replaced on HUP and freed at the end). Returns the process
 * exit code. */
int  master_serve(struct of_cfg *cfg);

/* Environment variable carrying the listen fd to the new master on USR2. */
#define MASTER_INHERIT_ENV "ORDERFLOW_INHERIT_FD"

/* Remember how this process was started (absolute path of the executable,
 * argv), so USR2 can exec the binary now at that path. Call from main(). */
void master_save_argv(int argc, char **argv);

/* The listen socket: inherited from the previous master on USR2, from
 * systemd (LISTEN_FDS), or bound from server.listen.
 * Returns the fd (non-blocking, close-on-exec) or -1 with the reason logged.
 * *unix_path is set to the socket path to unlink at exit ("" if none). */
int  master_listen_open(const struct of_cfg *cfg, char *unix_path, size_t cap, bool *from_systemd);

/* Write getpid() into path (atomically, via rename). Fails if the file names
 * a live process other than us or our parent (the old master during a USR2
 * upgrade). Returns 0 or -1 (logged). */
int  master_pidfile_write(const char *path);
/* Remove path if it still holds our pid. */
void master_pidfile_remove(const char *path);

/* When running as root and user/group are set, resolve them; returns 0 and
 * sets *uid and *gid (or -1 when they are not set / not root / unknown: logged).
 * *drop says whether there is anything to drop to. */
int  master_resolve_user(const char *user, const char *group, uid_t *uid, gid_t *gid, bool *drop);
/* setgroups + setgid + setuid; verifies root cannot be regained. */
int  master_drop_privileges(const char *user, uid_t uid, gid_t gid);

/* sd_notify wrapper; a no-op when NOTIFY_SOCKET is unset. */
void master_notify(const char *state);

#endif
