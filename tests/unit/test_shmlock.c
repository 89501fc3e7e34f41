/*
 * test_shmlock.c -- the scoreboard's rate-limit locks survive a crashed
 * holder (issue 11 item 6): a child process takes a bucket's lock in the
 * shared mapping and is SIGKILLed while holding it; the next locker gets the
 * lock (stolen once the holder is gone), the master's reap clears what a
 * dead pid held, and a live holder that never lets go makes the take fail
 * open after a bounded spin instead of hanging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/scoreboard.h"

/* Fork a child that takes lock and then waits to be killed; returns its pid
 * once it holds the lock. */
static pid_t
hold_in_child(_Atomic pid_t *lock)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (!of_sb_lock(lock, getpid()))
            _exit(2);
        char c = 'L';
        if (write(p[1], &c, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    close(p[0]);
    assert_int_equal(atomic_load(lock), pid);
    return pid;
}

static void
kill_and_reap(pid_t pid)
{
    int st = 0;
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* The holder died in its critical section: the next take steals the lock,
 * counts, and leaves the lock free. */
static void
test_dead_holder_is_stolen(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    const uint64_t        key = 4242;
    int                   retry = 0;

    assert_non_null(sb);
    assert_true(of_sb_rl_take(sb, key, 2, 1.0, &retry));
    pid_t child = hold_in_child(&sb->rl[key % OF_SB_RL_SLOTS].lock);
    kill_and_reap(child);
    assert_true(of_sb_rl_take(sb, key, 2, 1.0, &retry));
    assert_false(of_sb_rl_take(sb, key, 2, 1.0, &retry));     /* the bucket still counts */
    assert_int_equal(atomic_load(&sb->rl[key % OF_SB_RL_SLOTS].lock), 0);
    of_sb_destroy(sb);
}

/* What the master does when it reaps a worker. */
static void
test_unlock_dead(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    assert_non_null(sb);
    pid_t child = hold_in_child(&sb->rl[17].lock);
    kill_and_reap(child);
    assert_int_equal(of_sb_unlock_dead(sb, child), 1);
    assert_int_equal(atomic_load(&sb->rl[17].lock), 0);
    assert_int_equal(of_sb_unlock_dead(sb, child), 0);
    of_sb_destroy(sb);
}

/* A live holder that does not let go: the take gives up and allows. */
static void
test_live_holder_fails_open(void **state)
{
    (void)state;
    struct of_scoreboard *sb = of_sb_create();
    const uint64_t        key = 99;
    int                   retry = 0;

    assert_non_null(sb);
    pid_t child = hold_in_child(&sb->rl[key % OF_SB_RL_SLOTS].lock);
    for (int i = 0; i < 3; i++)        /* more than the capacity of 1: all allowed */
        assert_true(of_sb_rl_take(sb, key, 1, 1.0, &retry));
    assert_false(of_sb_lock(&sb->rl[key % OF_SB_RL_SLOTS].lock, getpid()));
    assert_int_equal(atomic_load(&sb->rl[key % OF_SB_RL_SLOTS].lock), child);
    kill_and_reap(child);
    assert_true(of_sb_lock(&sb->rl[key % OF_SB_RL_SLOTS].lock, getpid()));
    of_sb_destroy(sb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_holder_is_stolen),
        cmocka_unit_test(test_unlock_dead),
        cmocka_unit_test(test_live_holder_fails_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
