/*
 * cfgparse: the strict JSON reading shared by the config files of agents/config (the agent
 * config of SPEC 2.2 and the tenant keys of SPEC 16). A parser walks a cJSON tree keeping the key
 * path it is at; every error is `config: <key path>: <problem>`, so a user finds the line to fix.
 * Private to agents/config. Thread: the caller's (no state outside the cfgparse_t).
 */
#ifndef SB_AGENTS_CONFIG_CFGPARSE_H
#define SB_AGENTS_CONFIG_CFGPARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define CFGPARSE_KEY_PATH_MAX_CHARS 256
#define CFGPARSE_MAX_LIST_ITEMS     256 /* args, env, headers, globs, origins, numbers */

/* Parser state: where errors go, the folder brief_file is relative to, the current key path. */
typedef struct cfgparse {
    char *err;
    size_t errlen;
    const char *base_dir;
    char path[CFGPARSE_KEY_PATH_MAX_CHARS];
    size_t plen;
} cfgparse_t;

/* Accepts or refuses a string value. */
typedef bool (*cfgparse_ok_fn)(const char *s);

/* Appends text to the key path, control bytes shown as '?'. Returns the length to pop back to. */
size_t cfgparse_path_push(cfgparse_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends ".key" (or "key" at the top) / "[i]" to the path; returns the length to pop back to. */
size_t cfgparse_path_key(cfgparse_t *p, const char *key);
size_t cfgparse_path_index(cfgparse_t *p, size_t i);
void cfgparse_path_pop(cfgparse_t *p, size_t saved);

/* Writes `config: <path>: <reason>` into the error buffer and returns -EINVAL. */
int cfgparse_fail(cfgparse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "expected <expected>, got <kind of j>", as cfgparse_fail(). */
int cfgparse_fail_type(cfgparse_t *p, const cJSON *j, const char *expected);
/* "a string", "an array", ... for messages. */
const char *cfgparse_json_kind(const cJSON *j);
/* obj.key (case-sensitive), or NULL. */
const cJSON *cfgparse_get(const cJSON *obj, const char *key);

/*
 * Checks an object's keys: no key twice and, when allowed (NULL-terminated) is given, none
 * outside it. Returns 0 or -EINVAL naming the key.
 */
int cfgparse_check_keys(cfgparse_t *p, const cJSON *obj, const char *const *allowed);
/*
 * Copies the string obj.key into *out. A missing key is an error when required and leaves *out
 * alone otherwise. ok (may be NULL) validates the text; expect says what it wants.
 */
int cfgparse_get_string(cfgparse_t *p, const cJSON *obj, const char *key, bool required,
                        cfgparse_ok_fn ok, const char *expect, char **out);
/*
 * obj.key, an array of strings each accepted by ok (NULL = any string), into a new vector *out
 * of *n. what_array and what_item say what is expected, for the messages.
 */
int cfgparse_strv(cfgparse_t *p, const cJSON *obj, const char *key, cfgparse_ok_fn ok,
                  const char *what_array, const char *what_item, char ***out, size_t *n);
/* Frees a vector of n strings (NULL-safe). */
void cfgparse_strv_free(char **v, size_t n);

bool cfgparse_nonempty_ok(const char *s);

/*
 * Reads the regular file at path (at most max bytes) into a NUL-terminated buffer in *out.
 * Returns NULL, or why it could not (the caller names the file).
 */
const char *cfgparse_read_text_file(const char *path, size_t max, char **out, size_t *len);

#endif
