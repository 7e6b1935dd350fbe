#!/usr/bin/env bash
# Starts or stops a local 3-master Redis Cluster on 127.0.0.1:7000-7002 for
# the store/redis cluster tests (REDIS_CLUSTER_ADDRS).
#
#   .ci/redis-cluster.sh start   # idempotent: succeeds at once if already up
#   .ci/redis-cluster.sh stop
#
# No persistence; state lives under /tmp/floodgate-cluster/<port>.
# REDIS_CLUSTER_PORTS="7110 7111 7112" picks other ports (to test this script
# without disturbing a cluster in use).
set -euo pipefail

read -r -a PORTS <<< "${REDIS_CLUSTER_PORTS:-7000 7001 7002}"
ROOT=/tmp/floodgate-cluster

cluster_ok() {
  local p
  for p in "${PORTS[@]}"; do
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

all_up() {
  local p
  for p in "${PORTS[@]}"; do
    redis-cli -p "$p" ping >/dev/null 2>&1 || return 1
  done
}

start() {
  if all_up && cluster_ok; then
    echo "redis cluster already up on ${PORTS[*]}"
    return 0
  fi
  # Anything less than a healthy cluster (some nodes down, a half-made
  # cluster) is torn down and made again: it holds only test data.
  stop >/dev/null
  local p addrs=()
  for p in "${PORTS[@]}"; do
    mkdir -p "$ROOT/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$ROOT/$p/nodes.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no --dir "$ROOT/$p" \
      --daemonize yes --pidfile "$ROOT/$p/redis.pid" --logfile "$ROOT/$p/redis.log"
    addrs+=("127.0.0.1:$p")
  done
  for _ in $(seq 1 100); do
    all_up && break
    sleep 0.05
  done
  all_up || { echo "redis cluster nodes did not start" >&2; return 1; }
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 1 200); do
    if cluster_ok; then
      echo "redis cluster up on ${PORTS[*]}"
      return 0
    fi
    sleep 0.05
  done
  echo "redis cluster did not reach cluster_state:ok" >&2
  return 1
}

stop() {
  local p
  for p in "${PORTS[@]}"; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$p" ping >/dev/null 2>&1 || break
      sleep 0.05
    done
    rm -rf "${ROOT:?}/$p"
  done
  echo "redis cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
