#!/usr/bin/env bash
# Runs a command beside a private Redis and a private PostgreSQL, and stops both afterwards.
#
#   hack/with-services.sh COMMAND [ARG...]
#
# Installs Debian's redis-server and postgresql when they are missing (as root), starts each on a
# free loopback port under a temporary directory (Redis with --maxmemory-policy noeviction and
# --appendonly yes, as the product requires), and runs COMMAND with REDIS_URL, DATABASE_URL and
# REDIS_SERVER_BIN exported. A REDIS_URL or DATABASE_URL already set is used as it is, and that
# service is not started. SERVICES_ADDR (default 127.0.0.1) is the address both listen on, e.g. a
# test node's address inside its own network namespace (`make dev NODE=1`).
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }

log() { echo "with-services: $*" >&2; }

pg_bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_missing() {
  local want=()
  [ -n "${REDIS_URL:-}" ] || command -v redis-server >/dev/null || want+=(redis-server redis-tools)
  [ -n "${DATABASE_URL:-}" ] || pg_bin_dir >/dev/null || want+=(postgresql)
  [ ${#want[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing ${want[*]}; install them (apt-get install ${want[*]}) or run as root"
    exit 1
  fi
  log "installing ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  log "no free port found"
  exit 1
}

wait_for() { # description command...
  local what=$1
  shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$what did not come up"
  return 1
}

install_missing
addr=${SERVICES_ADDR:-127.0.0.1}
work=$(mktemp -d "${TMPDIR:-/tmp}/queue-operator-services.XXXXXX")
chmod 755 "$work"
redis_pid=""
pg_data=""
pg_user=""

cleanup() {
  local rc=$?
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$pg_data" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: as root, run it as the postgres user the package creates.
as_pg() {
  if [ -n "$pg_user" ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}

if [ -z "${REDIS_URL:-}" ]; then
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  redis-server --bind "$addr" --protected-mode no --port "$redis_port" --dir "$work/redis" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --save "" --logfile "$work/redis/redis.log" &
  redis_pid=$!
  wait_for "redis-server on port $redis_port" redis-cli -h "$addr" -p "$redis_port" ping
  export REDIS_URL="redis://$addr:$redis_port/0"
  log "Redis at $REDIS_URL"
fi
REDIS_SERVER_BIN=$(command -v redis-server || true)
export REDIS_SERVER_BIN

if [ -z "${DATABASE_URL:-}" ]; then
  PG_BIN=$(pg_bin_dir)
  if [ "$(id -u)" = 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql "$pg_user"
  fi
  pg_port=$(free_port)
  pg_data="$work/pg"
  mkdir -p "$pg_data"
  [ -z "$pg_user" ] || chown "$pg_user" "$pg_data"
  as_pg "$PG_BIN/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; exit 1; }
  [ "$addr" = 127.0.0.1 ] || echo "host all all 0.0.0.0/0 trust" >>"$pg_data/pg_hba.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$pg_data/postgres.log" -w -t 30 start \
    -o "-p $pg_port -k $pg_data -c listen_addresses=$addr -c fsync=off -c max_connections=200" >/dev/null
  export DATABASE_URL="postgres://postgres@$addr:$pg_port/postgres?sslmode=disable"
  log "PostgreSQL at $DATABASE_URL"
fi

"$@"
