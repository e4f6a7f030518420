/*
 * The text of a PDF, with Debian's poppler (poppler-glib): the first step of onboarding a tenant
 * from its brief (SPEC 16). No PDF parsing of our own: poppler reads the file, lays out each
 * page's text in reading order, and we join the pages.
 *
 * The glib and poppler headers stay inside pdftext.c, so that includers (the onboarding CLI, the
 * service's brief endpoint) need only this header; the programs that call pdftext_extract() link
 * $(PDF_LIBS) (see the Makefile).
 *
 * Thread: any. Calls are serialised on one lock inside (see pdftext.c), so a caller that runs it
 * on a shared worker should expect to wait for another caller's PDF.
 */
#ifndef SB_AGENTS_ONBOARD_PDFTEXT_H
#define SB_AGENTS_ONBOARD_PDFTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Text beyond this many bytes is cut off (at a UTF-8 boundary): a brief is a few pages, and the
 * whole text goes into one Chat Completions request. */
#define PDFTEXT_MAX_TEXT_BYTES (256 * 1024)
/* Pages read at most; later pages are left out, as with the text limit. */
#define PDFTEXT_MAX_PAGES 200

typedef struct pdftext {
    char *text;     /* heap, NUL-terminated UTF-8; pages separated by a blank line */
    size_t len;     /* strlen(text) */
    int pages;      /* pages in the document */
    bool truncated; /* a limit above cut the text short */
} pdftext_t;

/*
 * Extracts the text of the PDF document in pdf[0..len). On success returns 0 and fills out (free
 * it with pdftext_free()). Returns -ENODATA when the document opens but no page has any text
 * other than white space (a scanned or image-only PDF); -EINVAL when poppler cannot open it (not
 * a PDF, damaged beyond repair, or encrypted with a password), with poppler's reason in err. On
 * error out is left zeroed.
 */
int pdftext_extract(const void *pdf, size_t len, pdftext_t *out, char *err, size_t errlen);

void pdftext_free(pdftext_t *t);

#endif
