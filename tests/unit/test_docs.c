/*
 * test_docs.c -- handlers/docs.c serves the embedded assets (openapi.json,
 * Swagger UI's bundle and stylesheet) by reference: the body handed to the
 * transport is the array in the binary itself, not a per-request copy
 * (issue 11 item 3).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "handlers/assets.h"
#include "handlers/docs.h"
#include "tests/unit/support/fake_http.h"

static void
check(void (*fn)(struct hdl_req *), const char *path, const unsigned char *asset, size_t len)
{
    struct fake_req *f = fake_req_new(NULL, HDL_GET, path, NULL, NULL);
    fn(&f->r);
    assert_int_equal(f->answers, 1);
    if (len == 0) {                          /* built without swagger-ui-dist */
        assert_int_equal(f->status, 404);
    } else {
        assert_int_equal(f->status, 200);
        assert_ptr_equal(f->static_body, (const char *)asset);
        assert_memory_equal(f->body, asset, len);
    }
    fake_req_free(f);
}

static void
test_assets_by_reference(void **state)
{
    (void)state;
    check(hdl_openapi, "/openapi.json", of_asset_openapi_json, of_asset_openapi_json_len);
    check(hdl_docs_bundle_js, "/docs/swagger-ui-bundle.js", of_asset_swagger_bundle_js,
          of_asset_swagger_bundle_js_len);
    check(hdl_docs_css, "/docs/swagger-ui.css", of_asset_swagger_css, of_asset_swagger_css_len);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assets_by_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
