#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) on loopback, from the
# official jars on Maven Central. Used by `make run`, the tests and CI; no Docker needed.
#
#   kafka.sh fetch                      resolve the jars into the cache (idempotent)
#   kafka.sh start DIR [PORT]           format DIR (once) and start a broker; prints host:port
#   kafka.sh stop DIR                   stop the broker started in DIR, cleanly
#   kafka.sh status DIR                 exit 0 and print host:port when it answers
#
# Environment: SMTP_AUTH_CACHE (default ~/.cache/smtp-auth-insights), KAFKA_HEAP (512m),
# KAFKA_START_TIMEOUT seconds (90).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
cache=${SMTP_AUTH_CACHE:-$HOME/.cache/smtp-auth-insights}/kafka-$version
jars=$cache/libs

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_java() {
  command -v java >/dev/null || die "Java 17+ is required (java not found on PATH); e.g. apt-get install openjdk-17-jre-headless"
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 17 ] || die "Java 17+ is required, found Java ${major:-unknown}"
}

fetch() {
  if [ -f "$cache/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven is required to fetch the Kafka jars (mvn not found); e.g. apt-get install maven"
  need_java
  echo "kafka.sh: fetching Apache Kafka $version jars from Maven Central into $jars" >&2
  local tmp="$cache.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp/libs" -DincludeScope=runtime >&2 \
    || { rm -rf "$tmp"; die "Maven could not resolve the Kafka jars (see above)"; }
  rm -rf "$cache"; mv "$tmp" "$cache"; touch "$cache/.complete"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$1/kafka.pid" ] && kill -0 "$(cat "$1/kafka.pid")" 2>/dev/null; }

start() {
  local dir=${1:?usage: kafka.sh start DIR [PORT]} port=${2:-}
  fetch; need_java
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  if alive "$dir"; then cat "$dir/bootstrap"; return 0; fi
  # A restarted broker keeps its ports so that clients find it again.
  local cport=""
  if [ -f "$dir/server.properties" ]; then
    [ -n "$port" ] || port=$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/server.properties")
    cport=$(sed -n 's/^controller.quorum.voters=1@127.0.0.1://p' "$dir/server.properties")
  fi
  [ -n "$port" ] || port=$(free_port)
  [ -n "$cport" ] || cport=$(free_port)
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  cat > "$dir/log4j2.yaml" <<LOG
Configuration:
  Appenders:
    File: {name: F, fileName: "$dir/server.log", PatternLayout: {pattern: "[%d] %p %m (%c)%n"}}
  Loggers:
    Root: {level: INFO, AppenderRef: [{ref: F}]}
    Logger: [{name: kafka.request.logger, level: WARN}, {name: state.change.logger, level: WARN}]
LOG
  local cp="$jars/*"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cid; cid=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    java -cp "$cp" -Dlog4j2.configurationFile="$dir/log4j2.yaml" kafka.tools.StorageTool format \
      -t "$cid" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || die "formatting KRaft storage failed, see $dir/format.log"
  fi
  : >"$dir/server.log"
  nohup java -Xms128m -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.yaml" -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until answers "$port" && grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null; do
    alive "$dir" || { tail -n 30 "$dir/stdout.log" "$dir/server.log" >&2; die "broker exited during start-up"; }
    [ $SECONDS -lt $deadline ] || { stop "$dir"; die "broker did not answer within ${KAFKA_START_TIMEOUT:-90}s, see $dir/server.log"; }
    sleep 0.2
  done
  echo "127.0.0.1:$port" | tee "$dir/bootstrap"
}

stop() {
  local dir=${1:?usage: kafka.sh stop DIR}
  alive "$dir" || { rm -f "$dir/kafka.pid"; return 0; }
  local pid; pid=$(cat "$dir/kafka.pid")
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$dir/kafka.pid"
}

status() {
  local dir=${1:?usage: kafka.sh status DIR}
  alive "$dir" && answers "$(cut -d: -f2 "$dir/bootstrap")" && cat "$dir/bootstrap"
}

case "${1:-}" in
  fetch) fetch ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  status) shift; status "$@" ;;
  *) die "usage: kafka.sh fetch | start DIR [PORT] | stop DIR | status DIR" ;;
esac
