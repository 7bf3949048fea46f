#!/usr/bin/env bash
# A single-node Apache Kafka 4.x (KRaft: one combined broker+controller) on 127.0.0.1, without Docker.
#
#   broker.sh start|stop|status
#
# env: PORT (9092), CONTROLLER_PORT (PORT+1), LOG_DIR (<repo>/.cache/kafka; holds server.properties,
#      data/, broker.log, stdout.log, broker.pid), START_TIMEOUT (60 s until the port listens),
#      STOP_TIMEOUT (30 s from TERM to KILL), KAFKA_JAVA_OPTS (extra JVM options),
#      OWNER_PID (optional: stop the broker when that process is gone, e.g. a killed test run).
#   SASL_SSL (CAREFUL_KAFKA_SASL_SSL=1): a second listener SASL_SSL://127.0.0.1:SASL_PORT (PORT+2), SCRAM-SHA-512,
#      for user SASL_USER (careful) whose password is the first line of SASL_PASSWORD_FILE
#      (LOG_DIR/sasl-password; a random one is written when the file does not exist). The user is created
#      when LOG_DIR/data is formatted, so turn it on with a fresh LOG_DIR. TLS uses
#      CAREFUL_KAFKA_CERTS (LOG_DIR/certs): ca.pem and broker.pem (key + chain, PEM); when they do not
#      exist, openssl writes a throwaway CA and a certificate for 127.0.0.1/localhost there (ca-key.pem
#      stays in that folder: never commit it). Clients trust ca.pem. Re-authentication is due every
#      REAUTH_MS (60000), so a deleted user or changed password ends sessions within that time.
#      The PLAINTEXT listener on PORT stays (inter-broker traffic and the test harness's admin calls).
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
SASL_SSL="${CAREFUL_KAFKA_SASL_SSL:-0}"
SASL_PORT="${SASL_PORT:-$((PORT + 2))}"
SASL_USER="${SASL_USER:-careful}"
SASL_PASSWORD_FILE="${SASL_PASSWORD_FILE:-$LOG_DIR/sasl-password}"
CERTS="${CAREFUL_KAFKA_CERTS:-$LOG_DIR/certs}"
REAUTH_MS="${REAUTH_MS:-60000}"
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

# A throwaway CA and a broker certificate for 127.0.0.1 and localhost, valid for 30 days.
make_certs() {
  command -v openssl >/dev/null || { echo "broker.sh: openssl not found: it writes the SASL_SSL listener's certificates" >&2; exit 1; }
  mkdir -p "$CERTS"
  (
    cd "$CERTS"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca-key.pem -out ca.pem -subj "/CN=careful-monitor test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -keyout broker-key.pem -out broker.csr -subj "/CN=localhost"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile broker.ext -out broker-cert.pem
    cat broker-key.pem broker-cert.pem ca.pem >broker.pem  # the PEM keystore: PKCS#8 key, then the chain
    rm -f broker.csr broker.ext ca.srl broker-key.pem
    chmod 644 ca.pem broker-cert.pem
  ) >"$LOG_DIR/certs.log" 2>&1 || { echo "broker.sh: writing certificates into $CERTS failed:" >&2; cat "$LOG_DIR/certs.log" >&2; exit 1; }
}

sasl_ssl_setup() {
  if [ ! -f "$CERTS/ca.pem" ] || [ ! -f "$CERTS/broker.pem" ]; then make_certs; fi
  if [ ! -f "$SASL_PASSWORD_FILE" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$SASL_PASSWORD_FILE")
  fi
  sasl_password="$(head -n1 "$SASL_PASSWORD_FILE" | tr -d '\r')"
  # --add-scram's [name=...,password=...] syntax: keep both to characters it does not parse
  local ok='^[A-Za-z0-9._~+/-]+$'
  if ! [[ "$SASL_USER" =~ $ok && "$sasl_password" =~ $ok ]]; then
    echo "broker.sh: SASL_USER and the password in $SASL_PASSWORD_FILE must be non-empty, of letters, digits and . _ ~ + / -" >&2
    exit 1
  fi
}

write_props() {
  local listeners="PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}"
  local advertised="PLAINTEXT://127.0.0.1:${PORT}" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ "$SASL_SSL" = 1 ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:${SASL_PORT}"
    advertised="$advertised,SASL_SSL://127.0.0.1:${SASL_PORT}"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$props" <<PROPS
# written by deploy/kafka/broker.sh on each start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=${listeners}
advertised.listeners=${advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${protocols}
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
  if [ "$SASL_SSL" = 1 ]; then
    cat >>"$props" <<PROPS
# SASL_SSL (CAREFUL_KAFKA_SASL_SSL=1): SCRAM-SHA-512 users come from \`format --add-scram\`
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=${CERTS}/broker.pem
# sessions re-authenticate this often: a deleted user or a changed password ends them
connections.max.reauth.ms=${REAUTH_MS}
PROPS
  fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  if running; then echo "broker already running (pid $(cat "$pidfile"), 127.0.0.1:${PORT})"; return 0; fi
  need_java17
  # Otherwise the wait below would take another process's listener for ours.
  local ports=("$PORT" "$CONTROLLER_PORT")
  if [ "$SASL_SSL" = 1 ]; then ports+=("$SASL_PORT"); fi
  for p in "${ports[@]}"; do
    if listening "$p"; then echo "broker.sh: 127.0.0.1:$p is already in use; choose other PORT / CONTROLLER_PORT / SASL_PORT" >&2; exit 1; fi
  done
  "$here/fetch.sh"
  local scram=()
  if [ "$SASL_SSL" = 1 ]; then  # the password is on format's command line for its few seconds: a local broker only
    sasl_ssl_setup
    scram=(--add-scram "SCRAM-SHA-512=[name=${SASL_USER},password=${sasl_password}]")
  fi
  write_props
  if [ ! -f "$LOG_DIR/data/meta.properties" ]; then
    # static quorum (controller.quorum.voters), so no --standalone / --initial-controllers
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(cluster_id)" -c "$props" \
      ${scram[@]+"${scram[@]}"} >"$LOG_DIR/format.log" 2>&1 || { echo "broker.sh: formatting $LOG_DIR/data failed:" >&2; cat "$LOG_DIR/format.log" >&2; exit 1; }
    if [ "$SASL_SSL" = 1 ]; then echo "$SASL_USER" >"$LOG_DIR/data/.scram-user"; fi
  elif [ "$SASL_SSL" = 1 ] && [ "$(cat "$LOG_DIR/data/.scram-user" 2>/dev/null)" != "$SASL_USER" ]; then
    echo "broker.sh: $LOG_DIR/data was formatted without SCRAM user '$SASL_USER' (users are created at format time); use a fresh LOG_DIR" >&2
    exit 1
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
  local last_port="$PORT"
  if [ "$SASL_SSL" = 1 ]; then last_port="$SASL_PORT"; fi
  until listening "$PORT" && listening "$last_port"; do
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
  if [ "$SASL_SSL" = 1 ]; then
    echo "SASL_SSL on 127.0.0.1:${SASL_PORT}: SCRAM-SHA-512 user ${SASL_USER}, password in ${SASL_PASSWORD_FILE}, CA ${CERTS}/ca.pem"
  fi
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
  *) echo "usage: broker.sh start|stop|status   (env PORT, CONTROLLER_PORT, LOG_DIR, START_TIMEOUT, STOP_TIMEOUT; CAREFUL_KAFKA_SASL_SSL=1 with SASL_PORT, SASL_USER, SASL_PASSWORD_FILE, CAREFUL_KAFKA_CERTS, REAUTH_MS)" >&2; exit 2 ;;
esac
