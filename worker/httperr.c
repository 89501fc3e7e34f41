/*
 * httperr.c -- the answers evhttp gives by itself, in API.md's JSON shape.
 *
 * evhttp (libevent 2.1.12) answers a few requests before they reach our
 * callback: a request line or header block it cannot parse (400), headers
 * or a body over its limits (413), a method it does not know or that is not
 * allowed (501). It writes those with evhttp_send_error(), as an HTML page.
 * libevent 2.1 has no evhttp_set_ext_method_cmp (that is 2.2) and no hook
 * for these answers; but libevent calls evhttp_send_error through its PLT,
 * so the definition below, in the executable, is the one it runs (ELF symbol
 * interposition; our own code calls it too). It answers
 * {"detail": "..."} with the same status and closes the connection, which is
 * what evhttp does after an error: no byte after such a request is ever
 * parsed as another request.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>

static const char *
httperr_detail(int status)
{
    switch (status) {
    case 400: return "Bad request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request body too large";
    case 431: return "Request header fields too large";
    case 501: return "Not Implemented";
    case 503: return "Service unavailable";
    default:  return status >= 500 ? "Internal server error" : "Bad request";
    }
}

void
evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer  *buf = evbuffer_new();
    const char       *detail = httperr_detail(error);

    (void)reason;     /* evhttp's reason phrases are fixed; detail says the same */
    /* as evhttp's own error page does: a request line that did not parse
     * leaves no version to answer with. A CONNECT or absolute-URI request is
     * a "proxy request" to evhttp, for which it would honour only
     * Proxy-Connection: make Connection: close count. */
    if (req->major == 0 || req->minor == 0) {
        req->major = 1;
        req->minor = 1;
    }
    req->flags &= ~EVHTTP_PROXY_REQUEST;
    /* An answer to CONNECT is framed as a tunnel's (no Content-Length, the
     * connection kept for the tunnel bytes): answer it as a plain request. */
    if (req->type == EVHTTP_REQ_CONNECT)
        req->type = EVHTTP_REQ_GET;
    evhttp_clear_headers(out);
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Connection", "close");
    if (buf != NULL)
        evbuffer_add_printf(buf, "{\"detail\":\"%s\"}", detail);
    evhttp_send_reply(req, error, NULL, buf);
    if (buf != NULL)
        evbuffer_free(buf);
}
