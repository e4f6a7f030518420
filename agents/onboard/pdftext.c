/*
 * PDF text through poppler-glib; see pdftext.h.
 *
 * The document is opened from memory (the service's endpoint has the upload in a buffer, the CLI
 * reads the file into one), wrapping the caller's bytes without copying them: poppler holds a
 * reference on the GBytes only while the document lives, and the document is gone before we
 * return.
 *
 * One lock around the whole extraction: poppler's documents are independent of each other, but
 * its process-wide state (GlobalParams, the font tables it fills lazily) has had thread-safety
 * fixes release after release, and onboarding runs a brief now and then, not in parallel.
 */
#include "agents/onboard/pdftext.h"

#include <errno.h>
#include <poppler.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sbuf.h"
#include "base/util.h"

static pthread_mutex_t pdftext_lock = PTHREAD_MUTEX_INITIALIZER;

/* True when s holds nothing but white space (ASCII, and the form feed poppler puts at a page's
 * end). */
static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n\f\v")] == '\0';
}

/* Appends at most room bytes of s to b, cut back to a UTF-8 boundary; returns false when s did
 * not fit whole. */
static bool append_capped(sbuf_t *b, const char *s, size_t room)
{
    size_t n = strlen(s);

    if (n <= room) {
        sbuf_append(b, s, n);
        return true;
    }
    n = room;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    sbuf_append(b, s, n);
    return false;
}

/* Reads every page's text into b, within the limits of pdftext.h. Called under the lock. */
static void read_pages(PopplerDocument *doc, pdftext_t *out, sbuf_t *b)
{
    int n = poppler_document_get_n_pages(doc);

    out->pages = n;
    for (int i = 0; i < n; i++) {
        if (i >= PDFTEXT_MAX_PAGES || b->len >= PDFTEXT_MAX_TEXT_BYTES) {
            out->truncated = true;
            return;
        }
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (page == NULL)
            continue;
        char *text = poppler_page_get_text(page);
        if (text != NULL && !blank(text)) {
            if (b->len > 0 && !append_capped(b, "\n\n", PDFTEXT_MAX_TEXT_BYTES - b->len))
                out->truncated = true;
            if (!append_capped(b, text, PDFTEXT_MAX_TEXT_BYTES - b->len))
                out->truncated = true;
        }
        g_free(text);
        g_object_unref(page);
    }
}

int pdftext_extract(const void *pdf, size_t len, pdftext_t *out, char *err, size_t errlen)
{
    GError *gerr = NULL;
    sbuf_t b = SBUF_INIT;
    pdftext_t t = {0};
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    GBytes *bytes = g_bytes_new_static(pdf, len);
    pthread_mutex_lock(&pdftext_lock);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (doc == NULL) {
        snprintf(err, errlen, "cannot read the PDF: %s",
                 gerr != NULL && gerr->message != NULL ? gerr->message : "unknown error");
        rc = -EINVAL;
    } else {
        read_pages(doc, &t, &b);
        g_object_unref(doc);
    }
    pthread_mutex_unlock(&pdftext_lock);
    g_bytes_unref(bytes);
    if (gerr != NULL)
        g_error_free(gerr);
    if (rc == 0 && (b.len == 0 || blank(b.data))) {
        snprintf(err, errlen, "the PDF has no text (%d page%s)", t.pages, t.pages == 1 ? "" : "s");
        rc = -ENODATA;
    }
    if (rc != 0) {
        sbuf_destroy(&b);
        return rc;
    }
    t.len = b.len;
    t.text = sbuf_take(&b);
    *out = t;
    return 0;
}

void pdftext_free(pdftext_t *t)
{
    free(t->text);
    memset(t, 0, sizeof(*t));
}
