#!/usr/bin/env bash
# Real Redis + real Kafka for tests and local development, no Docker needed.
#
#   scripts/services.sh up       start what is missing, wait until it answers
#   scripts/services.sh down     stop what `up` started (never external services)
#   scripts/services.sh status   show what is running / reachable
#   scripts/services.sh env      print `export REDIS_URL=... KAFKA_BROKERS=... REDIS_CLUSTER_NODES=...`
#   scripts/services.sh cluster-node-restart PORT   start a dead node of the local Redis Cluster again
#
# REDIS_URL / KAFKA_BROKERS / REDIS_CLUSTER_NODES already set -> that service is
# external: only checked, never started or stopped. Otherwise:
#   Redis: Debian's redis-server (apt-installed if missing), 127.0.0.1, no persistence.
#   Redis Cluster: 3 masters + 3 replicas of the same redis-server with
#          --cluster-enabled yes, joined by `redis-cli --cluster create
#          --cluster-replicas 1`, state in .services/redis-cluster/ (fresh on
#          every `up`); a separate thing from the single-node Redis above.
#   Kafka: Apache Kafka $KAFKA_VERSION single-node KRaft (broker+controller) on
#          Java 17+, jars fetched once from Maven Central via scripts/kafka/pom.xml
#          and cached in ${XDG_CACHE_HOME:-~/.cache}/bondx/kafka-<version>/.
# All state (pids, logs, data) lives in .services/ (gitignored); Kafka's data
# dir is wiped on every `up`, so each run starts from an empty cluster.
#
# Tunables (env): KAFKA_VERSION (4.4.0), BONDX_REDIS_PORT (6390),
# BONDX_REDIS_CLUSTER_PORT (7101: first of 6 consecutive ports, bus = port+10000),
# BONDX_KAFKA_PORT (9092), BONDX_KAFKA_CONTROLLER_PORT (9093),
# BONDX_KAFKA_HEAP (512m), BONDX_KAFKA_TIMEOUT (120 s to become ready).
# A busy port is skipped (next free one is used); `env` reports the real one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="$ROOT/.services"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/bondx"
KAFKA_LIB="$CACHE_ROOT/kafka-$KAFKA_VERSION/lib"
KAFKA_TIMEOUT="${BONDX_KAFKA_TIMEOUT:-120}"
REDIS_DIR="$SVC/redis"
CLUSTER_DIR="$SVC/redis-cluster"
CLUSTER_SIZE=6
KAFKA_DIR="$SVC/kafka"

log() { echo "[services] $*" >&2; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# Run a slow command with its output in a log file, printing "msg… Ns" every
# 5 s so CI logs show it is alive. On failure, show the log's tail.
run_with_progress() {
  local msg="$1" logfile="$2"; shift 2
  local start=$SECONDS next=5
  "$@" >"$logfile" 2>&1 </dev/null &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - start >= next )); then log "$msg… $((SECONDS - start))s"; next=$((next + 5)); fi
  done
  if ! wait "$pid"; then
    tail -n 30 "$logfile" >&2 || true
    return 1
  fi
  log "$msg: done in $((SECONDS - start))s"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# First free port at or above $1 (keeps the usual port when it is free, but a
# stray process on it does not make the whole run fail).
free_port() {
  local p="$1" last=$(( $1 + 50 ))
  while (( p <= last )); do
    port_busy "$p" || { echo "$p"; return 0; }
    p=$((p + 1))
  done
  die "no free port in $1..$last"
}

# True if the pid in $1 is alive and its command line contains $2 (guards
# against killing an unrelated process that reused a stale pid).
pid_alive() {
  local pidfile="$1" pattern="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

stop_pid() {
  local name="$1" pidfile="$2" pattern="$3" pid i
  if pid_alive "$pidfile" "$pattern"; then
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15s, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  command -v apt-get >/dev/null || die "$* not installed and apt-get not available; install it manually"
  # Wait for (not fail on) a concurrent apt/dpkg run holding the lock.
  local -a lock=(-o DPkg::Lock::Timeout=300)
  run_with_progress "apt-get update" "$SVC/apt.log" as_root apt-get "${lock[@]}" update -qq \
    || die "apt-get update failed (see $SVC/apt.log)"
  run_with_progress "installing $*" "$SVC/apt.log" \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "$@" \
    || die "apt-get install $* failed (see $SVC/apt.log)"
}

probe() { node "$ROOT/scripts/probe-services.mjs" "$@"; }

# ---------------------------------------------------------------- Redis

redis_url_local() { echo "redis://127.0.0.1:$(cat "$REDIS_DIR/port")"; }

redis_up() {
  if [[ -n "${REDIS_URL:-}" ]]; then
    log "Redis: using external REDIS_URL=$REDIS_URL"
    probe redis "$REDIS_URL" 15 || die "external Redis at REDIS_URL=$REDIS_URL does not answer PING"
    return 0
  fi
  if pid_alive "$REDIS_DIR/redis.pid" redis-server; then
    log "Redis: already running on $(redis_url_local)"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server still not on PATH after install"

  mkdir -p "$REDIS_DIR"
  local port; port="$(free_port "${BONDX_REDIS_PORT:-6390}")"
  echo "$port" >"$REDIS_DIR/port"
  log "Redis: starting redis-server on 127.0.0.1:$port"
  # --daemonize makes redis write its own pid file once it is really up.
  # No RDB/AOF: test data is throwaway and persistence only costs time.
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log" </dev/null >/dev/null \
    || die "redis-server failed to start (see $REDIS_DIR/redis.log)"
  STARTED+=(redis)
  local i
  for ((i = 0; i < 100; i++)); do
    [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]] && { log "Redis: ready"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
  die "Redis on port $port did not answer PING within 10s"
}

redis_down() { stop_pid Redis "$REDIS_DIR/redis.pid" redis-server; }

# ---------------------------------------------------------------- Redis Cluster

cluster_ports() { cat "$CLUSTER_DIR/ports" 2>/dev/null; }
cluster_nodes_local() { cluster_ports | sed 's/^/127.0.0.1:/' | paste -sd, -; }

# Every node's redis-server alive (the pid files redis wrote itself).
cluster_alive() {
  local port n=0
  [[ -f "$CLUSTER_DIR/ports" ]] || return 1
  for port in $(cluster_ports); do
    pid_alive "$CLUSTER_DIR/$port/redis.pid" redis-server || return 1
    n=$((n + 1))
  done
  (( n == CLUSTER_SIZE ))
}

# cluster_state:ok on every node: all 16384 slots served, and every node agrees.
cluster_ok() {
  local port
  for port in $(cluster_ports); do
    redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

# $CLUSTER_SIZE consecutive ports at or above $1 whose cluster bus ports (+10000) are free too.
cluster_free_ports() {
  local base="$1" last=$(( $1 + 100 )) p ok
  while (( base <= last )); do
    ok=1
    for ((p = base; p < base + CLUSTER_SIZE; p++)); do
      if port_busy "$p" || port_busy $((p + 10000)); then ok=0; base=$((p + 1)); break; fi
    done
    (( ok )) && { seq "$base" $((base + CLUSTER_SIZE - 1)); return 0; }
  done
  die "no $CLUSTER_SIZE free consecutive ports for the Redis Cluster in $1..$last"
}

# One cluster node's redis-server, daemonized; its nodes.conf (in its dir) keeps its identity across restarts.
cluster_node_start() {
  local port="$1"
  mkdir -p "$CLUSTER_DIR/$port"
  # Short node timeout: a killed master is failed over in ~2 s (the failover test relies on it).
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --dir "$CLUSTER_DIR/$port" --daemonize yes --pidfile "$CLUSTER_DIR/$port/redis.pid" \
    --logfile "$CLUSTER_DIR/$port/redis.log" </dev/null >/dev/null \
    || die "redis-server on port $port failed to start (see $CLUSTER_DIR/$port/redis.log)"
}

cluster_node_wait() {
  local port="$1" i
  for ((i = 0; i < 100; i++)); do
    [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]] && return 0
    sleep 0.1
  done
  die "Redis Cluster node $port did not answer PING within 10s"
}

# Starts again one node of the local cluster that died (the failover test SIGKILLs a master): it rejoins
# with its old identity, as a replica of whoever took its slots over, and resyncs from it.
cmd_cluster_node_restart() {
  local port="${1:-}"
  [[ -n "$port" ]] && cluster_ports | grep -qx "$port" || die "usage: $0 cluster-node-restart PORT (one of: $(cluster_ports | paste -sd' ' -))"
  if pid_alive "$CLUSTER_DIR/$port/redis.pid" redis-server; then
    log "Redis Cluster node $port: already running"
    return 0
  fi
  rm -f "$CLUSTER_DIR/$port/redis.pid"
  log "Redis Cluster node $port: starting again"
  cluster_node_start "$port"
  cluster_node_wait "$port"
}

redis_cluster_up() {
  if [[ -n "${REDIS_CLUSTER_NODES:-}" ]]; then
    log "Redis Cluster: using external REDIS_CLUSTER_NODES=$REDIS_CLUSTER_NODES"
    return 0
  fi
  if cluster_alive && cluster_ok; then
    log "Redis Cluster: already running on $(cluster_nodes_local)"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  redis_cluster_down # whatever is left of a broken one
  mkdir -p "$CLUSTER_DIR"
  cluster_free_ports "${BONDX_REDIS_CLUSTER_PORT:-7101}" >"$CLUSTER_DIR/ports"
  log "Redis Cluster: starting $CLUSTER_SIZE redis-server nodes on $(cluster_nodes_local)"
  STARTED+=(redis_cluster)
  local port i
  for port in $(cluster_ports); do cluster_node_start "$port"; done
  for port in $(cluster_ports); do cluster_node_wait "$port"; done
  log "Redis Cluster: joining (redis-cli --cluster create, 1 replica per master)"
  # shellcheck disable=SC2046
  redis-cli --cluster create $(cluster_ports | sed 's/^/127.0.0.1:/') --cluster-replicas 1 --cluster-yes \
    >"$CLUSTER_DIR/create.log" 2>&1 </dev/null \
    || { tail -n 20 "$CLUSTER_DIR/create.log" >&2; die "redis-cli --cluster create failed"; }
  for ((i = 0; i < 300; i++)); do
    cluster_ok && { log "Redis Cluster: ready (cluster_state:ok on all nodes)"; return 0; }
    (( i % 50 == 49 )) && log "Redis Cluster: waiting for cluster_state:ok… $(( (i + 1) / 10 ))s"
    sleep 0.1
  done
  die "Redis Cluster did not reach cluster_state:ok within 30s"
}

redis_cluster_down() {
  local port
  [[ -f "$CLUSTER_DIR/ports" ]] || return 0
  for port in $(cluster_ports); do stop_pid "Redis Cluster node $port" "$CLUSTER_DIR/$port/redis.pid" redis-server; done
  rm -rf "$CLUSTER_DIR"
}

# ---------------------------------------------------------------- Kafka

kafka_brokers_local() { echo "127.0.0.1:$(cat "$KAFKA_DIR/port")"; }

ensure_java() {
  if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
  local v major
  v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${v%%.*}"
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, found '$v' ($(command -v java))"
}

# Download kafka_2.13 and its runtime deps once; later runs start from the cache.
ensure_kafka_jars() {
  if [[ -f "$KAFKA_LIB/.complete" ]]; then
    log "Kafka: using cached jars in $KAFKA_LIB"
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  mkdir -p "$CACHE_ROOT"
  local tmp; tmp="$(mktemp -d "$CACHE_ROOT/.kafka-$KAFKA_VERSION.XXXXXX")"
  log "Kafka: downloading Apache Kafka $KAFKA_VERSION jars from Maven Central (one time, ~45 MB)"
  if ! run_with_progress "downloading Kafka jars" "$SVC/mvn.log" \
      mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib"; then
    rm -rf "$tmp"
    die "could not fetch Kafka $KAFKA_VERSION from Maven Central (see $SVC/mvn.log)"
  fi
  ls "$tmp/lib"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "Maven did not deliver kafka_2.13-$KAFKA_VERSION.jar"; }
  # Publish atomically so an interrupted download is never mistaken for a cache hit.
  touch "$tmp/lib/.complete"
  rm -rf "$KAFKA_LIB"
  mkdir -p "$(dirname "$KAFKA_LIB")"
  mv "$tmp/lib" "$KAFKA_LIB"
  rm -rf "$tmp"
}

write_kafka_config() {
  local port="$1" cport="$2"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by scripts/services.sh: single-node KRaft for tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
# one node: every internal topic must live with replication factor 1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# fewer internal partitions = faster first consumer group / transaction
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
# fast tests: no rebalance grace period, topics appear on first use
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.partitions=6
# 2-core machine
num.network.threads=2
num.io.threads=4
EOF
}

kafka_up() {
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    log "Kafka: using external KAFKA_BROKERS=$KAFKA_BROKERS"
    probe kafka "$KAFKA_BROKERS" 30 || die "external Kafka at KAFKA_BROKERS=$KAFKA_BROKERS does not answer"
    return 0
  fi
  if pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then
    log "Kafka: already running on $(kafka_brokers_local)"
    return 0
  fi
  ensure_java
  ensure_kafka_jars

  mkdir -p "$KAFKA_DIR"
  rm -rf "$KAFKA_DIR/data"   # fresh cluster every time
  local port cport
  port="$(free_port "${BONDX_KAFKA_PORT:-9092}")"
  cport="$(free_port "${BONDX_KAFKA_CONTROLLER_PORT:-9093}")"
  [[ "$cport" != "$port" ]] || cport="$(free_port $((port + 1)))"
  echo "$port" >"$KAFKA_DIR/port"
  write_kafka_config "$port" "$cport"

  local -a jvm=(-cp "$KAFKA_LIB/*" -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties"
    -Dbondx.kafka.logfile="$KAFKA_DIR/kafka.log")

  # Cluster id = 16 random bytes, base64url without padding (Kafka's Uuid format).
  # It may start with '-', hence --cluster-id=VALUE below.
  local cluster_id
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  log "Kafka: formatting storage (cluster id $cluster_id)"
  # Static single-voter quorum (controller.quorum.voters), so no --standalone.
  # C1-only JIT: this short-lived JVM only needs to start fast.
  java -Xmx256m -XX:TieredStopAtLevel=1 "${jvm[@]}" kafka.tools.StorageTool format \
      --config "$KAFKA_DIR/server.properties" --cluster-id="$cluster_id" \
      >"$KAFKA_DIR/format.log" 2>&1 </dev/null \
    || { cat "$KAFKA_DIR/format.log" >&2; die "Kafka storage format failed"; }

  log "Kafka: starting broker+controller on 127.0.0.1:$port (controller $cport)"
  : >"$KAFKA_DIR/kafka.log"
  local heap="${BONDX_KAFKA_HEAP:-512m}"
  nohup java -Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${jvm[@]}" \
    kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/stdout.log" 2>&1 </dev/null &
  echo $! >"$KAFKA_DIR/kafka.pid"
  STARTED+=(kafka)

  local pid; pid="$(cat "$KAFKA_DIR/kafka.pid")"
  if ! probe kafka "$(kafka_brokers_local)" "$KAFKA_TIMEOUT" "$pid"; then
    log "last lines of $KAFKA_DIR/kafka.log:"
    tail -n 40 "$KAFKA_DIR/kafka.log" >&2 || true
    tail -n 20 "$KAFKA_DIR/stdout.log" >&2 || true
    die "Kafka did not become ready"
  fi
}

kafka_down() {
  stop_pid Kafka "$KAFKA_DIR/kafka.pid" kafka.Kafka
  rm -rf "$KAFKA_DIR/data"
}

# ---------------------------------------------------------------- commands

env_line() {
  local redis kafka cluster
  if [[ -n "${REDIS_URL:-}" ]]; then redis="$REDIS_URL"
  elif pid_alive "$REDIS_DIR/redis.pid" redis-server; then redis="$(redis_url_local)"
  else die "Redis is not running (run: scripts/services.sh up)"; fi
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then kafka="$KAFKA_BROKERS"
  elif pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then kafka="$(kafka_brokers_local)"
  else die "Kafka is not running (run: scripts/services.sh up)"; fi
  if [[ -n "${REDIS_CLUSTER_NODES:-}" ]]; then cluster="$REDIS_CLUSTER_NODES"
  elif cluster_alive; then cluster="$(cluster_nodes_local)"
  else die "Redis Cluster is not running (run: scripts/services.sh up)"; fi
  printf 'export REDIS_URL=%q KAFKA_BROKERS=%q REDIS_CLUSTER_NODES=%q\n' "$redis" "$kafka" "$cluster"
}

cmd_up() {
  mkdir -p "$SVC"
  [[ -d "$ROOT/node_modules/kafkajs" ]] || die "node_modules missing: run 'npm ci' first (the readiness probe uses kafkajs/ioredis)"
  STARTED=()
  # If anything fails half-way, stop what this invocation started.
  trap 'rc=$?; if (( rc != 0 )); then for s in "${STARTED[@]}"; do ${s}_down || true; done; fi' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local t0=$SECONDS
  redis_up
  redis_cluster_up
  kafka_up
  trap - EXIT
  log "services up in $((SECONDS - t0))s"
  env_line
}

# Only pid-file services are stopped: external REDIS_URL/KAFKA_BROKERS never are.
cmd_down() {
  kafka_down
  redis_cluster_down
  redis_down
  return 0
}

cmd_status() {
  local ok=0
  if [[ -n "${REDIS_URL:-}" ]]; then
    if probe redis "$REDIS_URL" 3 2>/dev/null; then echo "redis: external $REDIS_URL (answers)"
    else echo "redis: external $REDIS_URL (NOT answering)"; ok=1; fi
  elif pid_alive "$REDIS_DIR/redis.pid" redis-server; then
    echo "redis: running pid $(cat "$REDIS_DIR/redis.pid") at $(redis_url_local)"
  else echo "redis: not running"; ok=1; fi
  if [[ -n "${REDIS_CLUSTER_NODES:-}" ]]; then echo "redis-cluster: external $REDIS_CLUSTER_NODES"
  elif cluster_alive && cluster_ok; then echo "redis-cluster: running at $(cluster_nodes_local) (cluster_state:ok)"
  elif cluster_alive; then echo "redis-cluster: running at $(cluster_nodes_local) (cluster_state NOT ok)"; ok=1
  else echo "redis-cluster: not running"; ok=1; fi
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    if probe kafka "$KAFKA_BROKERS" 5 2>/dev/null; then echo "kafka: external $KAFKA_BROKERS (answers)"
    else echo "kafka: external $KAFKA_BROKERS (NOT answering)"; ok=1; fi
  elif pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; then
    echo "kafka: running pid $(cat "$KAFKA_DIR/kafka.pid") at $(kafka_brokers_local) (Kafka $KAFKA_VERSION)"
  else echo "kafka: not running"; ok=1; fi
  return $ok
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) env_line ;;
  cluster-node-restart) cmd_cluster_node_restart "${2:-}" ;;
  *) echo "usage: $0 up|down|status|env|cluster-node-restart PORT" >&2; exit 2 ;;
esac
