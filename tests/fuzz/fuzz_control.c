/* Fuzz target: a line a client sends to a managed domain's monitor (tools/ctl.c,
 * doc/control.md). The monitor's only parser of client bytes is ctl_parse_request() plus
 * the typed parameter readers; this runs all of them on the input, then the base64 pair
 * (console events) on it: decoding the encoding must give the input back. */
#include "fuzz.h"

#include <string.h>

#include "../../tools/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_request req;
    char err[256];
    if (ctl_parse_request((const char *)data, size, &req, err, sizeof err) == 0) {
        if (!req.method || !json_is_object(req.params))
            abort();
        bool b = false;
        uint64_t u = 0;
        ctl_param_bool(&req, "replay", &b, err, sizeof err);
        ctl_param_bool(&req, "input", &b, err, sizeof err);
        ctl_param_uint(&req, "timeout_ms", 86400000ull, &u, err, sizeof err);
        ctl_param_uint(&req, "rows", 65535, &u, err, sizeof err);
        if (u > 86400000ull)
            abort();
    }
    if (!memchr(err, 0, sizeof err))
        abort();
    ctl_request_free(&req);

    char *enc = ctl_base64(data, size);
    if (!enc)
        return 0;
    unsigned char *dec = malloc(strlen(enc) / 4 * 3 + 1);
    long n = dec ? ctl_unbase64(enc, dec) : -1;
    if (dec && (n != (long)size || memcmp(dec, data, size) != 0))
        abort();
    free(dec);
    free(enc);
    /* and the decoder on arbitrary text (NUL-terminated copy) */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = 0;
        unsigned char *out = malloc(size / 4 * 3 + 3);
        if (out)
            ctl_unbase64(text, out);
        free(out);
        free(text);
    }
    return 0;
}
