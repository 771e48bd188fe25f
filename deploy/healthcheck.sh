#!/bin/bash
# cybersyn-healthcheck [PATH]: exit 0 if http://127.0.0.1:$CYBERSYN_HEALTH_PORT/PATH answers 200.
# The image's HEALTHCHECK; plain bash (/dev/tcp), so the runtime image needs no curl.
path=${1:-/healthz}
port=${CYBERSYN_HEALTH_PORT:-9464}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
  "HTTP/1."[01]" 200"*) exit 0 ;;
  *) echo "health: $status" >&2; exit 1 ;;
esac
