#!/usr/bin/env bash
# Checks of deploy/ run by ctest (label "deploy"; tests/deploy.cmake). No container engine or
# cluster needed. One check per call:
#
#   check_deploy.sh prometheus   promtool check config + check rules + test rules (the rules'
#                                unit tests), a mutated rule must fail its tests, amtool
#                                check-config on the Alertmanager config
#   check_deploy.sh compose      docker-compose config -q (schema + interpolation) and references
#   check_deploy.sh k8s          kubernetes-validate --strict on every core manifest (offline
#                                schemas from PyPI, in a venv under $CYBERSYN_DEPLOY_VENV),
#                                structural checks of the CRDs, cross-references, kustomize build
#                                when kubectl is present
#   check_deploy.sh metrics      rules and dashboard use only exported (or listed) metric names
#   check_deploy.sh config BIN   `cybersyn config check` of the compose and Kubernetes configs
#   check_deploy.sh image        the image's health-check script against a local HTTP server
#
# Tools come from Debian packages, installed when missing (as root): prometheus and
# prometheus-alertmanager (deploy/setup.sh's "prometheus" extra), docker-compose.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
deploy=$root/deploy
venv=${CYBERSYN_DEPLOY_VENV:-${TMPDIR:-/tmp}/cybersyn-deploy-venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "check_deploy: $*"; }
die() { echo "check_deploy: FAIL: $*" >&2; exit 1; }

apt_install() {  # apt_install PACKAGE... (only when a command is missing)
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

need_promtool() {
  if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
    CYBERSYN_SETUP_EXTRAS=prometheus bash "$deploy/setup.sh" >/dev/null
  fi
}

python_with_yaml() {
  for p in "$venv/bin/python" /usr/bin/python3 python3; do
    if [ -x "$(command -v "$p")" ] && "$p" -c 'import yaml' 2>/dev/null; then echo "$p"; return; fi
  done
  need_venv; echo "$venv/bin/python"
}

need_venv() {
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    log "creating $venv with kubernetes-validate (PyPI)"
    /usr/bin/python3 -m venv "$venv" || { apt_install python3-venv && /usr/bin/python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check 'kubernetes-validate==1.37.0'
  fi
}

check_prometheus() {
  need_promtool
  promtool check config "$deploy/prometheus/prometheus.yml"
  promtool check rules "$deploy/prometheus/rules/cybersyn.rules.yml"
  (cd "$deploy/prometheus/rules" && promtool test rules cybersyn.rules.test.yml)
  # The unit tests must be able to fail: loosen one alert and expect promtool to object.
  cp "$deploy/prometheus/rules/"cybersyn.rules*.yml "$work/"
  sed -i 's|/ sum(rate(cybersyn_aggregator_records_total\[5m\])) > 0.01|/ sum(rate(cybersyn_aggregator_records_total[5m])) > 0.5|' "$work/cybersyn.rules.yml"
  cmp -s "$work/cybersyn.rules.yml" "$deploy/prometheus/rules/cybersyn.rules.yml" && die "mutation did not apply"
  if (cd "$work" && promtool test rules cybersyn.rules.test.yml >"$work/mutant.log" 2>&1); then
    die "promtool test rules passed with CybersynDeadLetterRate's threshold raised to 50%"
  fi
  grep -q 'CybersynDeadLetterRate' "$work/mutant.log" || die "the mutant failed for another reason: $(cat "$work/mutant.log")"
  log "a loosened rule fails its unit test, as it should"
  amtool check-config "$deploy/alertmanager/alertmanager.yml"
}

check_compose() {
  command -v docker-compose >/dev/null || apt_install docker-compose
  # Interpolation: the defaults in compose.yaml must be enough (no .env needed).
  (cd "$deploy" && env -u CYBERSYN_TOKEN_PLANNING docker-compose -f compose.yaml config -q)
  (cd "$deploy" && docker-compose -f compose.yaml config --services) >"$work/services"
  for s in kafka-1 kafka-2 kafka-3 topics gateway-1 gateway-2 aggregator-1 aggregator-2 \
           alerter-1 alerter-2 prometheus alertmanager grafana; do
    grep -qx "$s" "$work/services" || die "compose.yaml has no service $s"
  done
  "$(python_with_yaml)" "$here/deploy_checks.py" compose-refs
}

check_k8s() {
  need_venv
  local py=$venv/bin/python core=()
  for f in "$deploy"/k8s/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    if grep -q '^apiVersion: monitoring.coreos.com/' "$f"; then
      log "$(basename "$f"): CRD (no schema in kubernetes-validate); checked structurally below"
    else
      core+=("$f")
    fi
  done
  "$venv/bin/kubernetes-validate" --strict --quiet "${core[@]}"
  "$py" "$here/deploy_checks.py" crds
  "$py" "$here/deploy_checks.py" rules-in-sync
  "$py" "$here/deploy_checks.py" k8s-refs
  if command -v kubectl >/dev/null && kubectl kustomize "$deploy/k8s" >"$work/all.yaml" 2>"$work/kustomize.err"; then
    local n; n=$(grep -c '^kind:' "$work/all.yaml")
    log "kubectl kustomize: $n objects"
  elif command -v kubectl >/dev/null; then
    die "kubectl kustomize deploy/k8s: $(cat "$work/kustomize.err")"
  else
    log "kubectl not installed: kustomize build skipped (kustomization.yaml cross-checked above)"
  fi
}

check_metrics() {
  local py; py=$(python_with_yaml)
  "$py" "$here/deploy_checks.py" metrics
  # The check must be able to fail: a rule on a metric no role exports.
  sed 's/cybersyn_alerter_consumer_lag_messages/cybersyn_alerter_consumer_lag_messagesg/' \
    "$deploy/prometheus/rules/cybersyn.rules.yml" >"$work/rules.yml"
  if CYBERSYN_DEPLOY_RULES=$work/rules.yml "$py" "$here/deploy_checks.py" metrics 2>"$work/metrics.err"; then
    die "metrics: a rule on the unexported cybersyn_alerter_consumer_lag_messagesg passed"
  fi
  grep -q 'cybersyn_alerter_consumer_lag_messagesg: used by rules/dashboard but exported by no role' "$work/metrics.err" ||
    die "metrics: unexpected failure: $(cat "$work/metrics.err")"
  log "a rule on an unexported metric fails the check, as it should"
}

check_config() {
  local bin=${1:?usage: check_deploy.sh config PATH_TO_CYBERSYN}
  export CYBERSYN_TOKEN_PLANNING=t-planning CYBERSYN_TOKEN_TEXTILES=t-textiles CYBERSYN_TOKEN_MINING=t-mining
  "$bin" config check "$deploy/compose/cybersyn.yaml" >/dev/null
  log "deploy/compose/cybersyn.yaml: valid"
  # The ConfigMap's config, with its TLS files (mounted from the Secret in a pod) stood in for.
  "$(python_with_yaml)" "$here/deploy_checks.py" k8s-config "$work/k8s.yaml" >/dev/null
  mkdir -p "$work/tls" && for f in tls.crt tls.key ca.crt; do echo stand-in >"$work/tls/$f"; done
  sed -i "s|/etc/cybersyn/tls/|$work/tls/|g" "$work/k8s.yaml"
  "$bin" config check "$work/k8s.yaml" >/dev/null
  log "deploy/k8s/configmap.yaml cybersyn.yaml: valid"
  # --gateway-id (compose and Kubernetes give every gateway its own): a bad id is refused before
  # anything connects, naming the flag.
  if "$bin" gateway --config "$deploy/compose/cybersyn.yaml" --gateway-id 'bad id' \
      --input csv:/dev/null >"$work/gw.out" 2>&1; then
    die "cybersyn gateway accepted --gateway-id 'bad id'"
  fi
  grep -q -- '--gateway-id: must match' "$work/gw.out" || die "unclear --gateway-id error: $(cat "$work/gw.out")"
  if CYBERSYN_GATEWAY_ID='bad/id' "$bin" gateway --config "$deploy/compose/cybersyn.yaml" \
      --input csv:/dev/null >"$work/gw.out" 2>&1; then
    die "cybersyn gateway accepted CYBERSYN_GATEWAY_ID='bad/id'"
  fi
  log "cybersyn gateway checks --gateway-id / CYBERSYN_GATEWAY_ID"
  # Kafka keys correctness depends on are refused by `config check` and at a role's start, naming
  # the key; a tuning key in kafka.producer is accepted.
  sed 's|^kafka:|kafka:\n  producer: {acks: "1", linger.ms: "10"}|' "$deploy/compose/cybersyn.yaml" >"$work/acks.yaml"
  grep -q 'acks: "1"' "$work/acks.yaml" || die "could not add kafka.producer to the compose config"
  if "$bin" config check "$work/acks.yaml" >"$work/acks.out" 2>&1; then
    die "cybersyn config check accepted kafka.producer.acks"
  fi
  grep -q 'kafka.producer.acks: is set by Cybersyn and cannot be configured' "$work/acks.out" ||
    die "unclear kafka.producer.acks error: $(cat "$work/acks.out")"
  grep -q 'linger.ms' "$work/acks.out" && die "kafka.producer.linger.ms was refused: $(cat "$work/acks.out")"
  if "$bin" gateway --config "$work/acks.yaml" --input csv:/dev/null >"$work/gw.out" 2>&1; then
    die "cybersyn gateway started with kafka.producer.acks set"
  fi
  grep -q 'kafka.producer.acks' "$work/gw.out" || die "the gateway did not name kafka.producer.acks: $(cat "$work/gw.out")"
  log "kafka.producer.acks refused by config check and the gateway; kafka.producer.linger.ms accepted"
}

check_image() {
  # The HEALTHCHECK script against a server that answers 200 on /healthz and 503 on /readyz.
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 - "$port" >"$work/server.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 503); self.end_headers(); self.wfile.write(b"x")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
  local pid=$!
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local rc=0
  CYBERSYN_HEALTH_PORT=$port bash "$deploy/healthcheck.sh" /healthz || rc=1
  if CYBERSYN_HEALTH_PORT=$port bash "$deploy/healthcheck.sh" /readyz 2>/dev/null; then rc=2; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ $rc -eq 0 ] || die "healthcheck.sh: 200 must pass and 503 must fail (rc $rc)"
  if CYBERSYN_HEALTH_PORT=$port bash "$deploy/healthcheck.sh" /healthz 2>/dev/null; then
    die "healthcheck.sh passed with nothing listening"
  fi
  # The Dockerfile copies what exists and installs packages Debian 12 has.
  grep -oE '^COPY (--from=[a-z]+ )?[^ ]+' "$deploy/Dockerfile" | awk '$2 !~ /^--from/ {print $2}' |
    while read -r src; do [ "$src" = . ] || [ -e "$root/$src" ] || die "Dockerfile copies missing $src"; done
  if command -v apt-cache >/dev/null; then
    local pkgs; pkgs=$(sed -n '/^FROM debian:12-slim/,$p' "$deploy/Dockerfile" | sed -n '/apt-get install/,/rm -rf/p' |
      sed 's/#.*//' | grep -oE '(^|[[:space:]])(lib[a-z0-9.+-]+|ca-certificates)' | sort -u)
    # One call (apt-cache is slow); it exits 0 if any package is found, so compare the names.
    # shellcheck disable=SC2086
    apt-cache show --no-all-versions $pkgs 2>/dev/null | sed -n 's/^Package: //p' | sort -u >"$work/found"
    local missing; missing=$(echo "$pkgs" | tr ' ' '\n' | sort -u | comm -23 - "$work/found")
    [ -z "$missing" ] || die "Dockerfile: no Debian 12 package(s) $missing (or no apt-get update yet)"
    log "runtime packages exist: $(echo $pkgs | wc -w)"
  fi
  log "healthcheck.sh and Dockerfile references: ok"
}

case "${1:-}" in
  prometheus) check_prometheus ;;
  compose) check_compose ;;
  k8s) check_k8s ;;
  metrics) check_metrics ;;
  config) shift; check_config "$@" ;;
  image) check_image ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
log "$1: ok"
