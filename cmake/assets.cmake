# assets.cmake -- what the handlers library embeds (included from the root
# CMakeLists.txt after of_handlers exists):
#   docs/openapi.json                      -> GET /openapi.json
#   swagger-ui-dist (npm) bundle + css     -> GET /docs, /docs/swagger-ui-*.{js,css}
#
# swagger-ui-dist is installed with npm into the build tree at configure time
# (never committed). Without npm, or when the registry cannot be reached,
# the build still succeeds and /docs serves a plain page linking the document.

set(OF_SWAGGER_UI_VERSION "5.35.0" CACHE STRING "swagger-ui-dist version installed from npm for /docs")
option(OF_SWAGGER_UI "Install swagger-ui-dist with npm at configure time and embed it" ON)

set(OF_VENDOR_DIR ${CMAKE_BINARY_DIR}/vendor)
set(OF_SWAGGER_DIR ${OF_VENDOR_DIR}/node_modules/swagger-ui-dist)

if(OF_SWAGGER_UI)
  set(_of_have "")
  if(EXISTS ${OF_SWAGGER_DIR}/package.json)
    file(READ ${OF_SWAGGER_DIR}/package.json _of_pkg)
    string(REGEX MATCH "\"version\": *\"([^\"]+)\"" _of_m "${_of_pkg}")
    set(_of_have "${CMAKE_MATCH_1}")
  endif()
  if(NOT _of_have STREQUAL OF_SWAGGER_UI_VERSION)
    find_program(OF_NPM npm)
    if(OF_NPM)
      message(STATUS "Installing swagger-ui-dist@${OF_SWAGGER_UI_VERSION} into ${OF_VENDOR_DIR}")
      file(MAKE_DIRECTORY ${OF_VENDOR_DIR})
      execute_process(
        COMMAND ${OF_NPM} install --no-audit --no-fund --ignore-scripts --no-package-lock
                --prefix ${OF_VENDOR_DIR} swagger-ui-dist@${OF_SWAGGER_UI_VERSION}
        WORKING_DIRECTORY ${OF_VENDOR_DIR}
        RESULT_VARIABLE _of_rc OUTPUT_VARIABLE _of_out ERROR_VARIABLE _of_err
        TIMEOUT 300)
      if(NOT _of_rc EQUAL 0)
        message(WARNING "npm install swagger-ui-dist failed (${_of_rc}); /docs will be a plain page.\n${_of_err}")
      endif()
    else()
      message(WARNING "npm not found: /docs will be a plain page linking /openapi.json")
    endif()
  endif()
endif()

set(_of_swagger_deps "")
set(_of_swagger_args "")
if(OF_SWAGGER_UI AND EXISTS ${OF_SWAGGER_DIR}/swagger-ui-bundle.js AND EXISTS ${OF_SWAGGER_DIR}/swagger-ui.css)
  set(_of_swagger_deps ${OF_SWAGGER_DIR}/swagger-ui-bundle.js ${OF_SWAGGER_DIR}/swagger-ui.css)
  set(_of_swagger_args -DSWAGGER_DIR=${OF_SWAGGER_DIR} -DSWAGGER_VERSION=${OF_SWAGGER_UI_VERSION})
  message(STATUS "Swagger UI ${OF_SWAGGER_UI_VERSION} will be embedded for /docs")
endif()

set(OF_ASSETS_C ${CMAKE_BINARY_DIR}/gen/of_assets.c)
add_custom_command(
  OUTPUT ${OF_ASSETS_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${OF_ASSETS_C} -DOPENAPI=${CMAKE_SOURCE_DIR}/docs/openapi.json
          ${_of_swagger_args} -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/openapi.json ${CMAKE_SOURCE_DIR}/cmake/embed.cmake ${_of_swagger_deps}
  COMMENT "Embedding docs/openapi.json and Swagger UI"
  VERBATIM)
target_sources(of_handlers PRIVATE ${OF_ASSETS_C})
