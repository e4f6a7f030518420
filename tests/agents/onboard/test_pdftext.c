/*
 * PDF text through poppler (agents/onboard/pdftext.c) on small PDFs made here: one object per
 * page with a Helvetica text or a drawing, and an exact cross-reference table, so that poppler
 * reads them without repairing anything.
 */
#include "agents/onboard/pdftext.h"

#include <errno.h>
#include <stdio.h>

#include "base/sbuf.h"
#include "base/util.h"
#include "tests/runner.h"

#define ERR_LEN        512
#define MAX_OBJECTS    512
#define FIRST_PAGE_OBJ 4 /* 1 catalog, 2 page tree, 3 font; then a page and its contents each */

/*
 * A PDF of n pages whose content streams are contents[i] (PDF operators), all sharing one
 * Helvetica font. Heap, in b.
 */
static void make_pdf(sbuf_t *b, const char *const *contents, int n)
{
    size_t offsets[MAX_OBJECTS];
    int objects = FIRST_PAGE_OBJ - 1 + 2 * n;

    ASSERT_LT(objects, MAX_OBJECTS);
    sbuf_puts(b, "%PDF-1.4\n");
    offsets[1] = b->len;
    sbuf_puts(b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    offsets[2] = b->len;
    sbuf_printf(b, "2 0 obj << /Type /Pages /Count %d /Kids [", n);
    for (int i = 0; i < n; i++)
        sbuf_printf(b, " %d 0 R", FIRST_PAGE_OBJ + 2 * i);
    sbuf_puts(b, " ] >> endobj\n");
    offsets[3] = b->len;
    sbuf_puts(b, "3 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
    for (int i = 0; i < n; i++) {
        int page = FIRST_PAGE_OBJ + 2 * i;
        offsets[page] = b->len;
        sbuf_printf(b,
                    "%d 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >> endobj\n",
                    page, page + 1);
        offsets[page + 1] = b->len;
        sbuf_printf(b, "%d 0 obj << /Length %zu >> stream\n%s\nendstream endobj\n", page + 1,
                    strlen(contents[i]), contents[i]);
    }
    size_t xref = b->len;
    sbuf_printf(b, "xref\n0 %d\n0000000000 65535 f \n", objects + 1);
    for (int i = 1; i <= objects; i++)
        sbuf_printf(b, "%010zu 00000 n \n", offsets[i]);
    sbuf_printf(b, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", objects + 1,
                xref);
}

#define TEXT_PAGE(s) "BT /F1 12 Tf 72 720 Td (" s ") Tj ET"
#define DRAWING      "0.5 g 72 72 300 300 re f 0 0 m 600 700 l S"

TEST(pdftext_reads_every_page)
{
    const char *pages[] = {TEXT_PAGE("Company: Acme Plumbing"), DRAWING,
                           TEXT_PAGE("Drain cleaning - 60 min - $120")};
    char err[ERR_LEN];
    sbuf_t pdf = SBUF_INIT;
    pdftext_t t;

    make_pdf(&pdf, pages, 3);
    ASSERT_EQ(pdftext_extract(pdf.data, pdf.len, &t, err, sizeof(err)), 0);
    ASSERT_EQ(t.pages, 3);
    ASSERT(!t.truncated);
    ASSERT_EQ(t.len, strlen(t.text));
    ASSERT_STR_CONTAINS(t.text, "Company: Acme Plumbing");
    ASSERT_STR_CONTAINS(t.text, "Drain cleaning - 60 min - $120");
    /* pages in order, a blank line between two with text; the drawing adds nothing */
    ASSERT(strstr(t.text, "Company") < strstr(t.text, "Drain"));
    ASSERT_STR_CONTAINS(t.text, "\n\nDrain");
    pdftext_free(&t);
    ASSERT(t.text == NULL);
    sbuf_destroy(&pdf);
}

TEST(pdftext_no_text)
{
    const char *pages[] = {DRAWING, DRAWING, "BT /F1 12 Tf 72 720 Td (   ) Tj ET"};
    char err[ERR_LEN];
    sbuf_t pdf = SBUF_INIT;
    pdftext_t t;

    make_pdf(&pdf, pages, 3);
    ASSERT_EQ(pdftext_extract(pdf.data, pdf.len, &t, err, sizeof(err)), -ENODATA);
    ASSERT_STR_CONTAINS(err, "no text (3 pages)");
    ASSERT(t.text == NULL);
    sbuf_destroy(&pdf);
}

TEST(pdftext_not_a_pdf)
{
    char err[ERR_LEN];
    pdftext_t t;
    static const char junk[] = "Company: Acme\nThis is a text file.\n";

    ASSERT_EQ(pdftext_extract(junk, sizeof(junk) - 1, &t, err, sizeof(err)), -EINVAL);
    ASSERT_STR_CONTAINS(err, "cannot read the PDF");
    ASSERT(t.text == NULL);
    ASSERT_EQ(pdftext_extract("", 0, &t, err, sizeof(err)), -EINVAL);
}

TEST(pdftext_page_limit)
{
    static const char *pages[PDFTEXT_MAX_PAGES + 1];
    char err[ERR_LEN];
    sbuf_t pdf = SBUF_INIT;
    pdftext_t t;

    for (int i = 0; i <= PDFTEXT_MAX_PAGES; i++)
        pages[i] = i < PDFTEXT_MAX_PAGES ? TEXT_PAGE("page") : TEXT_PAGE("past the limit");
    make_pdf(&pdf, pages, PDFTEXT_MAX_PAGES + 1);
    ASSERT_EQ(pdftext_extract(pdf.data, pdf.len, &t, err, sizeof(err)), 0);
    ASSERT_EQ(t.pages, PDFTEXT_MAX_PAGES + 1);
    ASSERT(t.truncated);
    ASSERT(strstr(t.text, "past the limit") == NULL);
    pdftext_free(&t);
    sbuf_destroy(&pdf);
}
