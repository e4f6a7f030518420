/*
 * libFuzzer target: wsp_utf8_valid() (the check of every text message from clients and the
 * upstream) against the decoding reference in utf8_ref.h, at every starting offset of the input
 * so the eight-byte ASCII steps meet every alignment and every cut.
 */
#include <stdint.h>
#include <stdlib.h>

#include "net/wsproto.h"
#include "tests/fuzz/utf8_ref.h"

#define FUZZ_UTF8_OFFSETS 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t off = 0; off < FUZZ_UTF8_OFFSETS && off <= size; off++)
        if (wsp_utf8_valid(data + off, size - off) != utf8_ref_valid(data + off, size - off))
            abort();
    return 0;
}
