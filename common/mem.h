/*
 * mem.h -- per-request memory: an arena plus a list of cleanups.
 *
 * Everything a request allocates hangs off one struct of_mem and is released
 * in exactly one place by of_mem_release(). Allocation never fails silently:
 * out of memory aborts (of_fatal), as there is no sane way to answer then.
 */
#ifndef OF_MEM_H
#define OF_MEM_H

#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>

struct of_mem_chunk;
struct of_mem_cleanup;

struct of_mem {
    struct of_mem_chunk   *chunks;
    struct of_mem_cleanup *cleanups;
    _Alignas(16) char      first[2048];   /* inline first block: no malloc for small requests */
    size_t                 first_used;
    bool                   abandoned;   /* set when the client went away mid-request */
};

void  of_mem_init(struct of_mem *m);
/* Runs cleanups (last added first), frees every chunk; m can be reused after. */
void  of_mem_release(struct of_mem *m);

void *of_mem_alloc(struct of_mem *m, size_t n);          /* 16-byte aligned, uninitialised */
void *of_mem_calloc(struct of_mem *m, size_t n);
char *of_mem_strdup(struct of_mem *m, const char *s);
char *of_mem_strndup(struct of_mem *m, const char *s, size_t n);
char *of_mem_printf(struct of_mem *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fn(arg) runs at of_mem_release. */
void  of_mem_cleanup_add(struct of_mem *m, void (*fn)(void *), void *arg);

#endif
