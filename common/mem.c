/*
 * mem.c -- per-request arena. Bump allocation from an inline block, then
 * from malloc'd chunks that double in size; released all at once.
 */
#include "common/mem.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct of_mem_chunk {
    struct of_mem_chunk *next;
    size_t               size;
    size_t               used;
    _Alignas(16) char    data[];
};

struct of_mem_cleanup {
    struct of_mem_cleanup *next;
    void                 (*fn)(void *);
    void                  *arg;
};

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

void
of_mem_init(struct of_mem *m)
{
    m->chunks = NULL;
    m->cleanups = NULL;
    m->first_used = 0;
    m->abandoned = false;
}

void
of_mem_release(struct of_mem *m)
{
    while (m->cleanups != NULL) {
        struct of_mem_cleanup *c = m->cleanups;
        m->cleanups = c->next;
        c->fn(c->arg);          /* c itself lives in the arena: freed below */
    }
    while (m->chunks != NULL) {
        struct of_mem_chunk *c = m->chunks;
        m->chunks = c->next;
        free(c);
    }
    m->first_used = 0;
    m->abandoned = false;
}

void *
of_mem_alloc(struct of_mem *m, size_t n)
{
    n = ALIGN16(n ? n : 1);
    size_t off = ALIGN16(m->first_used);
    if (off + n <= sizeof(m->first)) {
        m->first_used = off + n;
        return m->first + off;
    }
    struct of_mem_chunk *c = m->chunks;
    if (c != NULL && c->used + n <= c->size) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    size_t size = c != NULL ? c->size * 2 : 8192;
    while (size < n)
        size *= 2;
    struct of_mem_chunk *nc = malloc(sizeof(*nc) + size);
    if (nc == NULL)
        of_fatal("malloc(%zu) failed", size);
    nc->size = size;
    nc->used = n;
    nc->next = m->chunks;
    m->chunks = nc;
    return nc->data;
}

void *
of_mem_calloc(struct of_mem *m, size_t n)
{
    void *p = of_mem_alloc(m, n);
    memset(p, 0, n);
    return p;
}

char *
of_mem_strndup(struct of_mem *m, const char *s, size_t n)
{
    char *p = of_mem_alloc(m, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
of_mem_strdup(struct of_mem *m, const char *s)
{
    return of_mem_strndup(m, s, strlen(s));
}

char *
of_mem_printf(struct of_mem *m, const char *fmt, ...)
{
    va_list ap;
    char    small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        of_fatal("vsnprintf failed");
    char *p = of_mem_alloc(m, (size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void
of_mem_cleanup_add(struct of_mem *m, void (*fn)(void *), void *arg)
{
    struct of_mem_cleanup *c = of_mem_alloc(m, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    c->next = m->cleanups;
    m->cleanups = c;
}
