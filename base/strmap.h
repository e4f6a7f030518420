/*
 * strmap: a hash map from strings to pointers (chained, FNV-1a, grows at load factor 1).
 * Thread: owner (a map belongs to one actor or one thread).
 */
#ifndef SB_BASE_STRMAP_H
#define SB_BASE_STRMAP_H

#include <stddef.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    char *key; /* owned copy */
    void *value;
} strmap_entry_t;

typedef struct strmap {
    strmap_entry_t **buckets;
    size_t n_buckets;
    size_t count;
} strmap_t;

void strmap_init(strmap_t *m);
/* Frees the entries; values are the caller's (free them first, e.g. with strmap_each). */
void strmap_destroy(strmap_t *m);
void *strmap_get(const strmap_t *m, const char *key);
/* Sets key to value; returns the previous value or NULL. */
void *strmap_put(strmap_t *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_del(strmap_t *m, const char *key);
size_t strmap_count(const strmap_t *m);

/*
 * Calls fn for every entry; when fn returns non-zero the entry is removed (fn must release the
 * value itself then).
 */
void strmap_filter(strmap_t *m, int (*fn)(const char *key, void *value, void *arg), void *arg);

#endif
