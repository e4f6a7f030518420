/*
 * switchboard-onboard: a tenant's config file from its PDF brief (SPEC 16).
 *
 *   switchboard-onboard FILE.pdf --tenant ID [--out DIR] [--force]
 *   switchboard-onboard FILE.pdf --text
 *   switchboard-onboard - --text --bytes N
 *
 * FILE "-" is stdin, read to its end, or for exactly N bytes with --bytes (a parent that writes
 * the PDF into a pipe need not close it: the service's brief endpoint).
 * Reads the PDF's text with poppler, sends it in one Chat Completions request (POST
 * {SWITCHBOARD_OPENAI_BASE_URL}/chat/completions, model SWITCHBOARD_SUPERVISOR_MODEL, bearer
 * OPENAI_API_KEY, read as the service reads them) with the strict json_schema "tenant_config",
 * and writes the answer as DIR/ID.json: the config of SPEC 2.2 plus a fresh publicKey and
 * apiSecret, empty allowedOrigins and phoneNumbers, for review. DIR defaults to
 * SWITCHBOARD_CONFIG when that names a directory, else the current directory. An existing file
 * is replaced only with --force; that is checked before the request too, so a refusal costs no
 * model call.
 *
 * On success the path written goes to stdout, a summary and notes for the reviewer to stderr.
 * Exit 0 on success; 1 when the PDF cannot be read or has no text, the request fails, the answer
 * does not make a valid config, or the file exists; 2 on usage and environment errors.
 *
 * --text prints the PDF's text as poppler reads it (what the model would be sent) and stops: to
 * see why a brief extracts badly, and for a process that wants the text without linking poppler
 * (the service's brief endpoint runs it as a child, so that a PDF that crashes poppler never
 * takes the service down). With --text, a PDF without text exits 3 (EXIT_NO_TEXT), so that a
 * parent can tell it from one that cannot be read (1).
 *
 * The steps are agents/onboard/ (shared with the service's brief endpoint); what is here is the
 * command line, the files and a blocking libcurl request.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents/onboard/onboard.h"
#include "agents/onboard/pdftext.h"
#include "base/config.h"
#include "base/sbuf.h"
#include "base/util.h"

#define EXIT_OK            0
#define EXIT_FAIL          1
#define EXIT_USAGE         2
#define EXIT_NO_TEXT       3 /* --text only: the PDF opens but has no text */
#define PROG               "switchboard-onboard"
#define CHAT_PATH          "/chat/completions"
#define URL_MAX_CHARS      2048
#define ERR_MAX_CHARS      512
#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 180000L /* a long brief takes the model a while */
#define MAX_RESPONSE_BYTES (4 * 1024 * 1024)
#define BYTES_PER_MB       (1024 * 1024)
#define READ_CHUNK_BYTES   (64 * 1024)

typedef struct opts {
    const char *pdf;
    const char *tenant;
    const char *out_dir;
    bool force;
    bool text_only;
    long long stdin_bytes; /* --bytes: how much of stdin is the PDF; -1 = all of it */
} opts_t;

static int say(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "switchboard-onboard: <message>" on stderr and returns status. */
static int say(int status, const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

static void usage(FILE *f)
{
    fputs("usage: " PROG " FILE.pdf --tenant ID [--out DIR] [--force]\n"
          "       " PROG " FILE.pdf --text\n"
          "       " PROG " - --text --bytes N\n"
          "\n"
          "Writes DIR/ID.json, a tenant's config extracted from its PDF brief by one Chat\n"
          "Completions request, with a new publicKey and apiSecret, for review.\n"
          "\n"
          "  --tenant ID  the tenant id, [a-z0-9-]{1,40}\n"
          "  --out DIR    where to write (default: SWITCHBOARD_CONFIG when it is a directory,\n"
          "               else the current directory)\n"
          "  --force      replace an existing ID.json\n"
          "  --text       print the PDF's text (what the model is sent) and stop;\n"
          "               exit 3 when it has none\n"
          "  --bytes N    with FILE -: the PDF is the next N bytes of stdin\n"
          "\n"
          "Environment: OPENAI_API_KEY, SWITCHBOARD_OPENAI_BASE_URL, SWITCHBOARD_SUPERVISOR_MODEL\n"
          "(as the service reads them), SWITCHBOARD_CONFIG.\n",
          f);
}

/* Parses the command line into o; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {{"tenant", required_argument, NULL, 't'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"text", no_argument, NULL, 'x'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"bytes", required_argument, NULL, 'b'},
                                             {NULL, 0, NULL, 0}};
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "t:o:fxh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->tenant = optarg;
            break;
        case 'o':
            o->out_dir = optarg;
            break;
        case 'f':
            o->force = true;
            break;
        case 'x':
            o->text_only = true;
            break;
        case 'b':
            errno = 0;
            o->stdin_bytes = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || o->stdin_bytes < 0 ||
                o->stdin_bytes > ONBOARD_MAX_PDF_BYTES)
                return say(EXIT_USAGE, "--bytes: expected 0..%d, not \"%s\"", ONBOARD_MAX_PDF_BYTES,
                           optarg);
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || (o->tenant == NULL) != o->text_only) {
        usage(stderr);
        return EXIT_USAGE;
    }
    o->pdf = argv[optind];
    if (o->stdin_bytes >= 0 && strcmp(o->pdf, "-") != 0)
        return say(EXIT_USAGE, "--bytes: only with FILE - (stdin)");
    if (o->tenant != NULL && !onboard_tenant_id_ok(o->tenant))
        return say(EXIT_USAGE, "--tenant: invalid id \"%s\" (expected [a-z0-9-]{1,%d})", o->tenant,
                   ONBOARD_TENANT_ID_MAX_CHARS);
    return -1;
}

/* SWITCHBOARD_CONFIG when it names a directory (the tenant directory of SPEC 16), else ".". */
static const char *default_out_dir(void)
{
    const char *cfg = getenv("SWITCHBOARD_CONFIG");
    struct stat st;

    if (cfg != NULL && cfg[0] != '\0' && stat(cfg, &st) == 0 && S_ISDIR(st.st_mode))
        return cfg;
    return ".";
}

/*
 * Reads the whole PDF (at most ONBOARD_MAX_PDF_BYTES) from path, or from stdin when path is "-"
 * (exactly `want` bytes of it when want >= 0), into *buf; returns 0 or an exit status.
 */
static int read_pdf(const char *path, long long want, char **buf, size_t *len)
{
    bool from_stdin = strcmp(path, "-") == 0;
    int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    sbuf_t b = SBUF_INIT;
    ssize_t n = 0;

    if (fd < 0)
        return say(EXIT_FAIL, "%s: %s", path, strerror(errno));
    while (b.len <= ONBOARD_MAX_PDF_BYTES && (want < 0 || b.len < (size_t)want)) {
        size_t chunk = READ_CHUNK_BYTES;
        if (want >= 0 && (size_t)want - b.len < chunk)
            chunk = (size_t)want - b.len;
        sbuf_reserve(&b, chunk);
        n = read(fd, b.data + b.len, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        b.len += (size_t)n;
    }
    int read_errno = errno;
    if (!from_stdin)
        close(fd);
    if (n < 0) {
        sbuf_destroy(&b);
        return say(EXIT_FAIL, "%s: %s", path, strerror(read_errno));
    }
    if (b.len > ONBOARD_MAX_PDF_BYTES) {
        sbuf_destroy(&b);
        return say(EXIT_FAIL, "%s: larger than %d MB", path, ONBOARD_MAX_PDF_BYTES / BYTES_PER_MB);
    }
    if (want >= 0 && b.len < (size_t)want) {
        sbuf_destroy(&b);
        return say(EXIT_FAIL, "%s: %zu bytes, not the %lld of --bytes", path, b.len, want);
    }
    *len = b.len;
    *buf = b.data ? sbuf_take(&b) : xstrdup("");
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    sbuf_t *b = userdata;

    if (b->len + size * n > MAX_RESPONSE_BYTES)
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    sbuf_append(b, data, size * n);
    return size * n;
}

/*
 * POSTs body to url with the bearer key and waits for the answer. Returns 0 with the status and
 * body, or an exit status after saying why the request failed.
 */
static int post(const char *url, const char *key, const char *body, long *status, sbuf_t *resp)
{
    char auth[ERR_MAX_CHARS], curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    CURL *e = curl_easy_init();
    CURLcode rc;

    if (e == NULL)
        return say(EXIT_FAIL, "cannot start libcurl");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, auth);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(e, CURLOPT_USERAGENT, PROG);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(e);
    sodium_memzero(auth, sizeof(auth));
    if (rc == CURLE_WRITE_ERROR)
        return say(EXIT_FAIL, "%s: the answer is larger than %d MB", url,
                   MAX_RESPONSE_BYTES / BYTES_PER_MB);
    if (rc != CURLE_OK)
        return say(EXIT_FAIL, "%s: %s", url, curl_err[0] ? curl_err : curl_easy_strerror(rc));
    return 0;
}

/*
 * The text of the PDF of o; returns 0 or an exit status after saying why there is none
 * (no_text_status when the PDF has no text).
 */
static int pdf_text(const opts_t *o, int no_text_status, pdftext_t *text)
{
    const char *path = o->pdf;
    char err[ERR_MAX_CHARS], *pdf = NULL;
    size_t len = 0;
    int rc = read_pdf(path, o->stdin_bytes, &pdf, &len);

    if (rc != 0)
        return rc;
    rc = pdftext_extract(pdf, len, text, err, sizeof(err));
    free(pdf);
    if (rc == -ENODATA)
        return say(no_text_status, "%s: %s", path, ONBOARD_NO_TEXT_MESSAGE);
    if (rc != 0)
        return say(EXIT_FAIL, "%s: %s", path, err);
    if (text->truncated)
        fprintf(stderr, PROG ": note: %s: only the first %zu bytes of text are used\n", path,
                text->len);
    return 0;
}

/* The steps once the arguments and the environment are good. */
static int onboard(const opts_t *o, const config_t *cfg)
{
    char path[URL_MAX_CHARS], url[URL_MAX_CHARS], err[ERR_MAX_CHARS];
    const char *dir = o->out_dir ? o->out_dir : default_out_dir();
    struct stat st;
    pdftext_t text;
    onboard_keys_t keys;
    sbuf_t resp = SBUF_INIT, notes = SBUF_INIT;
    char *body = NULL, *json = NULL;
    long status = 0;
    int rc;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return say(EXIT_FAIL, "%s: not a directory", dir);
    if (onboard_path(path, sizeof(path), dir, o->tenant) != 0)
        return say(EXIT_FAIL, "%s: the path is too long", dir);
    if (!o->force && lstat(path, &st) == 0)
        return say(EXIT_FAIL, "%s already exists; use --force to replace it", path);
    if ((rc = pdf_text(o, EXIT_FAIL, &text)) != 0)
        return rc;

    snprintf(url, sizeof(url), "%s%s", cfg->openai_base_url, CHAT_PATH);
    body = onboard_request_body(cfg->supervisor_model, text.text);
    rc = post(url, cfg->openai_api_key, body, &status, &resp);
    free(body);
    if (rc == 0 && status != 200) {
        onboard_http_error((int)status, resp.data, resp.len, err, sizeof(err));
        rc = say(EXIT_FAIL, "%s: %s", url, err);
    }
    if (rc == 0) {
        onboard_keys_generate(&keys);
        if (onboard_tenant_json(resp.data ? resp.data : "", resp.len, &keys, text.text, &json,
                                &notes, err, sizeof(err)) != 0)
            rc = say(EXIT_FAIL, "%s", err);
        sodium_memzero(&keys, sizeof(keys));
    }
    if (rc == 0 && onboard_write(dir, o->tenant, json, o->force, err, sizeof(err)) != 0)
        rc = say(EXIT_FAIL, "%s%s", err, strstr(err, "already exists") ? "; use --force" : "");
    if (rc == 0) {
        puts(path);
        for (char *line = notes.data; line != NULL && *line != '\0';) {
            char *nl = strchr(line, '\n');
            fprintf(stderr, PROG ": note: %.*s\n", (int)(nl ? nl - line : (long)strlen(line)),
                    line);
            line = nl ? nl + 1 : NULL;
        }
        say(EXIT_OK,
            "wrote %s from %s (%d page%s); review it, then fill in allowedOrigins and "
            "phoneNumbers",
            path, o->pdf, text.pages, text.pages == 1 ? "" : "s");
    }
    free(json);
    sbuf_destroy(&notes);
    sbuf_destroy(&resp);
    pdftext_free(&text);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const env_vars[] = {"OPENAI_API_KEY", "SWITCHBOARD_OPENAI_BASE_URL",
                                           "SWITCHBOARD_SUPERVISOR_MODEL", NULL};
    opts_t o = {.stdin_bytes = -1};
    config_t cfg;
    char err[ERR_MAX_CHARS];
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (o.text_only) {
        pdftext_t text;
        if ((rc = pdf_text(&o, EXIT_NO_TEXT, &text)) != 0)
            return rc;
        fwrite(text.text, 1, text.len, stdout);
        fputc('\n', stdout);
        pdftext_free(&text);
        return fflush(stdout) == 0 ? EXIT_OK : say(EXIT_FAIL, "stdout: %s", strerror(errno));
    }
    if (config_vars_from_env(&cfg, env_vars, err, sizeof(err)) != 0)
        return say(EXIT_USAGE, "%s", err);
    if (cfg.openai_api_key == NULL) {
        config_free(&cfg);
        return say(EXIT_USAGE, "OPENAI_API_KEY is not set");
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = onboard(&o, &cfg);
    curl_global_cleanup();
    config_free(&cfg);
    return rc;
}
