#!/usr/bin/env bash
# A single-node Kafka 4.x broker (KRaft, combined broker+controller) on 127.0.0.1, no Docker.
#   broker.sh start|stop|status      env: PORT (9092), CONTROLLER_PORT (PORT+1), LOG_DIR (.cache/kafka)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PORT="${PORT:-9092}"
CONTROLLER_PORT="${CONTROLLER_PORT:-$((PORT + 1))}"
LOG_DIR="${LOG_DIR:-$here/../../.cache/kafka}"
mkdir -p "$LOG_DIR"
LOG_DIR="$(cd "$LOG_DIR" && pwd)"
pidfile="$LOG_DIR/broker.pid"
props="$LOG_DIR/server.properties"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "broker already running (pid $(cat "$pidfile"))"; exit 0; fi
    "$here/fetch.sh"
    cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${LOG_DIR}/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=4194304
PROPS
    cp="$here/dist/libs/*"
    java_opts=(-Xms512m -Xmx1g -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$here/log4j2.properties")
    if [ ! -f "$LOG_DIR/data/meta.properties" ]; then
      java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null || echo 4L6g3nShT-eMCtK--X86sw)" -c "$props" >"$LOG_DIR/format.log" 2>&1 \
        || { cat "$LOG_DIR/format.log" >&2; exit 1; }
    fi
    nohup java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$props" >"$LOG_DIR/stdout.log" 2>&1 &
    echo $! > "$pidfile"
    echo "broker starting on 127.0.0.1:${PORT} (pid $(cat "$pidfile"), logs in $LOG_DIR)"
    ;;
  stop)
    if ! running; then echo "broker not running"; rm -f "$pidfile"; exit 0; fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
    echo "broker stopped"
    ;;
  status)
    if running; then echo "running (pid $(cat "$pidfile")) on 127.0.0.1:${PORT}"; else echo "not running"; exit 1; fi
    ;;
  *) echo "usage: broker.sh start|stop|status  (env PORT, CONTROLLER_PORT, LOG_DIR)" >&2; exit 2 ;;
esac
