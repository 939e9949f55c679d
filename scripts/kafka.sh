#!/usr/bin/env bash
# A real Apache Kafka (KRaft, one combined broker+controller) on 127.0.0.1, without Docker.
#
#   scripts/kafka.sh start    fetch the pinned jars once, format fresh storage, start, wait until ready
#   scripts/kafka.sh stop     stop the broker this script started (by its recorded PID, nothing else)
#   scripts/kafka.sh status   say whether it runs and where
#   scripts/kafka.sh kill     SIGKILL it, keeping its data (fault-injection tests)
#   scripts/kafka.sh resume   start it again on the data it had (after kill or stop)
#   scripts/kafka.sh pause    SIGSTOP it (a broker that holds connections but never answers)
#   scripts/kafka.sh unpause  SIGCONT it after pause
#   scripts/kafka.sh fetch    only fetch the jars into the cache
#   scripts/kafka.sh probe [HOST:PORT] [N]   exit 0 if a Kafka broker answers metadata requests
#                         there (listing at least N brokers, default 1)
#
# A replicated cluster, as production runs Kafka: one KRaft controller and three brokers,
# each its own JVM, on fixed ports (the controller on 19090, broker N on 19090+N, so the
# bootstrap list is 127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093). Its brokers default to
# replication factor 3, min.insync.replicas 2 and no automatic topic creation.
#
#   scripts/kafka.sh cluster start       format fresh storage, start all four, wait for three brokers
#   scripts/kafka.sh cluster stop        stop the brokers, then the controller (only what it started)
#   scripts/kafka.sh cluster status      one line per node; exit 3 when none runs
#   scripts/kafka.sh cluster bootstrap   print the bootstrap list
#   scripts/kafka.sh cluster kill N      SIGKILL broker N (1-3), keeping its data
#   scripts/kafka.sh cluster restart N   start broker N again on its data (stopping it first if it runs)
#   scripts/kafka.sh cluster pause N     SIGSTOP broker N (a long GC pause or a zombie broker)
#   scripts/kafka.sh cluster resume N    SIGCONT broker N
#   scripts/kafka.sh cluster heal        continue paused brokers, restart stopped ones, wait for all three
#
# Environment (all optional):
#   KAFKA_PORT            broker port (default 9092); the controller listens on KAFKA_PORT+1
#   KAFKA_SASL_PORT       a SASL_PLAINTEXT listener with SCRAM-SHA-512 (default KAFKA_PORT+2)
#   KAFKA_SCRAM_USER, KAFKA_SCRAM_PASSWORD   its one user (default protobus / protobus-scram-secret;
#                         test credentials for a broker on 127.0.0.1 only)
#   KAFKA_SSL_PORT        an SSL listener that requires a client certificate (default KAFKA_PORT+3)
#   KAFKA_SASL_SSL_PORT   a SASL_SSL listener with SCRAM-SHA-512 (default KAFKA_PORT+4)
#                         Both use a throwaway CA made with keytool at each start, in
#                         $PROTOBUS_KAFKA_STATE/tls: ca.pem (what clients trust), client.p12
#                         (a client certificate; password in tls/password), broker.p12
#   PROTOBUS_CACHE_DIR    where the jars are cached (default ~/.cache/protobus); outside the repo
#   PROTOBUS_KAFKA_STATE  where pid, config, data and logs live (default /tmp/protobus-kafka-$KAFKA_PORT)
#   KAFKA_HEAP_OPTS       JVM heap (default -Xms512m -Xmx512m)
#   KAFKA_START_TIMEOUT   seconds to wait for the broker to answer (default 120)
#   PROTOBUS_KAFKA_CLUSTER_STATE   the cluster's state, a directory per node (default /tmp/protobus-kafka-cluster)
#   KAFKA_CLUSTER_HEAP_OPTS        each cluster broker's heap (default -Xms384m -Xmx384m; the controller gets 256m)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka/pom.xml"
port="${KAFKA_PORT:-9092}"
controller_port="$((port + 1))"
# A second client listener that requires SASL/SCRAM, for the security tests.
sasl_port="${KAFKA_SASL_PORT:-$((port + 2))}"
scram_user="${KAFKA_SCRAM_USER:-protobus}"
scram_password="${KAFKA_SCRAM_PASSWORD:-protobus-scram-secret}"
# TLS listeners: one that wants client certificates, one for SCRAM over TLS.
ssl_port="${KAFKA_SSL_PORT:-$((port + 3))}"
sasl_ssl_port="${KAFKA_SASL_SSL_PORT:-$((port + 4))}"
cache_root="${PROTOBUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/protobus}"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
# The cache key covers the whole pom, so any pin change fetches a fresh set of jars.
pom_sum="$(sha256sum "$pom" | cut -c1-12)"
libs="$cache_root/kafka-$kafka_version-$pom_sum/libs"
state="${PROTOBUS_KAFKA_STATE:-/tmp/protobus-kafka-$port}"
tls="$state/tls"
pidfile="$state/kafka.pid"
logfile="$state/logs/server.log"
timeout="${KAFKA_START_TIMEOUT:-120}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

need_tools() {
  set_java_cmd
  command -v java >/dev/null 2>&1 || die "java is not installed; Kafka $kafka_version needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
  [ -n "$major" ] && [ "$major" -ge 17 ] || die "Kafka $kafka_version needs Java 17 or newer; found java.specification.version=${major:-unknown}"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to probe the broker (Debian: apt-get install python3)"
  command -v keytool >/dev/null 2>&1 || die "keytool (part of the JDK/JRE) is needed to make the test certificates"
}

# A throwaway CA, a broker certificate for 127.0.0.1/localhost and a client
# certificate, all PKCS#12 (what both Kafka and librdkafka read), plus the CA as PEM.
make_certificates() {
  rm -rf "$tls"
  mkdir -p "$tls"
  local password
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s' "$password" >"$tls/password"
  kt() { keytool -noprompt -storetype PKCS12 -storepass "$password" -keypass "$password" "$@" >>"$tls/keytool.log" 2>&1 \
    || { cat "$tls/keytool.log" >&2; die "keytool $1 failed"; }; }
  kt -genkeypair -alias ca -keyalg EC -groupname secp256r1 -dname "CN=protobus test CA" -ext bc:c -validity 3650 -keystore "$tls/ca.p12"
  kt -exportcert -rfc -alias ca -keystore "$tls/ca.p12" -file "$tls/ca.pem"
  kt -importcert -alias ca -file "$tls/ca.pem" -keystore "$tls/truststore.p12"
  local name dname ext
  for name in broker client; do
    if [ "$name" = broker ]; then dname="CN=localhost"; ext="SAN=ip:127.0.0.1,dns:localhost"; else dname="CN=protobus-client"; ext="SAN=dns:protobus-client"; fi
    kt -genkeypair -alias "$name" -keyalg EC -groupname secp256r1 -dname "$dname" -validity 3650 -keystore "$tls/$name.p12"
    kt -certreq -alias "$name" -keystore "$tls/$name.p12" -file "$tls/$name.csr"
    kt -gencert -alias ca -keystore "$tls/ca.p12" -infile "$tls/$name.csr" -outfile "$tls/$name.pem" -rfc -ext "$ext" -validity 3650
    kt -importcert -alias ca -file "$tls/ca.pem" -keystore "$tls/$name.p12"
    kt -importcert -alias "$name" -file "$tls/$name.pem" -keystore "$tls/$name.p12"
  done
  rm -f "$tls"/*.csr "$tls/ca.p12"
}

fetch() {
  if [ -f "$libs/.complete" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not installed; it fetches the pinned Kafka jars once (Debian: apt-get install maven)"
  log "fetching Apache Kafka $kafka_version jars with Maven into $libs (first run only)"
  local tmp="$libs.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "Maven could not fetch org.apache.kafka:kafka_2.13:$kafka_version (is Maven Central reachable?)"
  fi
  touch "$tmp/.complete"
  rm -rf "$libs"
  mv "$tmp" "$libs"
}

running_pid() {
  # Prints the recorded PID only if that process is still our broker (same state dir on its command line).
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$state/server.properties" || return 1
  echo "$pid"
}

# Sends a Metadata v4 request (the oldest Kafka 4 accepts) and succeeds when the broker
# lists at least one broker: a stronger check than an open port.
probe() {
  python3 - "${1:-127.0.0.1:$port}" "${2:-1}" <<'PY'
import socket, struct, sys
host, _, port = sys.argv[1].rpartition(":")
want = int(sys.argv[2])
try:
    s = socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=2)
    s.settimeout(3)
    client = b"protobus-kafka-sh"
    body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">ib", -1, 0)
    s.sendall(struct.pack(">i", len(body)) + body)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    size, = struct.unpack(">i", read(4))
    resp = read(size)
    corr, throttle, brokers = struct.unpack(">iii", resp[:12])
    sys.exit(0 if corr == 7 and brokers >= want else 1)
except Exception:
    sys.exit(1)
PY
}

write_config() {
  mkdir -p "$state/logs"
  local tls_password
  tls_password="$(cat "$tls/password")"
  cat >"$state/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_ssl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_ssl_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.ssl.ssl.client.auth=required
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$tls_password
ssl.key.password=$tls_password
ssl.truststore.type=PKCS12
ssl.truststore.location=$tls/truststore.p12
ssl.truststore.password=$tls_password
log.dirs=$state/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
EOF
  write_log4j
}

# The node's log goes to $logfile, at INFO.
write_log4j() {
  cat >"$state/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $logfile
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
EOF
}

java_cmd=()
heap_opts="${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
set_java_cmd() {
  local heap
  read -r -a heap <<<"$heap_opts"
  java_cmd=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$state/log4j2.properties" -Dkafka.logs.dir="$state/logs"
    -cp "$libs/*")
}

# Starts the JVM of the node at $state and waits until "$@" succeeds (the node
# answers); sets started_pid. Fails, with the log's tail, when it exits or
# does not answer within $timeout.
started_pid=""
spawn_and_wait() {
  # setsid: the broker outlives this script and ignores the terminal's Ctrl-C.
  setsid nohup "${java_cmd[@]}" kafka.Kafka "$state/server.properties" >>"$state/logs/kafka.out" 2>&1 </dev/null &
  started_pid=$!
  echo "$started_pid" >"$pidfile"
  local waited=0
  until "$@"; do
    if ! kill -0 "$started_pid" 2>/dev/null; then
      tail -n 30 "$state/logs/kafka.out" "$logfile" >&2 2>/dev/null || true
      rm -f "$pidfile"
      die "the node at $state exited during start-up; logs in $state/logs"
    fi
    if [ "$waited" -ge "$((timeout * 2))" ]; then
      kill -9 "$started_pid" 2>/dev/null || true
      rm -f "$pidfile"
      die "the node at $state did not answer within ${timeout}s; logs in $state/logs"
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

launch() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "127.0.0.1:$port"
    return 0
  fi
  if probe; then
    die "something else already answers as a Kafka broker on 127.0.0.1:$port; stop it or set KAFKA_PORT"
  fi
  spawn_and_wait probe
  log "Apache Kafka $kafka_version ready (pid $started_pid, logs $state/logs)"
  echo "127.0.0.1:$port"
}

start() {
  need_tools
  fetch
  if running_pid >/dev/null; then
    launch
    return 0
  fi
  rm -rf "$state/data"
  make_certificates
  write_config
  local cluster_id
  cluster_id="$("${java_cmd[@]}" kafka.tools.StorageTool random-uuid 2>"$state/logs/format.out" | tail -n 1)" \
    || { cat "$state/logs/format.out" >&2; die "kafka.tools.StorageTool random-uuid failed"; }
  "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]" >"$state/logs/format.out" 2>&1 \
    || { cat "$state/logs/format.out" >&2; die "formatting KRaft storage failed"; }
  launch
}

resume() {
  need_tools
  fetch
  [ -f "$state/data/meta.properties" ] || die "no formatted data in $state/data; use 'start'"
  launch
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$pidfile"
    log "not running"
    return 0
  fi
  kill -CONT "$pid" 2>/dev/null || true # a paused broker cannot act on SIGTERM
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  log "killed (pid $pid) after 30s without a clean shutdown"
}

hard_kill() {
  local pid
  pid="$(running_pid)" || die "not running"
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  log "SIGKILLed (pid $pid); ${restart_hint:-'resume'} starts it on the same data"
}

# SIGSTOP / SIGCONT: a broker frozen as in a long GC pause, connections open.
signal_broker() {
  local pid
  pid="$(running_pid)" || die "not running"
  kill "-$1" "$pid"
  log "$2 (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    if probe; then echo "running: pid $pid, bootstrap 127.0.0.1:$port"; else echo "starting or unresponsive: pid $pid"; fi
  else
    echo "not running (state $state)"
    return 3
  fi
}

# --- The replicated cluster ---------------------------------------------------------------

cluster_root="${PROTOBUS_KAFKA_CLUSTER_STATE:-/tmp/protobus-kafka-cluster}"
cluster_base=19090
cluster_nodes=(0 1 2 3) # 0 is the controller
cluster_bootstrap="127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093"

# Points the single-node functions (running_pid, stop, hard_kill…) at node N.
cluster_node() {
  state="$cluster_root/node-$1"
  port="$((cluster_base + $1))"
  pidfile="$state/kafka.pid"
  logfile="$state/logs/server.log"
  if [ "$1" = 0 ]; then heap_opts="-Xms256m -Xmx256m"; else heap_opts="${KAFKA_CLUSTER_HEAP_OPTS:--Xms384m -Xmx384m}"; fi
  set_java_cmd
}

broker_number() {
  case "${1:-}" in
    1 | 2 | 3) ;;
    *) die "name a broker: 1, 2 or 3" ;;
  esac
}

write_cluster_config() {
  local n="$1"
  mkdir -p "$state/logs"
  local voters="0@127.0.0.1:$cluster_base"
  if [ "$n" = 0 ]; then
    cat >"$state/server.properties" <<EOF
process.roles=controller
node.id=0
controller.quorum.voters=$voters
listeners=CONTROLLER://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$state/data
EOF
  else
    cat >"$state/server.properties" <<EOF
process.roles=broker
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$state/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
replica.lag.time.max.ms=10000
log.flush.interval.messages=9223372036854775807
EOF
  fi
  write_log4j
}

port_open() {
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$1" 2>/dev/null
}

# Starts node N on the data it has and waits until it answers (a broker: metadata; the
# controller: its port).
cluster_launch() {
  local n="$1" pid
  cluster_node "$n"
  if pid="$(running_pid)"; then
    log "node $n already running (pid $pid)"
    return 0
  fi
  if port_open "$port"; then
    die "something else listens on 127.0.0.1:$port; stop it before starting the cluster"
  fi
  if [ "$n" = 0 ]; then spawn_and_wait port_open "$port"; else spawn_and_wait probe "127.0.0.1:$port"; fi
  log "node $n ready (pid $started_pid, 127.0.0.1:$port)"
}

# Waits until every broker sees all three in the cluster's metadata.
cluster_wait_complete() {
  local waited=0
  until probe 127.0.0.1:19091 3 && probe 127.0.0.1:19092 3 && probe 127.0.0.1:19093 3; do
    [ "$waited" -lt "$((timeout * 2))" ] || die "the brokers did not all join within ${timeout}s"
    sleep 0.5
    waited=$((waited + 1))
  done
}

cluster_start() {
  need_tools
  fetch
  local n running=""
  for n in "${cluster_nodes[@]}"; do
    cluster_node "$n"
    if running_pid >/dev/null; then running=1; fi
  done
  if [ -n "$running" ]; then
    for n in "${cluster_nodes[@]}"; do cluster_launch "$n"; done
    cluster_wait_complete
    echo "$cluster_bootstrap"
    return 0
  fi
  rm -rf "$cluster_root"
  cluster_node 0
  mkdir -p "$state/logs"
  local cluster_id
  cluster_id="$("${java_cmd[@]}" kafka.tools.StorageTool random-uuid 2>"$state/logs/format.out" | tail -n 1)" \
    || { cat "$state/logs/format.out" >&2; die "kafka.tools.StorageTool random-uuid failed"; }
  for n in "${cluster_nodes[@]}"; do
    cluster_node "$n"
    write_cluster_config "$n"
    "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" >"$state/logs/format.out" 2>&1 \
      || { cat "$state/logs/format.out" >&2; die "formatting node $n failed"; }
  done
  for n in "${cluster_nodes[@]}"; do cluster_launch "$n"; done
  cluster_wait_complete
  log "Apache Kafka $kafka_version cluster ready: a controller and three brokers, state in $cluster_root"
  echo "$cluster_bootstrap"
}

cluster_stop() {
  local n
  for n in 3 2 1 0; do
    cluster_node "$n"
    stop 2>&1 | sed "s/^kafka.sh: /kafka.sh: node $n: /" >&2
  done
}

cluster_status() {
  local n pid any=""
  for n in "${cluster_nodes[@]}"; do
    cluster_node "$n"
    local role="broker $n"
    [ "$n" = 0 ] && role="controller"
    if pid="$(running_pid)"; then
      any=1
      if [ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ]; then
        echo "$role: paused (SIGSTOP), pid $pid, 127.0.0.1:$port"
      else
        echo "$role: running, pid $pid, 127.0.0.1:$port"
      fi
    else
      echo "$role: not running (state $state)"
    fi
  done
  [ -n "$any" ] || return 3
}

cluster() {
  local command="${1:-}" n="${2:-}" pid
  case "$command" in
    start) cluster_start ;;
    stop) cluster_stop ;;
    status) cluster_status ;;
    bootstrap) echo "$cluster_bootstrap" ;;
    kill) broker_number "$n"; cluster_node "$n"; restart_hint="'cluster restart $n'" hard_kill ;;
    restart)
      broker_number "$n"
      need_tools
      fetch
      cluster_node "$n"
      if running_pid >/dev/null; then stop; fi
      cluster_launch "$n"
      ;;
    heal)
      need_tools
      fetch
      for n in 1 2 3; do
        cluster_node "$n"
        if pid="$(running_pid)"; then kill -CONT "$pid"; else cluster_launch "$n"; fi
      done
      cluster_wait_complete
      ;;
    pause) broker_number "$n"; cluster_node "$n"; signal_broker STOP "broker $n paused with SIGSTOP; 'cluster resume $n' continues it" ;;
    resume) broker_number "$n"; cluster_node "$n"; signal_broker CONT "broker $n continued with SIGCONT" ;;
    *) echo "usage: $0 cluster start|stop|status|bootstrap|heal|kill N|restart N|pause N|resume N" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill) hard_kill ;;
  resume) resume ;;
  pause) signal_broker STOP "paused with SIGSTOP; 'unpause' continues it" ;;
  unpause) signal_broker CONT "continued with SIGCONT" ;;
  fetch) need_tools; fetch; echo "$libs" ;;
  probe) probe "${2:-}" "${3:-1}" ;;
  cluster) shift; cluster "$@" ;;
  *) echo "usage: $0 start|stop|status|kill|resume|pause|unpause|fetch|probe [HOST:PORT] [N]|cluster …" >&2; exit 2 ;;
esac
