/*
 * tenantdir: reading the tenant files (SPEC 16) into snapshots, without publishing anything:
 * the pure half of the registry (tenants.c), unit tested on its own. Private to agents/tenant.
 * Thread: the caller's (the main thread in the service).
 */
#ifndef SB_AGENTS_TENANT_TENANTDIR_H
#define SB_AGENTS_TENANT_TENANTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents/tenant/tenant.h"

#define TENANTDIR_MAX_FILE_BYTES (1024 * 1024)

/* One tenant file as read: a snapshot (generation 0, one reference) or why it was refused. */
typedef struct tenantdir_file {
    char *name;  /* the file name, e.g. "acme.json" ("" for the built-in demo) */
    char *id;    /* the tenant id its name gives; NULL when the name is not a valid id */
    char *path;  /* the file, NULL for the demo */
    tenant_t *t; /* NULL when refused */
    char *error; /* why it was refused (names the key path), NULL when read */
} tenantdir_file_t;

typedef struct tenantdir {
    tenantdir_file_t *files; /* sorted by name */
    size_t n;
} tenantdir_t;

/*
 * Reads the tenants of path: every `*.json` of a directory (hidden files and other names
 * skipped), one file as `default`, or the built-in demo when path is NULL. Each file is parsed
 * on its own; a directory tenant must have publicKey and apiSecret. Returns 0 (refused files
 * are in out with their error), or -errno when the directory or the file cannot be listed or
 * opened, with a message in err.
 */
int tenantdir_read(const char *path, bool is_dir, tenantdir_t *out, char *err, size_t errlen);
void tenantdir_free(tenantdir_t *d);

/*
 * Finds two snapshots of set (entries may be NULL) that share a publicKey, an apiSecret or a
 * phone number. Returns true with their indexes (*a < *b) and what they share ("publicKey",
 * "apiSecret", "phone number +1…" in what), else false.
 */
bool tenantdir_conflict(tenant_t *const *set, size_t n, size_t *a, size_t *b, char *what,
                        size_t whatlen);

/* A secret's stand-in for maps (hex of a 128-bit BLAKE2b): no copy of the secret is kept. */
void tenantdir_secret_tag(const char *secret, char out[2 * TENANT_DIGEST_LEN + 1]);

/* True when s (of length len) is a tenant id: [a-z0-9-]{1,40}. */
bool tenantdir_id_ok(const char *s, size_t len);

/* A new snapshot of cfg (taken) for tenant id, read from path (may be NULL), one reference. */
tenant_t *tenant_new(const char *id, const char *path, agentcfg_t *cfg,
                     const uint8_t digest[TENANT_DIGEST_LEN]);

#endif
