/*
 * docs.c -- see docs.h. Everything served here is a constant in the binary:
 * no file system access at run time, so it works the same under systemd's
 * ProtectSystem=strict, in a container, or after the build tree is gone.
 */
#include "handlers/docs.h"
#include "handlers/assets.h"

#include <string.h>

/* Swagger UI's page: the two embedded files, pointed at /openapi.json.
 * Relative URLs, so the page also works behind a path prefix. */
static const char swagger_page[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>OrderFlow API - Swagger UI</title>\n"
    "<link rel=\"stylesheet\" href=\"docs/swagger-ui.css\">\n"
    "</head>\n"
    "<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"docs/swagger-ui-bundle.js\"></script>\n"
    "<script>\n"
    "window.ui = SwaggerUIBundle({\n"
    "  url: \"openapi.json\",\n"
    "  dom_id: \"#swagger-ui\",\n"
    "  deepLinking: true,\n"
    "  presets: [SwaggerUIBundle.presets.apis],\n"
    "  layout: \"BaseLayout\"\n"
    "});\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

/* Built without swagger-ui-dist (no npm at build time): still an answer. */
static const char plain_page[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head><meta charset=\"utf-8\"><title>OrderFlow API</title></head>\n"
    "<body>\n"
    "<h1>OrderFlow API</h1>\n"
    "<p>The OpenAPI 3.1 description of this API is at "
    "<a href=\"openapi.json\">/openapi.json</a>.</p>\n"
    "<p>(This build has no Swagger UI: swagger-ui-dist was not installed when it was built.)</p>\n"
    "</body>\n"
    "</html>\n";

static void
send_asset(struct hdl_req *r, const char *ctype, const unsigned char *data, size_t len,
           bool cache)
{
    if (len == 0) {
        hdl_reply_error(r, 404, "Not Found");
        return;
    }
    if (cache)
        r->io->add_header(r, "Cache-Control", "public, max-age=86400");
    /* 1.7 MB of Swagger UI: by reference, no copy per request */
    if (r->io->send_static != NULL)
        r->io->send_static(r, 200, ctype, (const char *)data, len);
    else
        r->io->send(r, 200, ctype, (const char *)data, len);
}

void
hdl_openapi(struct hdl_req *r)
{
    send_asset(r, "application/json", of_asset_openapi_json, of_asset_openapi_json_len, false);
}

void
hdl_docs(struct hdl_req *r)
{
    if (of_asset_swagger_bundle_js_len > 0 && of_asset_swagger_css_len > 0) {
        r->io->send(r, 200, "text/html; charset=utf-8", swagger_page, sizeof(swagger_page) - 1);
        return;
    }
    r->io->send(r, 200, "text/html; charset=utf-8", plain_page, sizeof(plain_page) - 1);
}

void
hdl_docs_bundle_js(struct hdl_req *r)
{
    send_asset(r, "application/javascript; charset=utf-8", of_asset_swagger_bundle_js,
               of_asset_swagger_bundle_js_len, true);
}

void
hdl_docs_css(struct hdl_req *r)
{
    send_asset(r, "text/css; charset=utf-8", of_asset_swagger_css, of_asset_swagger_css_len, true);
}
