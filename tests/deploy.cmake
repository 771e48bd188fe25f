# Checks of the deployment files in deploy/ (label "deploy"): Prometheus rules and their unit
# tests, the compose file, the Kubernetes manifests (offline schemas), metric names, the configs
# the deployments ship, the image's health check. No container engine or cluster is needed; the
# tools are Debian packages (prometheus, prometheus-alertmanager, docker-compose) installed when
# missing, and PyPI's kubernetes-validate in a venv under the build tree.
set(_deploy_check ${PROJECT_SOURCE_DIR}/tests/deploy/check_deploy.sh)
set(_deploy_env "CYBERSYN_DEPLOY_VENV=${PROJECT_BINARY_DIR}/deploy-venv")

foreach(check prometheus compose k8s metrics image)
  add_test(NAME deploy_${check} COMMAND bash ${_deploy_check} ${check})
  set_tests_properties(deploy_${check} PROPERTIES
    LABELS deploy
    TIMEOUT 600
    ENVIRONMENT "${_deploy_env}"
    # apt-get and the venv are installed at most once at a time.
    RESOURCE_LOCK deploy_tools)
endforeach()

add_test(NAME deploy_config COMMAND bash ${_deploy_check} config $<TARGET_FILE:cybersyn>)
set_tests_properties(deploy_config PROPERTIES
  LABELS deploy TIMEOUT 120 ENVIRONMENT "${_deploy_env}" RESOURCE_LOCK deploy_tools)
cybersyn_child_sanitizer_reports(deploy_config)

# A real Prometheus scraping a running pipeline (gateway, aggregator, alerter processes) on the
# real Kafka broker of the CTest fixture; PromQL over its HTTP API. Bounded: 90 s of waiting.
add_test(NAME deploy_prometheus_e2e
  COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/deploy/prometheus_e2e.py --cybersyn $<TARGET_FILE:cybersyn>)
set_tests_properties(deploy_prometheus_e2e PROPERTIES
  LABELS "deploy;kafka" TIMEOUT 240 FIXTURES_REQUIRED kafka_broker
  ENVIRONMENT "CYBERSYN_TEST_KAFKA_DIR=${CYBERSYN_KAFKA_DIR}" RESOURCE_LOCK deploy_tools)
# The pipeline's sanitizer reports (cmake/CybersynSanitizerReports.cmake).
cybersyn_child_sanitizer_reports(deploy_prometheus_e2e)

# grpcurl (a real, independent gRPC client) against `cybersyn demo`: reflection, the health
# service, and "address in use" for a second process on its ports. grpcurl is built from the Go
# module proxy into BUILD/go-bin the first time (tests/deploy/grpc_tools_e2e.py).
add_test(NAME deploy_grpc_tools
  COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/deploy/grpc_tools_e2e.py --cybersyn $<TARGET_FILE:cybersyn>)
set_tests_properties(deploy_grpc_tools PROPERTIES
  LABELS deploy TIMEOUT 600 ENVIRONMENT "CYBERSYN_GO_BIN=${PROJECT_BINARY_DIR}/go-bin"
  RESOURCE_LOCK deploy_tools)
cybersyn_child_sanitizer_reports(deploy_grpc_tools)
