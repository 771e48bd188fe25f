#!/bin/sh
# cybersyn-gateway ARGS...: `cybersyn gateway --config $CYBERSYN_CONFIG ARGS...` with gateway.id
# replaced by $CYBERSYN_GATEWAY_ID when that is set.
#
# Every running gateway needs its own id: the aggregator deduplicates on (gateway id, sequence),
# so two gateways sharing an id would drop each other's records as duplicates. The config file
# is shared by all roles (one ConfigMap / one mounted file), so containers set the id from their
# name (compose: the service; Kubernetes: the pod name) and this script writes a private copy of
# the config with that id. Paths inside the config (token_file, TLS files) must be absolute,
# because the copy lives in another directory.
set -eu
config=${CYBERSYN_CONFIG:-/etc/cybersyn/cybersyn.yaml}
if [ -n "${CYBERSYN_GATEWAY_ID:-}" ]; then
  case "$CYBERSYN_GATEWAY_ID" in
    *[!a-zA-Z0-9._-]*) echo "cybersyn-gateway: CYBERSYN_GATEWAY_ID must match [a-zA-Z0-9._-]+" >&2; exit 2 ;;
  esac
  out=${TMPDIR:-/tmp}/cybersyn-gateway-$$.yaml
  # Replace (or add) `id:` directly under the top-level `gateway:` key; leave everything else.
  awk -v id="$CYBERSYN_GATEWAY_ID" '
    /^[^ #]/ { if (in_gw && !done) { print "  id: " id; done = 1 } in_gw = ($0 ~ /^gateway:[ \t]*(#.*)?$/) }
    in_gw && /^  id:/ { print "  id: " id; done = 1; next }
    { print }
    END { if (!done) { if (!in_gw) print "gateway:"; print "  id: " id } }
  ' "$config" >"$out"
  config=$out
fi
exec cybersyn gateway --config "$config" "$@"
