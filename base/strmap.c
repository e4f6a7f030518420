#include "base/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define STRMAP_MIN_BUCKETS 16

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a offset basis */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL; /* FNV-1a prime */
    }
    return h;
}

void strmap_init(strmap_t *m)
{
    m->buckets = NULL;
    m->n_buckets = 0;
    m->count = 0;
}

void strmap_destroy(strmap_t *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    strmap_init(m);
}

static strmap_entry_t **slot(const strmap_t *m, const char *key)
{
    strmap_entry_t **p = &m->buckets[hash(key) & (m->n_buckets - 1)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    if (m->n_buckets == 0)
        return NULL;
    strmap_entry_t *e = *slot(m, key);
    return e ? e->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : STRMAP_MIN_BUCKETS;
    strmap_entry_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < m->n_buckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            size_t j = hash(e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

void *strmap_put(strmap_t *m, const char *key, void *value)
{
    if (m->count >= m->n_buckets)
        grow(m);
    strmap_entry_t **p = slot(m, key);
    if (*p) {
        void *old = (*p)->value;
        (*p)->value = value;
        return old;
    }
    strmap_entry_t *e = xmalloc(sizeof(*e));
    e->key = xstrdup(key);
    e->value = value;
    e->next = NULL;
    *p = e;
    m->count++;
    return NULL;
}

void *strmap_del(strmap_t *m, const char *key)
{
    if (m->n_buckets == 0)
        return NULL;
    strmap_entry_t **p = slot(m, key);
    strmap_entry_t *e = *p;
    if (e == NULL)
        return NULL;
    void *v = e->value;
    *p = e->next;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

size_t strmap_count(const strmap_t *m)
{
    return m->count;
}

void strmap_filter(strmap_t *m, int (*fn)(const char *key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        strmap_entry_t **p = &m->buckets[i];
        while (*p) {
            strmap_entry_t *e = *p;
            if (fn(e->key, e->value, arg)) {
                *p = e->next;
                free(e->key);
                free(e);
                m->count--;
            } else {
                p = &e->next;
            }
        }
    }
}
