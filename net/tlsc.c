/* TLS for outbound WebSockets on memory BIOs; see tlsc.h. */
#include "net/tlsc.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/util.h"

#define TLSC_ERR_MAX 160

struct tlsc {
    SSL *ssl;
    BIO *in;  /* ciphertext from the peer; SSL reads it */
    BIO *out; /* ciphertext to the peer; SSL writes it */
};

static _Thread_local SSL_CTX *tl_ctx; /* [owner] shared by this thread's clients */
static _Thread_local unsigned tl_ctx_refs;

static const unsigned char alpn_http11[] = "\x08http/1.1";

static SSL_CTX *ctx_ref(void)
{
    if (tl_ctx == NULL) {
        SSL_CTX *c = SSL_CTX_new(TLS_client_method());
        if (c == NULL)
            return NULL;
        SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_default_verify_paths(c) != 1) {
            SSL_CTX_free(c);
            return NULL;
        }
        tl_ctx = c;
    }
    tl_ctx_refs++;
    return tl_ctx;
}

static void ctx_unref(void)
{
    if (--tl_ctx_refs == 0) {
        SSL_CTX_free(tl_ctx);
        tl_ctx = NULL;
    }
}

tlsc_t *tlsc_new(const char *host)
{
    SSL_CTX *ctx = ctx_ref();
    if (ctx == NULL)
        return NULL;
    tlsc_t *t = xcalloc(1, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        free(t);
        ctx_unref();
        return NULL;
    }
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs from here */
    SSL_set_connect_state(t->ssl);
    unsigned char ip[sizeof(struct in6_addr)];
    bool literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                     : SSL_set_tlsext_host_name(t->ssl, host) == 1 && SSL_set1_host(t->ssl, host);
    if (!ok || SSL_set_alpn_protos(t->ssl, alpn_http11, sizeof(alpn_http11) - 1) != 0) {
        tlsc_free(t);
        return NULL;
    }
    return t;
}

void tlsc_free(tlsc_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
    ctx_unref();
}

int tlsc_feed(tlsc_t *t, const void *in, size_t len)
{
    return len == 0 || BIO_write(t->in, in, (int)len) == (int)len ? 0 : -1;
}

/* Logs why the handshake or the stream failed: OpenSSL's error queue and the verify result. */
static void log_failure(tlsc_t *t, const char *what)
{
    char err[TLSC_ERR_MAX] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, err, sizeof(err));
    ERR_clear_error();
    const char *verify = tlsc_verify_error(t);
    log_warn("tlsc.failed", LOG_S("step", what), LOG_S("error", err),
             LOG_S("verify", verify ? verify : "ok"));
}

int tlsc_handshake(tlsc_t *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    log_failure(t, "handshake");
    return -1;
}

ssize_t tlsc_read(tlsc_t *t, void *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e != SSL_ERROR_ZERO_RETURN)
        log_failure(t, "read");
    return -1;
}

int tlsc_write(tlsc_t *t, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    return SSL_write(t->ssl, p, (int)len) == (int)len ? 0 : -1;
}

const char *tlsc_verify_error(const tlsc_t *t)
{
    long v = SSL_get_verify_result(t->ssl);
    return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

size_t tlsc_take_out(tlsc_t *t, void *buf, size_t cap)
{
    int n = BIO_read(t->out, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}
