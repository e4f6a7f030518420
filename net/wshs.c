/* The client's opening handshake; see wshs.h. */
#include "net/wshs.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "net/wsframe.h"

#define WSHS_KEY_BYTES  16
#define WSHS_SHA1_BYTES 20
#define WSHS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */
#define HTTP_SWITCHING  101

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

int wshs_request(char *buf, size_t cap, const char *host, const char *path, const char *bearer,
                 const char *key)
{
    if (has_crlf(host) || has_crlf(path) || has_crlf(bearer))
        return -EINVAL;
    /* The same headers lws 4.1.6 sent for these connections (client-http.c, client-ws.c). */
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Pragma: no-cache\r\n"
                     "Cache-Control: no-cache\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s%s%s"
                     "\r\n",
                     path, host, key, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                     bearer ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

void wshs_new_key(char *key)
{
    uint8_t raw[WSHS_KEY_BYTES];
    if (getrandom(raw, sizeof(raw), GRND_NONBLOCK) != (ssize_t)sizeof(raw)) {
        /* No entropy yet: the key only has to differ between connections (RFC 6455 4.1). */
        uint8_t frame[WSF_HEADER_MAX + sizeof(raw)] = {0};
        wsf_client_frame(frame + WSF_HEADER_MAX, sizeof(raw), WSF_OP_BINARY);
        memcpy(raw, frame + WSF_HEADER_MAX, sizeof(raw)); /* zeros masked: the key repeated */
        raw[0] ^= (uint8_t)(uintptr_t)key;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
}

/* The Sec-WebSocket-Accept value for key (RFC 6455 4.2.2 step 5.4). */
static void accept_for(const char *key, char *out)
{
    char in[WSHS_KEY_CHARS + sizeof(WSHS_GUID)];
    size_t kl = strlen(key);
    memcpy(in, key, kl);
    memcpy(in + kl, WSHS_GUID, sizeof(WSHS_GUID) - 1);
    unsigned char md[WSHS_SHA1_BYTES];
    unsigned int mdlen = 0;
    EVP_Digest(in, kl + sizeof(WSHS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, WSHS_SHA1_BYTES);
}

bool wshs_accept(const char *key, char *out)
{
    /* 16 bytes in base64: 22 characters of the alphabet, then "==" (RFC 6455 4.2.1 item 5). */
    if (key == NULL || strlen(key) != WSHS_KEY_CHARS || strcmp(key + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '+' && key[i] != '/')
            return false;
    /* The last character before "==" carries 2 bits; the 4 it leaves over must be zero. */
    if (strchr("AQgw", key[21]) == NULL)
        return false;
    accept_for(key, out);
    return true;
}

/* Trims spaces and tabs around [*v, *v + *vl). */
static void trim(const char **v, size_t *vl)
{
    while (*vl && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*vl)--;
    }
    while (*vl && ((*v)[*vl - 1] == ' ' || (*v)[*vl - 1] == '\t'))
        (*vl)--;
}

static bool value_is(const char *v, size_t vl, const char *want)
{
    return vl == strlen(want) && strncasecmp(v, want, vl) == 0;
}

/* True when the comma-separated list v holds token (case-insensitive). */
static bool list_has(const char *v, size_t vl, const char *token)
{
    while (vl) {
        const char *comma = memchr(v, ',', vl);
        size_t el = comma ? (size_t)(comma - v) : vl;
        const char *e = v;
        size_t tl = el;
        trim(&e, &tl);
        if (value_is(e, tl, token))
            return true;
        if (!comma)
            break;
        v = comma + 1;
        vl -= el + 1;
    }
    return false;
}

/* Finds the end of the head (the blank line); returns its length or 0. */
static size_t head_len(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

int wshs_parse_response(const char *buf, size_t len, const char *key, wshs_response_t *out)
{
    size_t hl = head_len(buf, len < WSHS_RESPONSE_MAX ? len : WSHS_RESPONSE_MAX);
    if (hl == 0)
        return len >= WSHS_RESPONSE_MAX ? -EMSGSIZE : 0;
    memset(out, 0, sizeof(*out));
    /* Status line: HTTP/1.x SP 3DIGIT ... */
    if (hl < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -EINVAL;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -EINVAL;
        status = status * 10 + (buf[i] - '0');
    }
    out->status = status;
    bool upgrade = false, connection = false, accept = false, unoffered = false;
    char want[WSHS_ACCEPT_CHARS + 1];
    accept_for(key, want);
    const char *line = memchr(buf, '\n', hl);
    line = line ? line + 1 : buf + hl;
    const char *end = buf + hl - 2; /* the blank line's CRLF */
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line) + 1);
        if (eol == NULL)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll && line[ll - 1] == '\r')
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (colon) {
            const char *name = line;
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vl = ll - nl - 1;
            trim(&v, &vl);
            if (value_is(name, nl, "upgrade"))
                upgrade = value_is(v, vl, "websocket");
            else if (value_is(name, nl, "connection"))
                connection = list_has(v, vl, "upgrade");
            else if (value_is(name, nl, "sec-websocket-accept"))
                accept = vl == WSHS_ACCEPT_CHARS && memcmp(v, want, vl) == 0;
            else if (value_is(name, nl, "sec-websocket-extensions") ||
                     value_is(name, nl, "sec-websocket-protocol"))
                unoffered = true;
            else if (value_is(name, nl, "x-request-id")) {
                size_t cl = vl < sizeof(out->request_id) - 1 ? vl : sizeof(out->request_id) - 1;
                memcpy(out->request_id, v, cl);
                out->request_id[cl] = '\0';
            }
        }
        line = eol + 1;
    }
    out->upgraded = status == HTTP_SWITCHING && upgrade && connection && accept && !unoffered;
    return (int)hl;
}
