/*
 * test_files.c -- files the master opens, possibly as root (issue 11, item
 * 7): the log is never opened through a symlink, the pidfile's temporary
 * file never written through one planted at its name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "master/master.h"

static char dir[] = "/tmp/of-files-XXXXXX";

static void
path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static long
file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void
test_log_is_not_opened_through_a_symlink(void **state)
{
    (void)state;
    char target[256], link[256], plain[256];
    path_in(target, sizeof(target), "victim");
    path_in(link, sizeof(link), "orderflow.log");
    path_in(plain, sizeof(plain), "plain.log");
    write_file(target, "precious\n");
    assert_int_equal(symlink(target, link), 0);

    assert_int_equal(of_log_open(link, OF_LOG_INFO), -1);
    assert_int_equal(of_log_file_fd(), -1);          /* still on stderr */
    assert_int_equal(file_size(target), 9);

    assert_int_equal(of_log_open(plain, OF_LOG_INFO), 0);
    assert_true(of_log_file_fd() >= 0);
    of_log_open("-", OF_LOG_INFO);
    assert_int_equal(of_log_file_fd(), -1);
}

static void
test_pidfile_temp_is_not_written_through_a_symlink(void **state)
{
    (void)state;
    char target[256], pidfile[256], tmp[300], want[32];
    path_in(target, sizeof(target), "victim2");
    path_in(pidfile, sizeof(pidfile), "orderflow.pid");
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", pidfile, (long)getpid());
    write_file(target, "precious\n");
    assert_int_equal(symlink(target, tmp), 0);

    assert_int_equal(master_pidfile_write(pidfile), 0);
    assert_int_equal(file_size(target), 9);           /* untouched */
    struct stat st;
    assert_int_equal(lstat(pidfile, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_not_equal(lstat(tmp, &st), 0);         /* renamed away */
    char got[32] = { 0 };
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    assert_non_null(fgets(got, sizeof(got), f));
    fclose(f);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    assert_string_equal(got, want);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_is_not_opened_through_a_symlink),
        cmocka_unit_test(test_pidfile_temp_is_not_written_through_a_symlink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
