#!/usr/bin/env bash
# A real Apache Kafka 4.x on loopback (KRaft), for tests and local runs: one broker (the default,
# which the test fixture, the soak and the benches use) or a cluster of combined
# broker+controller nodes with a controller quorum, replication 3 and min.insync.replicas=2 as in
# production (deploy/compose.yaml).
#
#   kafka.sh start [--dir DIR] [--port N]   format storage, start, wait until it answers, print bootstrap
#   kafka.sh start --brokers 3 [--dir DIR] [--advertise N=HOST:PORT]...
#                                           a cluster; prints the bootstrap list host:port,host:port,...
#   kafka.sh stop    [N] [--dir DIR]        stop cleanly (SIGTERM, then SIGKILL after 30 s): all, or node N
#   kafka.sh kill    [N] [--dir DIR]        kill -9 (fault tests): all, or node N
#   kafka.sh start   N [--dir DIR] [--advertise HOST:PORT]   start node N of a cluster again (same data)
#   kafka.sh restart [N] [--dir DIR]        stop and start on the same ports with the same data
#   kafka.sh pause N / resume N [--dir DIR] SIGSTOP / SIGCONT node N (a broker alive but not answering)
#   kafka.sh status  [N] [--dir DIR]        print the bootstrap (and one line per node); exit 0 only if
#                                           every node asked about answers
#   kafka.sh leader TOPIC [PARTITION] [--dir DIR]   print the node id leading a partition (default 0)
#
# --advertise N=HOST:PORT makes node N advertise HOST:PORT to clients instead of its own client
# port, so a test can put a proxy in front of it (tests/cluster/fault_proxy.py). Replication and the
# controllers never use the advertised address. DIR/bootstrap_internal lists the brokers' own
# (inter-broker) listeners, which always advertise themselves: clients that must bypass the
# proxies (a test's checker) bootstrap there.
#
# The broker jars come from Maven Central (org.apache.kafka:kafka_2.13, version in kafka/pom.xml)
# and are cached in the user's Maven repository. DIR defaults to ${TMPDIR:-/tmp}/cybersyn-kafka.
# One broker: DIR holds the data, server.log, the pid and 'bootstrap' (host:port). A cluster: DIR
# holds 'brokers' (the count), 'bootstrap' (what clients use) and one directory per node, DIR/1 ...
# DIR/N, laid out like a single broker's. Heap: $KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g for one
# broker, -Xms128m -Xmx512m per node of a cluster).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; }
cmd=${1:-}; shift || true
dir=${TMPDIR:-/tmp}/cybersyn-kafka
port=""
brokers=""
node=""
topic=""
partition=0
declare -A advertise=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --brokers) brokers=$2; shift 2 ;;
    --advertise)
      case "$2" in
        *=*) advertise[${2%%=*}]=${2#*=} ;;
        *) advertise[_]=$2 ;;  # with `start N`
      esac
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "kafka.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *)
      if [ "$cmd" = leader ] && [ -z "$topic" ]; then topic=$1
      elif [ "$cmd" = leader ]; then partition=$1
      elif [ -z "$node" ]; then node=$1
      else echo "kafka.sh: unexpected argument '$1' (see --help)" >&2; exit 2; fi
      shift ;;
  esac
done

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 2; }

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

is_cluster() { [ -f "$dir/brokers" ]; }
node_count() { if is_cluster; then cat "$dir/brokers"; else echo 1; fi; }
node_dir() { if is_cluster; then echo "$dir/$1"; else echo "$dir"; fi; }

running_pid() {  # node dir
  [ -f "$1/pid" ] || return 1
  local pid; pid=$(cat "$1/pid")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

java_opts() {  # node dir
  local heap=${KAFKA_HEAP_OPTS:-}
  if [ -z "$heap" ]; then if is_cluster; then heap="-Xms128m -Xmx512m"; else heap="-Xms256m -Xmx1g"; fi; fi
  # shellcheck disable=SC2206
  local opts=($heap -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$1")
  echo "${opts[@]}"
}

# Settings every node shares; replication as in production when there are 3 or more.
common_properties() {  # replication, min isr
  cat <<PROPS
num.partitions=4
default.replication.factor=$1
min.insync.replicas=$2
offsets.topic.replication.factor=$1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$1
transaction.state.log.min.isr=$2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$1
share.coordinator.state.topic.min.isr=$2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.flush.interval.messages=9223372036854775807
message.max.bytes=16777216
# Deleted topics' files go after 1 s (default 60): the page cache then drops their dirty pages
# instead of writing them back, which a benchmark that writes GBs would otherwise contend with.
log.segment.delete.delay.ms=1000
PROPS
}

# A cluster node's server.properties from its ports file (client internal controller) and the
# voters; the client listener advertises DIR/N/advertise when present.
write_node_properties() {  # n
  local n=$1 nd; nd=$(node_dir "$1")
  local client internal controller; read -r client internal controller <"$nd/ports"
  local adv="127.0.0.1:$client"
  [ -s "$nd/advertise" ] && adv=$(cat "$nd/advertise")
  {
    echo "process.roles=broker,controller"
    echo "node.id=$n"
    echo "controller.quorum.voters=$(cat "$dir/voters")"
    echo "listeners=CLIENT://127.0.0.1:$client,INTERNAL://127.0.0.1:$internal,CONTROLLER://127.0.0.1:$controller"
    echo "advertised.listeners=CLIENT://$adv,INTERNAL://127.0.0.1:$internal"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=INTERNAL"
    echo "listener.security.protocol.map=CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$nd/data"
    # A node that was down catches up and takes its partitions back; faster than the defaults so
    # fault tests see leadership return within seconds.
    echo "leader.imbalance.check.interval.seconds=10"
    echo "replica.lag.time.max.ms=10000"
    common_properties 3 2
  } >"$nd/server.properties"
}

write_single_properties() {  # client port
  local cport; cport=$(free_port)
  {
    echo "process.roles=broker,controller"
    echo "node.id=1"
    echo "controller.quorum.voters=1@127.0.0.1:$cport"
    echo "listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$cport"
    echo "advertised.listeners=PLAINTEXT://127.0.0.1:$1"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$dir/data"
    common_properties 1 1
  } >"$dir/server.properties"
}

format_node() {  # node dir, cluster id
  local cp; cp=$(classpath)
  [ -f "$1/data/meta.properties" ] && return 0
  mkdir -p "$1/data"
  # shellcheck disable=SC2046
  java $(java_opts "$1") -cp "$cp" kafka.tools.StorageTool format -t "$2" \
    -c "$1/server.properties" >"$1/format.log" 2>&1 || { cat "$1/format.log" >&2; exit 1; }
}

launch_node() {  # node dir
  local cp; cp=$(classpath)
  # shellcheck disable=SC2046
  nohup java $(java_opts "$1") -cp "$cp" kafka.Kafka "$1/server.properties" \
    >"$1/stdout.log" 2>&1 </dev/null &
  echo $! >"$1/pid"
}

# Waits until `bootstrap` answers with `want` brokers in its metadata; node dirs to watch for an
# early exit follow.
wait_up() {  # bootstrap want nodedir...
  local bootstrap=$1 want=$2; shift 2
  for _ in $(seq 1 360); do
    if kcat -b "$bootstrap" -L -m 3 2>/dev/null | grep -q "^ *$want brokers:"; then return 0; fi
    local nd
    for nd in "$@"; do
      if ! kill -0 "$(cat "$nd/pid")" 2>/dev/null; then
        log "broker exited during start; last lines of $nd/stdout.log and server.log:"
        tail -20 "$nd/stdout.log" "$nd/server.log" >&2 2>/dev/null || true
        exit 1
      fi
    done
    sleep 0.5
  done
  log "no answer with $want brokers from $bootstrap within 180 s; see server.log in $*"; exit 1
}

kafka_version() {
  tr ':' '\n' <<<"$(classpath)" | sed -n 's#.*/kafka_2\.13-\(.*\)\.jar#\1#p' | head -1
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

start_single() {
  mkdir -p "$dir"
  if pid=$(running_pid "$dir") && answers "$(cat "$dir/bootstrap")"; then
    log "already running (pid $pid)"; cat "$dir/bootstrap"; return 0
  fi
  local version; version=$(kafka_version); echo "$version" >"$dir/version"
  # Reuse the previous port on restart so clients with the old address reconnect.
  if [ -z "$port" ] && [ -f "$dir/bootstrap" ]; then local b; b=$(cat "$dir/bootstrap"); port=${b##*:}; fi
  [ -n "$port" ] || port=$(free_port)
  write_single_properties "$port"
  format_node "$dir" "$(java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>/dev/null)"
  local t0; t0=$(date +%s.%N)
  launch_node "$dir"
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  wait_up "127.0.0.1:$port" 1 "$dir"
  log "Apache Kafka $version (KRaft) up at 127.0.0.1:$port in $(elapsed "$t0") s, dir $dir"
  cat "$dir/bootstrap"
}

# Lays out a new cluster: ports, voters, properties, one cluster id, formatted stores.
create_cluster() {
  [[ "$brokers" =~ ^[0-9]+$ ]] && [ "$brokers" -ge 1 ] && [ "$brokers" -le 9 ] ||
    die "--brokers takes 1..9, got '$brokers'"
  [ -n "$port" ] && die "--port is for a single broker; a cluster picks free ports"
  mkdir -p "$dir"
  if [ -f "$dir/data/meta.properties" ]; then die "$dir holds a single broker; use another --dir"; fi
  echo "$brokers" >"$dir/brokers"
  local n voters=""
  for n in $(seq 1 "$brokers"); do
    mkdir -p "$dir/$n"
    echo "$(free_port) $(free_port) $(free_port)" >"$dir/$n/ports"
    local controller; controller=$(awk '{print $3}' "$dir/$n/ports")
    voters+="${voters:+,}$n@127.0.0.1:$controller"
  done
  echo "$voters" >"$dir/voters"
  local id; id=$(java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>/dev/null)
  for n in $(seq 1 "$brokers"); do
    [ -n "${advertise[$n]:-}" ] && echo "${advertise[$n]}" >"$dir/$n/advertise"
    write_node_properties "$n"
    format_node "$dir/$n" "$id"
  done
}

write_bootstraps() {
  local n nd client internal all="" direct="" inner=""
  for n in $(seq 1 "$(node_count)"); do
    nd=$(node_dir "$n"); read -r client internal _ <"$nd/ports"
    echo "127.0.0.1:$client" >"$nd/bootstrap"
    direct+="${direct:+,}127.0.0.1:$client"
    inner+="${inner:+,}127.0.0.1:$internal"
    all+="${all:+,}$(if [ -s "$nd/advertise" ]; then cat "$nd/advertise"; else echo "127.0.0.1:$client"; fi)"
  done
  echo "$all" >"$dir/bootstrap"
  echo "$direct" >"$dir/bootstrap_direct"
  echo "$inner" >"$dir/bootstrap_internal"
}

start_cluster() {
  if [ -f "$dir/brokers" ] && [ "$(cat "$dir/brokers")" != "$brokers" ]; then
    die "$dir holds a cluster of $(cat "$dir/brokers"); stop it and use another --dir"
  fi
  [ -f "$dir/brokers" ] || create_cluster
  kafka_version >"$dir/version"
  write_bootstraps
  local t0 n dirs=(); t0=$(date +%s.%N)
  for n in $(seq 1 "$brokers"); do
    dirs+=("$dir/$n")
    running_pid "$dir/$n" >/dev/null || launch_node "$dir/$n"
  done
  # Every node sees all of them (the quorum formed and every broker registered).
  for n in $(seq 1 "$brokers"); do wait_up "$(cat "$dir/$n/bootstrap")" "$brokers" "${dirs[@]}"; done
  log "Apache Kafka $(cat "$dir/version") (KRaft), $brokers brokers up in $(elapsed "$t0") s, dir $dir"
  cat "$dir/bootstrap"
}

check_node() {
  is_cluster || die "node numbers are for a cluster (start --brokers N); $dir holds one broker"
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$(node_count)" ] ||
    die "no node '$1' in $dir (1..$(node_count))"
}

start_node() {  # n
  check_node "$1"
  local nd; nd=$(node_dir "$1")
  if [ -n "${advertise[_]:-}" ]; then echo "${advertise[_]}" >"$nd/advertise"; write_node_properties "$1"; write_bootstraps; fi
  if running_pid "$nd" >/dev/null; then log "node $1 already running"; cat "$nd/bootstrap"; return 0; fi
  local t0; t0=$(date +%s.%N)
  launch_node "$nd"
  # It answers once it registered; the others may be down, so only its own answer counts.
  for _ in $(seq 1 360); do
    if answers "$(cat "$nd/bootstrap")"; then
      log "node $1 up at $(cat "$nd/bootstrap") in $(elapsed "$t0") s"; cat "$nd/bootstrap"; return 0
    fi
    kill -0 "$(cat "$nd/pid")" 2>/dev/null || { tail -20 "$nd/server.log" >&2 2>/dev/null; die "node $1 exited during start"; }
    sleep 0.5
  done
  die "node $1 did not answer within 180 s; see $nd/server.log"
}

stop_node() {  # node dir, label
  local pid
  if ! pid=$(running_pid "$1"); then log "$2 not running"; return 0; fi
  kill -CONT "$pid" 2>/dev/null || true  # a paused JVM cannot act on SIGTERM
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "$2 stopped"; rm -f "$1/pid"; return 0; }; sleep 0.5; done
  log "$2 did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; rm -f "$1/pid"
}

kill_node() {  # node dir, label
  local pid
  if pid=$(running_pid "$1"); then kill -9 "$pid"; rm -f "$1/pid"; log "$2 killed (pid $pid)"; fi
}

signal_node() {  # n, SIGSTOP|SIGCONT
  check_node "$1"
  local pid; pid=$(running_pid "$(node_dir "$1")") || die "node $1 is not running"
  kill -"$2" "$pid"; log "node $1 (pid $pid): $2"
}

# The nodes a command acts on: N, or all of them.
nodes() { if [ -n "$node" ]; then check_node "$node"; echo "$node"; else seq 1 "$(node_count)"; fi; }

for_nodes() {  # fn: calls fn NODEDIR LABEL for each node asked about; a cluster stops all at once
  local fn=$1 n pids=()
  if ! is_cluster; then "$fn" "$dir" "broker"; return; fi
  for n in $(nodes); do "$fn" "$(node_dir "$n")" "node $n" & pids+=($!); done
  local p; for p in "${pids[@]}"; do wait "$p"; done
}

status() {
  if ! is_cluster; then
    if running_pid "$dir" >/dev/null && answers "$(cat "$dir/bootstrap")"; then cat "$dir/bootstrap"; return 0; fi
    echo "not running" >&2; return 1
  fi
  local n nd pid state ok=0
  [ -z "$node" ] && cat "$dir/bootstrap"
  for n in $(nodes); do
    nd=$(node_dir "$n")
    if ! pid=$(running_pid "$nd"); then state="stopped"; ok=1
    elif [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = T ]; then state="paused (pid $pid)"; ok=1
    elif answers "$(cat "$nd/bootstrap")"; then state="running (pid $pid)"
    else state="not answering (pid $pid)"; ok=1; fi
    local adv=""; [ -s "$nd/advertise" ] && adv=" advertised as $(cat "$nd/advertise")"
    echo "node $n $(cat "$nd/bootstrap")$adv: $state"
  done
  return $ok
}

# The leader of TOPIC[PARTITION], asked of any node that answers (directly, not via a proxy).
leader() {
  [ -n "$topic" ] || die "leader needs a topic"
  local b; b=$(cat "$dir/bootstrap_internal" 2>/dev/null || cat "$dir/bootstrap")
  local out; out=$(kcat -b "$b" -L -t "$topic" -m 5 2>/dev/null) || die "no metadata for $topic from $b"
  local id; id=$(awk -v p="$partition" '$1=="partition" && $2==p"," {for (i=3;i<=NF;i++) if ($i=="leader") {sub(",","",$(i+1)); print $(i+1)}}' <<<"$out")
  [ -n "$id" ] || die "no partition $partition of $topic in the metadata"
  [ "$id" != "-1" ] || die "$topic[$partition] has no leader right now"
  echo "$id"
}

case "$cmd" in
  start)
    if [ -n "$node" ]; then start_node "$node"
    elif [ -n "$brokers" ] && [ "$brokers" != 1 ]; then start_cluster
    elif is_cluster; then brokers=$(node_count); start_cluster
    else start_single; fi ;;
  stop) for_nodes stop_node ;;
  kill) for_nodes kill_node ;;
  restart)
    for_nodes stop_node
    if [ -n "$node" ]; then start_node "$node"; elif is_cluster; then brokers=$(node_count); start_cluster; else start_single; fi ;;
  pause) [ -n "$node" ] || die "pause needs a node number"; signal_node "$node" STOP ;;
  resume) [ -n "$node" ] || die "resume needs a node number"; signal_node "$node" CONT ;;
  status) status ;;
  leader) leader ;;
  *) usage >&2; exit 2 ;;
esac
