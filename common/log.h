/*
 * log.h -- structured logging: one JSON object per line, to stderr or a file.
 *
 * The level is checked before anything is formatted. Never pass secrets,
 * tokens or passwords. errno goes in as its own argument (of_log_errno).
 * Safe to call from any process; not from signal handlers.
 */
#ifndef OF_LOG_H
#define OF_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>

enum of_log_level { OF_LOG_DEBUG = 0, OF_LOG_INFO, OF_LOG_WARN, OF_LOG_ERROR };

extern enum of_log_level of_log_min;

/* path NULL or "" or "-" means stderr. Returns 0 or -1 (errno set). */
int  of_log_open(const char *path, enum of_log_level min);
/* Reopen the same path (USR1, after logrotate). */
int  of_log_reopen(void);
/* The log file's descriptor (opened without following a symlink), or -1
 * when logging to stderr: for fchown, never chown by path. */
int  of_log_file_fd(void);
/* The descriptor lines go to now (the file, or STDERR_FILENO). */
int  of_log_fd(void);
/* In a process that runs an event loop (worker, jobs): when the log is
 * stderr and stderr is a pipe (Docker), write it through a descriptor of
 * this process's own that is non-blocking, so a full pipe never stalls the
 * loop. A line (at most PIPE_BUF bytes, so each write is whole) that the
 * full pipe does not take is dropped. Returns true when it is in effect. */
bool of_log_use_nonblocking_pipe(void);
/* That descriptor, or -1 when the log is not a non-blocking pipe. */
int  of_log_pipe_fd(void);
int  of_log_level_parse(const char *s, enum of_log_level *out);
/* Role shown in every line: "master" or "worker". */
void of_log_set_role(const char *role);

/* JSON members (no braces, e.g. "\"trace_id\":\"...\",\"span_id\":\"...\"")
 * added to every line written until the next call; NULL or "" for none.
 * The string must stay valid until then (the worker's request context). */
void of_log_set_context(const char *members);

void of_log_write(enum of_log_level lvl, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes an already-formatted JSON object (must start with '{' and have no
 * newline) as one line; used by the access log. */
void of_log_raw(const char *json, size_t len);

/* Writes newline-terminated lines as they are, in one write(2): for callers
 * that batch lines themselves (the worker's access log). */
void of_log_lines(const char *buf, size_t len);

_Noreturn void of_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define of_log_debug(...) do { if (of_log_min <= OF_LOG_DEBUG) of_log_write(OF_LOG_DEBUG, 0, __VA_ARGS__); } while (0)
#define of_log_info(...)  do { if (of_log_min <= OF_LOG_INFO)  of_log_write(OF_LOG_INFO, 0, __VA_ARGS__); } while (0)
#define of_log_warn(...)  do { if (of_log_min <= OF_LOG_WARN)  of_log_write(OF_LOG_WARN, 0, __VA_ARGS__); } while (0)
#define of_log_error(...) of_log_write(OF_LOG_ERROR, 0, __VA_ARGS__)
/* Logs at lvl with "errno": err and its strerror. */
#define of_log_errno(lvl, err, ...) do { if (of_log_min <= (lvl)) of_log_write((lvl), (err), __VA_ARGS__); } while (0)

/* Escape s into dst as JSON string content (no quotes); always NUL-terminates;
 * returns the length written (truncated at cap-1). */
size_t of_json_escape(char *dst, size_t cap, const char *s);

#endif
