#!/usr/bin/env bash
# A single-node Apache Kafka 4.x (KRaft: one combined broker+controller) on 127.0.0.1, without Docker.
#
#   broker.sh start|stop|status
#
# env: PORT (9092), CONTROLLER_PORT (PORT+1), LOG_DIR (<repo>/.cache/kafka; holds server.properties,
#      data/, broker.log, stdout.log, broker.pid), START_TIMEOUT (60 s until the port listens),
#      STOP_TIMEOUT (30 s from TERM to KILL), KAFKA_JAVA_OPTS (extra JVM options),
#      OWNER_PID (optional: stop the broker when that process is gone, e.g. a killed test run).
# `start` fetches the jars (fetch.sh) and formats LOG_DIR/data on first use, then returns once the
# broker's port listens (clients should still retry until it answers metadata requests).
# `status` exits 0 when running, 3 when not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PORT="${PORT:-9092}"
CONTROLLER_PORT="${CONTROLLER_PORT:-$((PORT + 1))}"
LOG_DIR="${LOG_DIR:-$here/../../.cache/kafka}"
START_TIMEOUT="${START_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
mkdir -p "$LOG_DIR"
LOG_DIR="$(cd "$LOG_DIR" && pwd)"
pidfile="$LOG_DIR/broker.pid"
props="$LOG_DIR/server.properties"
cp="$here/dist/libs/*"
java_opts=(-Djava.awt.headless=true -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$here/log4j2.properties")

# A zombie (exited, not yet reaped by a busy or absent init) counts as gone.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ ! -r "/proc/$1/status" ] || ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}

# Alive and still our broker: a stale pid file may name a pid the system has since reused.
running() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; fi
}

need_java17() {
  command -v java >/dev/null || { echo "broker.sh: java not found; Kafka 4 needs Java 17+" >&2; exit 1; }
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  if [ -n "$v" ] && [ "$v" -lt 17 ]; then echo "broker.sh: Java $v found; Kafka 4 needs Java 17+" >&2; exit 1; fi
}

# A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what `StorageTool
# random-uuid` prints, without starting a JVM for it). Not starting with '-', which the
# tool's argument parser would read as an option.
cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    case "$id" in -*) ;; *) echo "$id"; return ;; esac
  done
}

write_props() {
  cat >"$props" <<PROPS
# written by deploy/kafka/broker.sh on each start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${LOG_DIR}/data
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# topics come from \`careful-monitor topics create\`: a misspelt topic must fail, not appear
auto.create.topics.enable=false
# room for events up to limits.max_event_bytes (1 MiB) plus the too_large ones the tests send
message.max.bytes=4194304
PROPS
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  if running; then echo "broker already running (pid $(cat "$pidfile"), 127.0.0.1:${PORT})"; return 0; fi
  need_java17
  # Otherwise the wait below would take another process's listener for ours.
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if listening "$p"; then echo "broker.sh: 127.0.0.1:$p is already in use; choose other PORT / CONTROLLER_PORT" >&2; exit 1; fi
  done
  "$here/fetch.sh"
  write_props
  if [ ! -f "$LOG_DIR/data/meta.properties" ]; then
    # static quorum (controller.quorum.voters), so no --standalone / --initial-controllers
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(cluster_id)" -c "$props" \
      >"$LOG_DIR/format.log" 2>&1 || { echo "broker.sh: formatting $LOG_DIR/data failed:" >&2; cat "$LOG_DIR/format.log" >&2; exit 1; }
  fi
  # shellcheck disable=SC2086  # KAFKA_JAVA_OPTS is a list of options
  nohup java -Xms512m -Xmx1g "${java_opts[@]}" ${KAFKA_JAVA_OPTS:-} -cp "$cp" kafka.Kafka "$props" \
    </dev/null >"$LOG_DIR/stdout.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidfile"
  if [ -n "${OWNER_PID:-}" ]; then
    nohup bash -c 'while kill -0 "$0" 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -TERM "$1" 2>/dev/null' \
      "$OWNER_PID" "$pid" </dev/null >/dev/null 2>&1 &
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until listening "$PORT"; do
    if ! alive "$pid"; then
      echo "broker.sh: the broker exited during start; last lines of its logs:" >&2
      tail -n 30 "$LOG_DIR/stdout.log" "$LOG_DIR/broker.log" >&2 2>/dev/null || true
      rm -f "$pidfile"
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "broker.sh: port ${PORT} not listening after ${START_TIMEOUT}s (pid $pid still running; see $LOG_DIR)" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "broker listening on 127.0.0.1:${PORT} (pid $pid, logs in $LOG_DIR)"
}

stop() {
  if ! running; then echo "broker not running"; rm -f "$pidfile"; return 0; fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if alive "$pid"; then
    echo "broker.sh: pid $pid still running ${STOP_TIMEOUT}s after TERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  echo "broker stopped (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "running (pid $(cat "$pidfile")) on 127.0.0.1:${PORT}, logs in $LOG_DIR"; else echo "not running"; exit 3; fi
    ;;
  *) echo "usage: broker.sh start|stop|status   (env PORT, CONTROLLER_PORT, LOG_DIR, START_TIMEOUT, STOP_TIMEOUT)" >&2; exit 2 ;;
esac
