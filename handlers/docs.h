/*
 * docs.h -- the API's own description: GET /openapi.json (the OpenAPI 3.1
 * document docs/openapi.json, embedded at build time) and GET /docs
 * (Swagger UI from swagger-ui-dist, its two files served under /docs/).
 * No auth, no database.
 */
#ifndef OF_HDL_DOCS_H
#define OF_HDL_DOCS_H

#include "handlers/hdl.h"

void hdl_openapi(struct hdl_req *r);
void hdl_docs(struct hdl_req *r);
void hdl_docs_bundle_js(struct hdl_req *r);
void hdl_docs_css(struct hdl_req *r);

#endif
