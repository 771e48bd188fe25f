# The Opsroom web UI: assets compiled in, JSON/SSE API over an abstract Backend.
set(OPSROOM_ASSETS
  ${CMAKE_CURRENT_SOURCE_DIR}/assets/index.html
  ${CMAKE_CURRENT_SOURCE_DIR}/assets/app.js
  ${CMAKE_CURRENT_SOURCE_DIR}/assets/style.css)
set(OPSROOM_ASSETS_CC ${CMAKE_CURRENT_BINARY_DIR}/assets.cc)
string(REPLACE ";" "|" OPSROOM_ASSETS_ARG "${OPSROOM_ASSETS}")
add_custom_command(OUTPUT ${OPSROOM_ASSETS_CC}
  COMMAND ${CMAKE_COMMAND} -DOUT=${OPSROOM_ASSETS_CC} -DASSETS=${OPSROOM_ASSETS_ARG}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/embed_assets.cmake
  VERBATIM
  DEPENDS ${OPSROOM_ASSETS} ${CMAKE_CURRENT_SOURCE_DIR}/embed_assets.cmake
  COMMENT "Embedding Opsroom assets")
cybersyn_cc_library(NAME opsroom SRCS opsroom.cc ${OPSROOM_ASSETS_CC}
  DEPS cybersyn::proto cybersyn_httplib nlohmann_json::nlohmann_json absl::status
       absl::statusor absl::strings absl::time)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::opsroom)
cybersyn_cc_test(NAME opsroom_test SRCS opsroom_test.cc DEPS cybersyn::opsroom)
# The Backend over the running system (query store + Alerts service).
cybersyn_cc_library(NAME opsroom_system SRCS system_backend.cc
  DEPS cybersyn::opsroom cybersyn::query cybersyn::alerts_service cybersyn::alerter_authz)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::opsroom_system)
# QueryStore + Query service + the Opsroom on its own HTTP address, for `cybersyn alerter`.
cybersyn_cc_library(NAME opsroom_server SRCS opsroom_server.cc
  DEPS cybersyn::opsroom_system cybersyn::opsroom cybersyn::query cybersyn::alerts_service
       cybersyn::observability)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::opsroom_server)
