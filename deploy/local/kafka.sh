#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft) on loopback, for tests and local runs.
#
#   kafka.sh start [--dir DIR] [--port N]   format storage, start, wait until it answers, print bootstrap
#   kafka.sh stop  [--dir DIR]              stop it cleanly (SIGTERM, then SIGKILL after 30 s)
#   kafka.sh status [--dir DIR]             print bootstrap and exit 0 if it answers, else exit 1
#   kafka.sh kill  [--dir DIR]              kill -9 (fault tests)
#   kafka.sh restart [--dir DIR]            stop and start on the same port with the same data
#
# The broker jars come from Maven Central (org.apache.kafka:kafka_2.13, version in kafka/pom.xml)
# and are cached in the user's Maven repository. DIR defaults to ${TMPDIR:-/tmp}/cybersyn-kafka;
# it holds the data, server.log, the pid and a file 'bootstrap' with host:port.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-}; shift || true
dir=${TMPDIR:-/tmp}/cybersyn-kafka
port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kafka.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "kafka.sh: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

answers() {  # metadata request against the broker
  kcat -b "$1" -L -m 3 >/dev/null 2>&1
}

classpath() {
  local cp_file="$dir/classpath"
  if [ ! -s "$cp_file" ]; then
    log "resolving Kafka from Maven Central (cached in ~/.m2 after the first time)"
    mvn -q -B -f "$here/kafka/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2
  fi
  cat "$cp_file"
}

running_pid() {
  [ -f "$dir/pid" ] || return 1
  local pid; pid=$(cat "$dir/pid")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  mkdir -p "$dir"
  if pid=$(running_pid) && answers "$(cat "$dir/bootstrap")"; then
    log "already running (pid $pid)"; cat "$dir/bootstrap"; return 0
  fi
  local cp; cp=$(classpath)
  local version; version=$(tr ':' '\n' <<<"$cp" | sed -n 's#.*/kafka_2\.13-\(.*\)\.jar#\1#p' | head -1)
  echo "$version" >"$dir/version"
  # Reuse the previous port on restart so clients with the old address reconnect.
  if [ -z "$port" ] && [ -f "$dir/bootstrap" ]; then local b; b=$(cat "$dir/bootstrap"); port=${b##*:}; fi
  [ -n "$port" ] || port=$(free_port)
  local cport; cport=$(free_port)
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.flush.interval.messages=9223372036854775807
message.max.bytes=16777216
# Deleted topics' files go after 1 s (default 60): the page cache then drops their dirty pages
# instead of writing them back, which a benchmark that writes GBs would otherwise contend with.
log.segment.delete.delay.ms=1000
PROPS
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$dir")
  if [ ! -f "$dir/data/meta.properties" ]; then
    java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format \
      -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
  fi
  local t0; t0=$(date +%s.%N)
  nohup java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  for _ in $(seq 1 240); do
    if answers "127.0.0.1:$port"; then
      local t1; t1=$(date +%s.%N)
      log "Apache Kafka $version (KRaft) up at 127.0.0.1:$port in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, dir $dir"
      echo "127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "broker exited during start; last lines of $dir/stdout.log and server.log:"
      tail -20 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
  log "broker did not answer within 120 s; see $dir/server.log"; exit 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then log "not running"; return 0; fi
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "stopped"; rm -f "$dir/pid"; return 0; }; sleep 0.5; done
  log "did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; rm -f "$dir/pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  kill) if pid=$(running_pid); then kill -9 "$pid"; rm -f "$dir/pid"; log "killed $pid"; fi ;;
  restart) stop; start ;;
  status)
    if running_pid >/dev/null && answers "$(cat "$dir/bootstrap")"; then cat "$dir/bootstrap"; else echo "not running" >&2; exit 1; fi ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
