#!/bin/sh
# upgrade.sh -- hand a running orderflow master over to the binary now at its
# path, without refusing or dropping a connection (orderflow(8), SIGNALS).
# Installed as /usr/share/orderflow/upgrade.sh; the postinst runs it when a
# newer package is installed over a running orderflow.service.
#
#   upgrade.sh [--timeout S]                  the master of orderflow.service
#   upgrade.sh --pidfile FILE [--timeout S]   a master started by hand with
#                                             server.pidfile = FILE
#
# 1. USR2 to the master: it re-executes its binary (the new file) as a new
#    master that inherits the listen socket; the old one keeps serving.
# 2. Wait for the new master: under systemd it sends MAINPID= once all its
#    workers are ready; with a pidfile, FILE names a new pid whose master has
#    as many child processes (workers, jobs) as the old one had.
# 3. WINCH, then QUIT to the old master: its workers finish their requests and
#    it leaves. Connections meanwhile wait in the shared socket's backlog.
# If the new master is not up within the timeout (default 90 s), it gets
# QUIT, the old master carries on serving with the old binary, exit 1.
set -eu

pidfile=""
timeout=90
unit=orderflow.service
while [ $# -gt 0 ]; do
    case "$1" in
        --pidfile) pidfile=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) echo "usage: $0 [--pidfile FILE] [--timeout SECONDS]" >&2; exit 2 ;;
    esac
done

say() { echo "orderflow upgrade: $*" >&2; }

# the pids of PPID's children (workers, the jobs process, a new master)
children() {
    for st in /proc/[0-9]*/stat; do
        { read -r line <"$st"; } 2>/dev/null || continue
        # shellcheck disable=SC2086
        set -- ${line##*) }       # state ppid ...; the name may hold spaces
        [ "${2:-}" = "$PARENT" ] && { p=${st#/proc/}; echo "${p%/stat}"; }
    done
    return 0
}
count_children() { PARENT=$1; children | wc -l; }

main_pid() {
    if [ -n "$pidfile" ]; then
        cat "$pidfile" 2>/dev/null || echo 0
    else
        systemctl show -p MainPID --value "$unit" 2>/dev/null || echo 0
    fi
}

old=$(main_pid)
if [ -z "$old" ] || [ "$old" -le 0 ] || ! kill -0 "$old" 2>/dev/null; then
    say "no running master; nothing to do"
    exit 0
fi
PARENT=$old
before=$(children | tr '\n' ' ')
workers=$(echo "$before" | wc -w)
[ "$workers" -gt 0 ] || workers=1
say "USR2 to master $old ($workers child processes)"
kill -USR2 "$old"

new=""
i=0
while [ "$i" -lt "$((timeout * 5))" ]; do
    cur=$(main_pid)
    if [ -n "$cur" ] && [ "$cur" -gt 0 ] && [ "$cur" != "$old" ] && kill -0 "$cur" 2>/dev/null; then
        if [ -z "$pidfile" ] || [ "$(count_children "$cur")" -ge "$workers" ]; then
            new=$cur
            break
        fi
    fi
    if ! kill -0 "$old" 2>/dev/null; then
        say "the old master $old is gone"
        exit 1
    fi
    sleep 0.2
    i=$((i + 1))
done

if [ -z "$new" ]; then
    # the new master: a child of the old one that was not there before USR2
    # and runs the new file (forked workers run the replaced, deleted one)
    PARENT=$old
    for p in $(children); do
        case " $before " in *" $p "*) continue ;; esac
        case "$(readlink "/proc/$p/exe" 2>/dev/null)" in *"(deleted)"|"") continue ;; esac
        say "new master $p not ready after ${timeout}s: QUIT to it, $old keeps serving"
        kill -QUIT "$p" 2>/dev/null || true
    done
    exit 1
fi
say "new master $new serves; WINCH and QUIT to the old master $old"
kill -WINCH "$old"
kill -QUIT "$old"
exit 0
