/*
 * Reading tenant files (tenantdir.h). A file is read once: its bytes go to the parser and, with
 * its brief (which may come from brief_file), into the digest that tells a reload whether the
 * tenant changed.
 */
#include "agents/tenant/tenantdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/strmap.h"
#include "base/util.h"

#define JSON_SUFFIX     ".json"
#define ERROR_MAX_CHARS 512

bool tenantdir_id_ok(const char *s, size_t len)
{
    if (len < 1 || len > TENANT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

tenant_t *tenant_new(const char *id, const char *path, agentcfg_t *cfg,
                     const uint8_t digest[TENANT_DIGEST_LEN])
{
    tenant_t *t = xcalloc(1, sizeof(*t));
    t->refs = 1;
    str_copy(t->id, id, sizeof(t->id));
    t->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    t->path = path ? xstrdup(path) : NULL;
    memcpy(t->digest, digest, TENANT_DIGEST_LEN);
    return t;
}

/* Reads a regular file of at most TENANTDIR_MAX_FILE_BYTES; NULL or why not. */
static const char *read_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return strerror(errno);
    const char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size > TENANTDIR_MAX_FILE_BYTES)
        why = "the file is too large";
    char *buf = why ? NULL : xmalloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            why = r < 0 ? strerror(errno) : NULL;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (why) {
        free(buf);
        return why;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return NULL;
}

/* Parses one file (text of len bytes) for tenant id; fills f->t or f->error. */
static void parse_one(tenantdir_file_t *f, const char *id, const char *text, size_t len,
                      const char *base_dir, bool in_dir)
{
    char err[ERROR_MAX_CHARS];
    agentcfg_t cfg;
    if (agentcfg_parse(&cfg, text, len, base_dir, err, sizeof(err)) != 0) {
        f->error = xstrdup(err);
        return;
    }
    const char *missing = !in_dir                  ? NULL
                          : !cfg.access.public_key ? "publicKey"
                          : !cfg.access.api_secret ? "apiSecret"
                                                   : NULL;
    if (missing) {
        snprintf(err, sizeof(err), "config: %s: required key is missing (a tenant needs it)",
                 missing);
        f->error = xstrdup(err);
        agentcfg_free(&cfg);
        return;
    }
    uint8_t digest[TENANT_DIGEST_LEN];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(digest));
    crypto_generichash_update(&st, (const unsigned char *)text, len);
    crypto_generichash_update(&st, (const unsigned char *)cfg.brief, strlen(cfg.brief) + 1);
    crypto_generichash_final(&st, digest, sizeof(digest));
    f->t = tenant_new(id, f->path, &cfg, digest);
}

static void read_one(tenantdir_file_t *f, const char *base_dir, bool in_dir)
{
    char *text = NULL;
    size_t len = 0;
    const char *why = read_file(f->path, &text, &len);
    if (why != NULL) {
        char err[ERROR_MAX_CHARS];
        snprintf(err, sizeof(err), "cannot read \"%s\": %s", f->path, why);
        f->error = xstrdup(err);
        return;
    }
    parse_one(f, f->id, text, len, base_dir, in_dir);
    free(text);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tenantdir_file_t *)a)->name, ((const tenantdir_file_t *)b)->name);
}

/* Lists dir's `*.json` entries into out (sorted) and reads each. */
static int read_dir(const char *dir, tenantdir_t *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        int rc = -errno;
        snprintf(err, errlen, "config: cannot read the tenant directory \"%s\": %s", dir,
                 strerror(errno));
        return rc;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name), sl = strlen(JSON_SUFFIX);
        if (de->d_name[0] == '.' || len <= sl || strcmp(de->d_name + len - sl, JSON_SUFFIX) != 0)
            continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            out->files = xrealloc(out->files, cap * sizeof(*out->files));
        }
        tenantdir_file_t *f = &out->files[out->n++];
        memset(f, 0, sizeof(*f));
        f->name = xstrdup(de->d_name);
        f->path = xmalloc(strlen(dir) + len + 2);
        sprintf(f->path, "%s/%s", dir, de->d_name);
        if (tenantdir_id_ok(de->d_name, len - sl))
            f->id = xstrndup(de->d_name, len - sl);
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->files, out->n, sizeof(*out->files), by_name);
    for (size_t i = 0; i < out->n; i++) {
        tenantdir_file_t *f = &out->files[i];
        if (f->id == NULL) {
            char e[ERROR_MAX_CHARS];
            snprintf(e, sizeof(e),
                     "\"%s\" is not a tenant file name: expected <id>.json with an id of "
                     "[a-z0-9-]{1,%d}",
                     f->name, TENANT_ID_MAX);
            f->error = xstrdup(e);
            continue;
        }
        read_one(f, dir, true);
    }
    return 0;
}

int tenantdir_read(const char *path, bool is_dir, tenantdir_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    if (path != NULL && is_dir)
        return read_dir(path, out, err, errlen);
    out->files = xcalloc(1, sizeof(*out->files));
    out->n = 1;
    tenantdir_file_t *f = &out->files[0];
    f->id = xstrdup(TENANT_DEFAULT_ID);
    if (path == NULL) {
        f->name = xstrdup("");
        parse_one(f, f->id, agentcfg_demo_json, strlen(agentcfg_demo_json), NULL, false);
        return 0;
    }
    const char *slash = strrchr(path, '/');
    f->name = xstrdup(slash ? slash + 1 : path);
    f->path = xstrdup(path);
    char *dir =
        slash == NULL ? xstrdup(".") : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
    read_one(f, dir, false);
    free(dir);
    return 0;
}

void tenantdir_free(tenantdir_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        tenantdir_file_t *f = &d->files[i];
        free(f->name);
        free(f->id);
        free(f->path);
        tenant_unref(f->t);
        free(f->error);
    }
    free(d->files);
    memset(d, 0, sizeof(*d));
}

void tenantdir_secret_tag(const char *secret, char out[2 * TENANT_DIGEST_LEN + 1])
{
    uint8_t h[TENANT_DIGEST_LEN];
    crypto_generichash(h, sizeof(h), (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_bin2hex(out, 2 * TENANT_DIGEST_LEN + 1, h, sizeof(h));
}

/* Puts key into seen (owner index + 1); on a clash writes what and returns the other's index. */
static bool seen_before(strmap_t *seen, const char *key, size_t i, size_t *other)
{
    void *prev = strmap_put(seen, key, (void *)(uintptr_t)(i + 1));
    if (prev == NULL)
        return false;
    *other = (size_t)(uintptr_t)prev - 1;
    return true;
}

bool tenantdir_conflict(tenant_t *const *set, size_t n, size_t *a, size_t *b, char *what,
                        size_t whatlen)
{
    strmap_t seen; /* "k:<publicKey>", "s:<apiSecret>", "p:<number>" -> index + 1 */
    bool found = false;
    strmap_init(&seen);
    for (size_t i = 0; i < n && !found; i++) {
        const agent_access_t *ac = set[i] ? &set[i]->cfg.access : NULL;
        if (ac == NULL)
            continue;
        char key[300];
        if (ac->public_key) {
            snprintf(key, sizeof(key), "k:%s", ac->public_key);
            if ((found = seen_before(&seen, key, i, a)))
                snprintf(what, whatlen, "publicKey");
        }
        if (!found && ac->api_secret) {
            char tag[2 * TENANT_DIGEST_LEN + 1];
            tenantdir_secret_tag(ac->api_secret, tag);
            snprintf(key, sizeof(key), "s:%s", tag);
            if ((found = seen_before(&seen, key, i, a)))
                snprintf(what, whatlen, "apiSecret");
        }
        for (size_t k = 0; !found && k < ac->n_phone_numbers; k++) {
            snprintf(key, sizeof(key), "p:%s", ac->phone_numbers[k]);
            if ((found = seen_before(&seen, key, i, a)))
                snprintf(what, whatlen, "phone number %s", ac->phone_numbers[k]);
        }
        if (found)
            *b = i;
    }
    strmap_destroy(&seen);
    return found;
}
