/*
 * arbiter.c -- the master's supervision loop (gunicorn's arbiter, nginx's
 * process cycle).
 *
 * Signal handlers only set flags. The loop blocks every signal it handles,
 * sleeps in sigsuspend(), and after each wake runs a flat list of checks:
 * reap, stop requests, reload, TTIN/TTOU, log reopen, then arb_tick() which
 * enforces the invariants (heartbeat watchdog, stop deadlines, reload
 * progress, "target workers of the current generation are running").
 * A 1 s interval timer (100 ms while something is in transition) makes
 * sure the checks run even when no signal comes.
 *
 * Workers are identified by scoreboard slot; a[slot] mirrors the master's
 * view of that slot. A worker belongs to a config generation; HUP starts a
 * new generation, waits until all its workers are READY, then TERMs the old
 * ones, so capacity never drops during a reload.
 *
 * The jobs process (jobs/jobs.h) is supervised the same way in a slot of
 * its own (arb_worker.jobs): one of the current generation runs whenever
 * jobs.enabled and a database URL is set; a HUP starts a new one and stops
 * the old one with the old workers; TTIN/TTOU/WINCH leave it alone.
 *
 * Respawn policy: a worker that exits unasked is replaced at once, unless it
 * died during boot (never READY, or within 1 s of its start): then spawns
 * back off exponentially (100 ms .. 2 s), and after ARB_BOOT_FAIL_MAX such
 * deaths in a row the master gives up and exits 1 instead of fork-bombing.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/of.h"
#include "common/scoreboard.h"
#include "common/util.h"
#include "jobs/jobs.h"
#include "worker/worker.h"

#define ARB_BOOT_FAIL_MAX   8                     /* deaths at boot in a row before giving up */
#define ARB_BOOT_WINDOW_NS  1000000000ull         /* dying younger than this is a boot failure */
#define ARB_BACKOFF_MIN_NS  100000000ull
#define ARB_BACKOFF_MAX_NS  2000000000ull
#define ARB_QUICK_STOP_NS   3000000000ull         /* INT/QUIT: KILL what is left after this */
#define ARB_TICK_SLOW_US    1000000
#define ARB_TICK_FAST_US    100000

enum arb_mode { ARB_RUN, ARB_GRACEFUL, ARB_QUICK };

struct arb_worker {
    pid_t    pid;            /* 0 = slot unused */
    uint32_t gen;
    uint64_t spawned_ns;
    uint64_t stop_ns;        /* when we sent TERM/INT; 0 = not asked to stop */
    bool     ready_seen;
    bool     proven;         /* lived past the boot window */
    bool     watchdog_killed;
    bool     deadline_killed;
    bool     usr1_pending;   /* USR1 came while it was booting: forward once READY */
    bool     jobs;           /* the jobs process, not a request worker */
};

struct arbiter {
    struct of_cfg        *cfg;
    int                   listen_fd;
    struct of_scoreboard *sb;
    struct arb_worker     w[OF_SB_MAX_WORKERS];
    uint32_t              gen;
    int                   target;
    int                   boot_fails;       /* in a row */
    uint64_t              next_spawn_ns;    /* backoff: no spawn before this */
    bool                  reloading;
    bool                  jobs_wanted;      /* jobs.enabled and a database URL */
    bool                  announced_ready;
    enum arb_mode         mode;
    uint64_t              stop_deadline_ns;
    bool                  stop_killed;
    int                   exit_code;
    long                  tick_us;
    /* USR2 binary upgrade */
    pid_t                 new_master;       /* the re-executed master, 0 = none */
    char                  pidfile[4096];    /* as written at start ("" = none) */
    char                  pidfile_cur[4200];/* pidfile, or pidfile.oldbin during an upgrade */
    char                  unix_path[108];   /* unlinked at exit unless handed over */
    bool                  from_systemd;
    /* systemd watchdog (WatchdogSec=) */
    uint64_t              wd_usec;
    uint64_t              wd_last_ns;
};

static char   arb_exe[4096];    /* absolute path of our binary, for USR2 */
static char **arb_argv;

static volatile sig_atomic_t sig_reap, sig_term, sig_quick, sig_quit, sig_hup, sig_ttin,
                             sig_ttou, sig_usr1, sig_usr2, sig_winch, sig_alarm;

static const int arb_signals[] = {
    SIGCHLD, SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH,
};

static void
arb_on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: sig_reap = 1; break;
    case SIGALRM: sig_alarm = 1; break;
    case SIGHUP:  sig_hup = 1; break;
    case SIGINT:  sig_quick = 1; break;
    case SIGQUIT: sig_quit = 1; break;
    case SIGTERM: sig_term = 1; break;
    case SIGTTIN: sig_ttin++; break;
    case SIGTTOU: sig_ttou++; break;
    case SIGUSR1: sig_usr1 = 1; break;
    case SIGUSR2: sig_usr2 = 1; break;
    case SIGWINCH: sig_winch = 1; break;
    default: break;
    }
}

static int64_t
mono_s(void)
{
    return (int64_t)(of_mono_ns() / 1000000000u);
}

/* ---- signals and the timer -------------------------------------------- */

static void
arb_signals_install(sigset_t *blocked, sigset_t *old)
{
    struct sigaction sa;

    sigemptyset(blocked);
    for (size_t i = 0; i < OF_ARRAY_LEN(arb_signals); i++)
        sigaddset(blocked, arb_signals[i]);
    sigprocmask(SIG_BLOCK, blocked, old);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = arb_on_signal;
    sa.sa_mask = *blocked;
    for (size_t i = 0; i < OF_ARRAY_LEN(arb_signals); i++) {
        sa.sa_flags = arb_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0;
        sigaction(arb_signals[i], &sa, NULL);
    }
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
}

static void
arb_set_tick(struct arbiter *a, long us)
{
    if (a->tick_us == us)
        return;
    struct itimerval it = { { us / 1000000, us % 1000000 }, { us / 1000000, us % 1000000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    a->tick_us = us;
}

/* ---- spawning --------------------------------------------------------- */

static long
arb_max_requests(const struct of_cfg *cfg)
{
    long m = cfg->server.max_requests, j = cfg->server.max_requests_jitter;
    if (m <= 0)
        return 0;
    if (j > 0) {
        uint64_t r = ((uint64_t)random() << 31) ^ (uint64_t)random();
        m += (long)(r % ((uint64_t)j + 1));
    }
    return m;
}

static bool
arb_jobs_wanted(const struct of_cfg *cfg)
{
    return cfg->jobs.enabled && cfg->database.url != NULL && cfg->database.url[0] != '\0';
}

static _Noreturn void
arb_child(struct arbiter *a, int slot, long max_requests, pid_t master, bool jobs)
{
    struct sigaction sa;

    of_log_set_role(jobs ? "jobs" : "worker");
    of_log_use_nonblocking_pipe();       /* a full stderr pipe never stalls a loop */
    prctl(PR_SET_NAME, jobs ? "of-jobs" : "of-worker", 0, 0, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < OF_ARRAY_LEN(arb_signals); i++)
        sigaction(arb_signals[i], &sa, NULL);
    /* if the master dies hard, stop gracefully instead of lingering */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        _exit(0);
#ifdef OF_TEST_ROUTES
    /* test builds only: lets the e2e suite make every worker die at boot */
    if (getenv("ORDERFLOW_TEST_WORKER_BOOT_EXIT") != NULL)
        _exit(3);
#endif
    if (jobs) {
        /* The jobs process serves no HTTP: it must not hold the listening
         * socket, or connections queued on it are reset when it exits last. */
        if (a->listen_fd >= 0)
            close(a->listen_fd);
        struct jobs_args ja = { .cfg = a->cfg, .sb = a->sb, .slot = slot, .generation = a->gen };
        jobs_run(&ja);
    }

    struct worker_args wa = {
        .cfg = a->cfg,
        .listen_fd = a->listen_fd,
        .sb = a->sb,
        .slot = slot,
        .generation = a->gen,
        .max_requests = max_requests,
    };
    worker_run(&wa);
}

static int
arb_free_slot(const struct arbiter *a)
{
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
        if (a->w[i].pid == 0)
            return i;
    return -1;
}

static int
arb_spawn_kind(struct arbiter *a, bool jobs)
{
    int slot = arb_free_slot(a);
    if (slot < 0) {
        of_log_warn("no free scoreboard slot (max %d workers); not spawning", OF_SB_MAX_WORKERS);
        return OF_ERR;
    }
    struct of_sb_slot *s = &a->sb->slots[slot];
    atomic_store(&s->pid, 0);
    atomic_store(&s->kind, jobs ? OF_SB_KIND_JOBS : OF_SB_KIND_WORKER);
    atomic_store(&s->generation, a->gen);
    atomic_store(&s->heartbeat, mono_s());
    atomic_store(&s->state, OF_SB_BOOTING);

    long  maxreq = arb_max_requests(a->cfg);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        of_log_errno(OF_LOG_ERROR, errno, "fork() failed");
        atomic_store(&s->state, OF_SB_FREE);
        a->next_spawn_ns = of_mono_ns() + ARB_BACKOFF_MAX_NS;
        return OF_ERR;
    }
    if (pid == 0)
        arb_child(a, slot, maxreq, master, jobs);

    atomic_store(&s->pid, pid);
    struct arb_worker *w = &a->w[slot];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->gen = a->gen;
    w->spawned_ns = of_mono_ns();
    w->jobs = jobs;
    if (jobs)
        of_log_info("spawned jobs process %ld (slot %d, generation %u)", (long)pid, slot, a->gen);
    else
        of_log_info("spawned worker %ld (slot %d, generation %u, max_requests %ld)", (long)pid,
                    slot, a->gen, maxreq);
    return OF_OK;
}

static int
arb_spawn(struct arbiter *a)
{
    return arb_spawn_kind(a, false);
}

/* ---- stopping workers ------------------------------------------------- */

static void
arb_stop_worker(struct arbiter *a, int slot, int sig)
{
    struct arb_worker *w = &a->w[slot];
    if (w->pid == 0)
        return;
    if (w->stop_ns == 0 || sig == SIGINT)
        kill(w->pid, sig);
    if (w->stop_ns == 0)
        w->stop_ns = of_mono_ns();
}

static int
arb_live(const struct arbiter *a)
{
    int n = 0;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
        n += a->w[i].pid != 0;
    return n;
}

static void
arb_begin_stop(struct arbiter *a, enum arb_mode mode, int code)
{
    if (a->mode == ARB_QUICK || a->mode == mode)
        return;
    uint64_t now = of_mono_ns();
    a->mode = mode;
    a->exit_code = code > a->exit_code ? code : a->exit_code;
    a->stop_killed = false;
    master_notify("STOPPING=1");
    if (mode == ARB_GRACEFUL) {
        /* the worker's own timer fires at graceful_timeout; allow it a second more */
        a->stop_deadline_ns = now + (uint64_t)(a->cfg->server.graceful_timeout + 1) * 1000000000ull;
        of_log_info("graceful stop: waiting up to %ds for %d workers", a->cfg->server.graceful_timeout,
                    arb_live(a));
    } else {
        a->stop_deadline_ns = now + ARB_QUICK_STOP_NS;
        of_log_info("quick stop of %d workers", arb_live(a));
    }
    /* The workers accept what is queued before they close their copies; the
     * socket must not outlive them here (the last close resets the backlog).
     * A systemd socket stays open in systemd, an upgraded one in the new
     * master. No worker is spawned from now on. */
    if (a->listen_fd >= 0) {
        close(a->listen_fd);
        a->listen_fd = -1;
    }
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
        arb_stop_worker(a, i, mode == ARB_GRACEFUL ? SIGTERM : SIGINT);
}

/* ---- reaping ---------------------------------------------------------- */

static void
arb_describe_status(int st, char *buf, size_t cap)
{
    if (WIFEXITED(st))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, cap, "ended (status 0x%x)", (unsigned)st);
}

static void
arb_reaped(struct arbiter *a, int slot, int st)
{
    struct arb_worker *w = &a->w[slot];
    uint64_t           now = of_mono_ns();
    int                state = atomic_load(&a->sb->slots[slot].state);
    /* a worker only sets STOPPING once its loop runs, so that counts as booted */
    bool               ever_ready = w->ready_seen || state == OF_SB_READY || state == OF_SB_STOPPING;
    bool               clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    bool               asked = w->stop_ns != 0;
    char               how[96];

    arb_describe_status(st, how, sizeof(how));
    if (asked || (clean && ever_ready)) {
        of_log_info("worker %ld (slot %d) %s%s", (long)w->pid, slot, how,
                    asked ? "" : " (recycled)");
    } else {
        of_log_error("worker %ld (slot %d) %s%s", (long)w->pid, slot, how,
                     w->watchdog_killed ? " after its heartbeat stopped" : "");
    }

    /* unasked: a crash, or an exit 0 = recycled after max_requests. A worker
     * that never got READY failed its boot whatever its status, and so did
     * one that crashed within the boot window. */
    if (!asked && (!clean || !ever_ready)) {
        if (!clean)
            atomic_fetch_add(&a->sb->worker_restarts, 1);
        /* A worker killed from outside (SIGKILL not sent by our watchdog:
         * an operator, a chaos test) after it was READY did not fail to boot,
         * however young it was. */
        bool outside = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !w->watchdog_killed;
        bool boot = !ever_ready || (!clean && !outside && now - w->spawned_ns < ARB_BOOT_WINDOW_NS);
        if (boot) {
            a->boot_fails++;
            uint64_t d = ARB_BACKOFF_MIN_NS << (a->boot_fails - 1 < 5 ? a->boot_fails - 1 : 5);
            a->next_spawn_ns = now + (d < ARB_BACKOFF_MAX_NS ? d : ARB_BACKOFF_MAX_NS);
        }
    }
    /* A worker killed inside a rate-limit critical section left its lock set. */
    if (of_sb_unlock_dead(a->sb, w->pid) > 0)
        of_log_warn("freed the rate-limit locks worker %ld held when it died", (long)w->pid);
    of_sb_retire(a->sb, slot);
    memset(w, 0, sizeof(*w));

    if (a->boot_fails >= ARB_BOOT_FAIL_MAX && a->mode == ARB_RUN) {
        of_log_error("workers keep dying during boot (%d times in a row, last one %s); "
                     "giving up -- see the worker errors above", a->boot_fails, how);
        master_notify("STATUS=workers keep dying during boot");
        arb_begin_stop(a, ARB_QUICK, 1);
    }
}

static void arb_new_master_exited(struct arbiter *a, int st);

static void
arb_reap(struct arbiter *a)
{
    int   st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        int slot = -1;
        for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
            if (a->w[i].pid == pid)
                slot = i;
        if (slot >= 0)
            arb_reaped(a, slot, st);
        else if (pid == a->new_master)
            arb_new_master_exited(a, st);
        /* else: not a child we know of */
    }
}

/* ---- reload (HUP) ----------------------------------------------------- */

static void
arb_reload(struct arbiter *a)
{
    char          err[512];
    struct of_cfg *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        of_log_error("reload failed: out of memory");
        return;
    }
    if (cfg_load(n, a->cfg->path, true, err, sizeof(err)) != OF_OK) {
        of_log_error("reload failed, keeping the running configuration: %s", err);
        free(n);
        return;
    }
    char mono[64];
    snprintf(mono, sizeof(mono), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)(of_mono_ns() / 1000));
    master_notify(mono);

    if (strcmp(n->server.listen, a->cfg->server.listen) != 0)
        of_log_warn("server.listen changed to \"%s\": a restart is needed for that; still on \"%s\"",
                    n->server.listen, a->cfg->server.listen);
    enum of_log_level lvl = OF_LOG_INFO;
    of_log_level_parse(n->server.log_level, &lvl);
    if (of_log_open(n->server.log_file, lvl) != 0)
        of_log_errno(OF_LOG_ERROR, errno, "cannot open server.log_file %s", n->server.log_file);

    cfg_free(a->cfg);
    free(a->cfg);
    a->cfg = n;
    a->gen++;
    a->target = n->server.workers_effective;
    a->reloading = true;
    a->jobs_wanted = arb_jobs_wanted(n);
    a->boot_fails = 0;
    a->next_spawn_ns = 0;
    of_log_info("reloading: generation %u with %d workers", a->gen, a->target);
}

/* New generation all READY: retire the old ones. */
static void
arb_reload_progress(struct arbiter *a)
{
    int ready = 0;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
        if (a->w[i].pid != 0 && a->w[i].gen == a->gen && a->w[i].stop_ns == 0 && !a->w[i].jobs &&
            atomic_load(&a->sb->slots[i].state) == OF_SB_READY)
            ready++;
    if (ready < a->target)
        return;
    int old = 0;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        if (a->w[i].pid != 0 && a->w[i].gen != a->gen && a->w[i].stop_ns == 0) {
            arb_stop_worker(a, i, SIGTERM);
            old++;
        }
    }
    a->reloading = false;
    master_notify("READY=1");
    of_log_info("reload done: %d workers of generation %u ready, %d old ones stopping", ready,
                a->gen, old);
}

/* ---- the periodic checks ---------------------------------------------- */

static void
arb_watchdog(struct arbiter *a)
{
    uint64_t now = of_mono_ns();
    int64_t  now_s = mono_s();

    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        struct arb_worker *w = &a->w[i];
        if (w->pid == 0 || w->watchdog_killed || w->deadline_killed)
            continue;
        struct of_sb_slot *s = &a->sb->slots[i];
        if (atomic_load(&s->state) == OF_SB_READY) {
            w->ready_seen = true;
            if (w->usr1_pending) {
                w->usr1_pending = false;
                kill(w->pid, SIGUSR1);
            }
        }
        if (!w->proven && w->ready_seen && now - w->spawned_ns >= ARB_BOOT_WINDOW_NS) {
            w->proven = true;
            a->boot_fails = 0;
        }
        int64_t age = now_s - atomic_load(&s->heartbeat);
        if (age > a->cfg->server.worker_timeout) {
            of_log_error("worker %ld (slot %d) missed its heartbeat for %llds (worker_timeout %d); "
                         "killing it", (long)w->pid, i, (long long)age, a->cfg->server.worker_timeout);
            kill(w->pid, SIGKILL);
            w->watchdog_killed = true;
            continue;
        }
        /* a worker asked to stop gets graceful_timeout (+1 s) to do so */
        if (w->stop_ns != 0 &&
            now - w->stop_ns > (uint64_t)(a->cfg->server.graceful_timeout + 1) * 1000000000ull) {
            of_log_warn("worker %ld did not stop within graceful_timeout; killing it", (long)w->pid);
            kill(w->pid, SIGKILL);
            w->deadline_killed = true;
        }
    }
}

/* Keep `target` workers of the current generation: spawn or retire. */
static void
arb_adjust(struct arbiter *a)
{
    int cur = 0, oldest = -1;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        struct arb_worker *w = &a->w[i];
        if (w->pid == 0 || w->gen != a->gen || w->stop_ns != 0 || w->jobs)
            continue;
        cur++;
        if (oldest < 0 || w->spawned_ns < a->w[oldest].spawned_ns)
            oldest = i;
    }
    if (cur > a->target && oldest >= 0) {
        of_log_info("retiring worker %ld (%d workers wanted)", (long)a->w[oldest].pid, a->target);
        arb_stop_worker(a, oldest, SIGTERM);
        arb_adjust(a);
        return;
    }
    if (of_mono_ns() < a->next_spawn_ns)
        return;
    for (; cur < a->target; cur++)
        if (arb_spawn(a) != OF_OK)
            break;
}

/* One jobs process of the current generation while it is wanted. */
static void
arb_adjust_jobs(struct arbiter *a)
{
    int cur = -1;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
        const struct arb_worker *w = &a->w[i];
        if (w->pid != 0 && w->jobs && w->gen == a->gen && w->stop_ns == 0)
            cur = i;
    }
    if (!a->jobs_wanted) {
        if (cur >= 0) {
            of_log_info("jobs.enabled is false now: stopping the jobs process");
            arb_stop_worker(a, cur, SIGTERM);
        }
        return;
    }
    if (cur < 0 && of_mono_ns() >= a->next_spawn_ns)
        arb_spawn_kind(a, true);
}

static void
arb_announce_ready(struct arbiter *a)
{
    int ready = 0;
    for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
        if (a->w[i].pid != 0 && !a->w[i].jobs && atomic_load(&a->sb->slots[i].state) == OF_SB_READY)
            ready++;
    if (ready < a->target)
        return;
    a->announced_ready = true;
    char st[96];
    snprintf(st, sizeof(st), "READY=1\nSTATUS=%d workers\nMAINPID=%ld", ready, (long)getpid());
    master_notify(st);
    of_log_info("all %d workers ready", ready);
}

static void
arb_tick(struct arbiter *a)
{
    atomic_store(&a->sb->workers_target, a->target);
    if (a->wd_usec > 0 && of_mono_ns() - a->wd_last_ns >= a->wd_usec * 1000 / 2) {
        a->wd_last_ns = of_mono_ns();
        master_notify("WATCHDOG=1");
    }
    arb_watchdog(a);
    if (a->mode != ARB_RUN) {
        if (!a->stop_killed && of_mono_ns() > a->stop_deadline_ns) {
            of_log_warn("%d workers still running at the stop deadline; killing them", arb_live(a));
            for (int i = 0; i < OF_SB_MAX_WORKERS; i++)
                if (a->w[i].pid != 0)
                    kill(a->w[i].pid, SIGKILL);
            a->stop_killed = true;
        }
        arb_set_tick(a, ARB_TICK_FAST_US);
        return;
    }
    if (a->reloading)
        arb_reload_progress(a);
    arb_adjust_jobs(a);
    arb_adjust(a);
    if (!a->announced_ready)
        arb_announce_ready(a);
    bool busy = a->reloading || !a->announced_ready || a->next_spawn_ns > of_mono_ns();
    for (int i = 0; !busy && i < OF_SB_MAX_WORKERS; i++) {
        const struct arb_worker *w = &a->w[i];
        busy = w->pid != 0 && (w->stop_ns != 0 || w->usr1_pending || !w->ready_seen);
    }
    arb_set_tick(a, busy ? ARB_TICK_FAST_US : ARB_TICK_SLOW_US);
}

/* ---- binary upgrade (USR2) ------------------------------------------ */

void
master_save_argv(int argc, char **argv)
{
    (void)argc;
    arb_argv = argv;
    ssize_t n = readlink("/proc/self/exe", arb_exe, sizeof(arb_exe) - 1);
    arb_exe[n > 0 ? n : 0] = '\0';
}

/* Fork and exec the binary at our path with our argv, handing over the
 * listen socket in MASTER_INHERIT_ENV. The pidfile moves to .oldbin first so
 * the new master can write its own (gunicorn's and nginx's convention). */
static void
arb_upgrade(struct arbiter *a)
{
    if (a->new_master != 0) {
        of_log_warn("USR2 ignored: new master %ld is already running", (long)a->new_master);
        return;
    }
    if (arb_exe[0] == '\0' || arb_argv == NULL) {
        of_log_error("USR2 ignored: the path of the executable is unknown");
        return;
    }
    char oldbin[sizeof(a->pidfile_cur)];
    if (a->pidfile[0] != '\0') {
        snprintf(oldbin, sizeof(oldbin), "%s.oldbin", a->pidfile);
        if (rename(a->pidfile, oldbin) != 0)
            of_log_errno(OF_LOG_WARN, errno, "rename(%s, %s) failed", a->pidfile, oldbin);
        else
            of_strlcpy(a->pidfile_cur, oldbin, sizeof(a->pidfile_cur));
    }
    pid_t pid = fork();
    if (pid < 0) {
        of_log_errno(OF_LOG_ERROR, errno, "USR2: fork() failed");
        if (strcmp(a->pidfile_cur, a->pidfile) != 0 && rename(a->pidfile_cur, a->pidfile) == 0)
            of_strlcpy(a->pidfile_cur, a->pidfile, sizeof(a->pidfile_cur));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        char     v[32];
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);   /* exec keeps the mask */
        fcntl(a->listen_fd, F_SETFD, 0);
        snprintf(v, sizeof(v), "%d%s", a->listen_fd, a->from_systemd ? ",systemd" : "");
        setenv(MASTER_INHERIT_ENV, v, 1);
        execv(arb_exe, arb_argv);
        of_log_errno(OF_LOG_ERROR, errno, "USR2: execv(%s) failed", arb_exe);
        _exit(127);
    }
    a->new_master = pid;
    of_log_info("USR2: started new master %ld (%s); WINCH stops this master's workers, "
                "QUIT stops this master gracefully", (long)pid, arb_exe);
}

/* The new master died: roll back to being the only master. */
static void
arb_new_master_exited(struct arbiter *a, int st)
{
    char how[96];
    arb_describe_status(st, how, sizeof(how));
    of_log_error("new master %ld %s; rolling back to this master", (long)a->new_master, how);
    a->new_master = 0;
    if (strcmp(a->pidfile_cur, a->pidfile) != 0) {
        if (rename(a->pidfile_cur, a->pidfile) == 0)
            of_strlcpy(a->pidfile_cur, a->pidfile, sizeof(a->pidfile_cur));
        else
            of_log_errno(OF_LOG_WARN, errno, "rename(%s, %s) failed", a->pidfile_cur, a->pidfile);
    }
    if (a->mode == ARB_RUN && a->target == 0) {
        a->target = a->cfg->server.workers_effective;
        of_log_info("starting %d workers again", a->target);
    }
}

static void
arb_winch(struct arbiter *a)
{
    if (a->new_master == 0) {
        of_log_warn("WINCH ignored: no binary upgrade in progress");
        return;
    }
    a->target = 0;
    of_log_info("WINCH: stopping this master's workers gracefully; new master %ld serves",
                (long)a->new_master);
}

/* ---- the loop --------------------------------------------------------- */

static void
arb_handle_flags(struct arbiter *a)
{
    if (sig_reap) {
        sig_reap = 0;
        arb_reap(a);
    }
    if (sig_quick) {
        sig_quick = 0;
        arb_begin_stop(a, ARB_QUICK, 0);
    }
    if (sig_quit) {
        /* QUIT is a quick stop, except for an old master after USR2, which
         * stops gracefully as nginx's does, so the upgrade drops nothing */
        sig_quit = 0;
        arb_begin_stop(a, a->new_master != 0 ? ARB_GRACEFUL : ARB_QUICK, 0);
    }
    if (sig_term) {
        sig_term = 0;
        arb_begin_stop(a, ARB_GRACEFUL, 0);
    }
    if (sig_hup) {
        sig_hup = 0;
        if (a->mode == ARB_RUN)
            arb_reload(a);
    }
    if (sig_ttin) {
        int n = sig_ttin;
        sig_ttin = 0;
        a->target = a->target + n > OF_SB_MAX_WORKERS ? OF_SB_MAX_WORKERS : a->target + n;
        of_log_info("TTIN: %d workers wanted", a->target);
    }
    if (sig_ttou) {
        int n = sig_ttou;
        sig_ttou = 0;
        a->target = a->target - n < 1 ? (a->target < 1 ? a->target : 1) : a->target - n;
        of_log_info("TTOU: %d workers wanted", a->target);
    }
    if (sig_usr1) {
        sig_usr1 = 0;
        if (of_log_reopen() != 0)
            of_log_errno(OF_LOG_ERROR, errno, "reopening the log failed");
        /* a booting worker may not handle USR1 yet (default action: die);
         * it gets the signal once it is READY */
        for (int i = 0; i < OF_SB_MAX_WORKERS; i++) {
            if (a->w[i].pid == 0)
                continue;
            if (atomic_load(&a->sb->slots[i].state) == OF_SB_READY)
                kill(a->w[i].pid, SIGUSR1);
            else
                a->w[i].usr1_pending = true;
        }
        of_log_info("USR1: log reopened");
    }
    if (sig_usr2) {
        sig_usr2 = 0;
        if (a->mode == ARB_RUN)
            arb_upgrade(a);
    }
    if (sig_winch) {
        sig_winch = 0;
        if (a->mode == ARB_RUN)
            arb_winch(a);
    }
    sig_alarm = 0;
}

static int
arb_run(struct arbiter *a, const sigset_t *old)
{
    srandom((unsigned)(of_mono_ns() ^ (uint64_t)getpid()));
    arb_tick(a);
    for (;;) {
        sigsuspend(old);
        arb_handle_flags(a);
        arb_tick(a);
        if (a->mode != ARB_RUN && arb_live(a) == 0)
            break;
    }
    struct itimerval off;
    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_REAL, &off, NULL);
    return a->exit_code;
}

/* ---- serve ------------------------------------------------------------ */

int
master_serve(struct of_cfg *cfg)
{
    static struct arbiter a;   /* large (256 slots); one per process */
    sigset_t              blocked, old_mask;
    bool                  drop = false;
    uid_t                 uid = 0;
    gid_t                 gid = 0;
    int                   rc = 1;

    /* handlers first: a signal that comes while binding waits (blocked)
     * for the loop instead of killing the master half-started */
    arb_signals_install(&blocked, &old_mask);
    memset(&a, 0, sizeof(a));
    a.cfg = cfg;
    a.gen = 1;
    a.target = cfg->server.workers_effective;
    a.jobs_wanted = arb_jobs_wanted(cfg);
    a.tick_us = -1;
    a.listen_fd = -1;
    of_log_info("orderflow %s starting (pid %ld, %d workers)", OF_VERSION, (long)getpid(), a.target);

    if (master_resolve_user(cfg->server.user, cfg->server.group, &uid, &gid, &drop) != 0)
        goto out;
    a.listen_fd = master_listen_open(cfg, a.unix_path, sizeof(a.unix_path), &a.from_systemd);
    if (a.listen_fd < 0)
        goto out;
    if ((a.sb = of_sb_create()) == NULL) {
        of_log_errno(OF_LOG_ERROR, errno, "mapping the scoreboard failed");
        goto out;
    }
    atomic_store(&a.sb->master_pid, getpid());
    atomic_store(&a.sb->start_time, (int64_t)of_wall_s());
    atomic_store(&a.sb->workers_target, a.target);
    if (cfg->server.pidfile != NULL) {
        if (master_pidfile_write(cfg->server.pidfile) != 0)
            goto out;
        of_strlcpy(a.pidfile, cfg->server.pidfile, sizeof(a.pidfile));
        of_strlcpy(a.pidfile_cur, cfg->server.pidfile, sizeof(a.pidfile_cur));
    }
    if (drop) {
        if (a.unix_path[0] != '\0' && lchown(a.unix_path, uid, gid) != 0)
            of_log_errno(OF_LOG_WARN, errno, "lchown(%s) failed", a.unix_path);
        if (of_log_file_fd() >= 0 && fchown(of_log_file_fd(), uid, gid) != 0)
            of_log_errno(OF_LOG_WARN, errno, "chown(%s) failed", cfg->server.log_file);
        if (master_drop_privileges(cfg->server.user, uid, gid) != 0)
            goto out_pid;
    }
    if (sd_watchdog_enabled(0, &a.wd_usec) <= 0)
        a.wd_usec = 0;

    rc = arb_run(&a, &old_mask);
    of_log_info("master exiting with status %d", rc);
out_pid:
    /* the path written at start (or its .oldbin): a HUP may have changed server.pidfile */
    if (a.pidfile_cur[0] != '\0')
        master_pidfile_remove(a.pidfile_cur);
out:
    if (a.listen_fd >= 0)
        close(a.listen_fd);
    /* after a USR2 upgrade the socket belongs to the new master */
    if (a.unix_path[0] != '\0' && !a.from_systemd && a.new_master == 0)
        unlink(a.unix_path);
    of_sb_destroy(a.sb);
    cfg_free(a.cfg);
    free(a.cfg);
    return rc;
}
