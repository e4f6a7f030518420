/*
 * Strict JSON reading for the config files (cfgparse.h).
 */
#include "agents/config/cfgparse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define CFGPARSE_REASON_MAX_CHARS 256

/* Appends text to the key path, control bytes shown as '?'. Returns the length to pop back to. */
size_t cfgparse_path_push(cfgparse_t *p, const char *fmt, ...)
{
    size_t saved = p->plen;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->path + p->plen, sizeof(p->path) - p->plen, fmt, ap);
    va_end(ap);
    p->plen += strlen(p->path + p->plen);
    for (size_t i = saved; i < p->plen; i++)
        if ((unsigned char)p->path[i] < 0x20 || p->path[i] == 0x7f)
            p->path[i] = '?';
    return saved;
}

size_t cfgparse_path_key(cfgparse_t *p, const char *key)
{
    return cfgparse_path_push(p, "%s%s", p->plen ? "." : "", key);
}

size_t cfgparse_path_index(cfgparse_t *p, size_t i)
{
    return cfgparse_path_push(p, "[%zu]", i);
}

void cfgparse_path_pop(cfgparse_t *p, size_t saved)
{
    p->plen = saved;
    p->path[saved] = '\0';
}

/* Writes `config: <path>: <reason>` into the error buffer and returns -EINVAL. */
int cfgparse_fail(cfgparse_t *p, const char *fmt, ...)
{
    char reason[CFGPARSE_REASON_MAX_CHARS];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (p->errlen > 0)
        snprintf(p->err, p->errlen, "config: %s%s%s", p->path, p->plen ? ": " : "", reason);
    return -EINVAL;
}

const char *cfgparse_json_kind(const cJSON *j)
{
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "an unknown value";
}

int cfgparse_fail_type(cfgparse_t *p, const cJSON *j, const char *expected)
{
    return cfgparse_fail(p, "expected %s, got %s", expected, cfgparse_json_kind(j));
}

const cJSON *cfgparse_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * Checks an object's keys: no key twice and, when allowed (NULL-terminated) is given, none
 * outside it. Returns 0 or -EINVAL naming the key.
 */
int cfgparse_check_keys(cfgparse_t *p, const cJSON *obj, const char *const *allowed)
{
    for (const cJSON *k = obj->child; k != NULL; k = k->next) {
        bool known = allowed == NULL;
        for (size_t i = 0; !known && allowed[i] != NULL; i++)
            known = strcmp(k->string, allowed[i]) == 0;
        if (!known) {
            cfgparse_path_key(p, k->string);
            return cfgparse_fail(p, "unknown key");
        }
        for (const cJSON *d = obj->child; d != k; d = d->next) {
            if (strcmp(d->string, k->string) == 0) {
                cfgparse_path_key(p, k->string);
                return cfgparse_fail(p, "duplicate key");
            }
        }
    }
    return 0;
}

/*
 * Copies the string obj.key into *out. A missing key is an error when required and leaves *out
 * alone otherwise. ok (may be NULL) validates the text; expect says what it wants.
 */
int cfgparse_get_string(cfgparse_t *p, const cJSON *obj, const char *key, bool required,
                        cfgparse_ok_fn ok, const char *expect, char **out)
{
    const cJSON *j = cfgparse_get(obj, key);
    size_t saved = cfgparse_path_key(p, key);

    if (j == NULL) {
        if (required)
            return cfgparse_fail(p, "required key is missing");
        cfgparse_path_pop(p, saved);
        return 0;
    }
    if (!cJSON_IsString(j))
        return cfgparse_fail_type(p, j, expect);
    if (ok != NULL && !ok(j->valuestring))
        return cfgparse_fail(p, "expected %s", expect);
    *out = xstrdup(j->valuestring);
    cfgparse_path_pop(p, saved);
    return 0;
}

bool cfgparse_nonempty_ok(const char *s)
{
    return s[0] != '\0';
}

/*
 * Reads the regular file at path (at most max bytes) into a NUL-terminated buffer in *out.
 * Returns NULL, or why it could not (the caller names the file).
 */
const char *cfgparse_read_text_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    const char *why = NULL;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return strerror(errno);
    if (fstat(fd, &st) != 0) {
        why = strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if ((size_t)st.st_size > max) {
        why = "the file is too large";
    } else {
        buf = xmalloc((size_t)st.st_size + 1);
        while (n < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                why = strerror(errno);
                break;
            }
            if (r == 0)
                break;
            n += (size_t)r;
        }
        buf[n] = '\0';
    }
    close(fd);
    if (why != NULL) {
        free(buf);
        return why;
    }
    *out = buf;
    *len = n;
    return NULL;
}

/*
 * obj.key, an array of strings each accepted by ok (NULL = any string), into a new vector *out
 * of *n. what_array and what_item say what is expected, for the messages.
 */
int cfgparse_strv(cfgparse_t *p, const cJSON *obj, const char *key, cfgparse_ok_fn ok,
                  const char *what_array, const char *what_item, char ***out, size_t *n)
{
    const cJSON *j = cfgparse_get(obj, key), *e;
    size_t saved = cfgparse_path_key(p, key);

    if (!cJSON_IsArray(j))
        return cfgparse_fail_type(p, j, what_array);
    if (cJSON_GetArraySize(j) > CFGPARSE_MAX_LIST_ITEMS)
        return cfgparse_fail(p, "at most %d items are allowed", CFGPARSE_MAX_LIST_ITEMS);
    *out = xcalloc((size_t)cJSON_GetArraySize(j), sizeof(char *));
    cJSON_ArrayForEach(e, j)
    {
        if (!cJSON_IsString(e)) {
            cfgparse_path_index(p, *n);
            return cfgparse_fail_type(p, e, what_item);
        }
        if (ok != NULL && !ok(e->valuestring)) {
            cfgparse_path_index(p, *n);
            return cfgparse_fail(p, "expected %s", what_item);
        }
        (*out)[(*n)++] = xstrdup(e->valuestring);
    }
    cfgparse_path_pop(p, saved);
    return 0;
}

void cfgparse_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
