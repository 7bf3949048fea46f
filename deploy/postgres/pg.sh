#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for tests and local development (never the system one).
#
#   pg.sh install              install Debian's postgresql if no initdb is found (needs root)
#   pg.sh start DATADIR PORT   initdb DATADIR if needed (trust auth, superuser "postgres"), then start
#                              on 127.0.0.1:PORT with its unix socket inside DATADIR; waits until ready
#   pg.sh stop DATADIR         fast shutdown of the server running from DATADIR
#
# PostgreSQL refuses to run as root: as root the server runs as the system user $PG_USER
# (default careful-pg, created on first use) and DATADIR is handed to that user; the path to
# DATADIR must be traversable by it (a folder under /tmp is). Durability is switched off (fsync,
# synchronous_commit, full_page_writes) because these servers hold test data only.
set -euo pipefail

PG_USER="${PG_USER:-careful-pg}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"

die() { echo "pg.sh: $*" >&2; exit 1; }

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
    if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir; return
    fi
    return 1
}

as_pg() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

cmd_install() {
    if pg_bindir >/dev/null; then return 0; fi
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed: run 'sudo $0 install' (or apt-get install postgresql)"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is missing: install PostgreSQL 15+"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    pg_bindir >/dev/null || die "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
}

ensure_user() {
    [[ "$(id -u)" == 0 ]] || return 0
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER" \
            || id -u "$PG_USER" >/dev/null 2>&1 || die "cannot create user $PG_USER"
    fi
}

cmd_start() {
    local datadir="${1:?usage: pg.sh start DATADIR PORT}" port="${2:?usage: pg.sh start DATADIR PORT}"
    local bin
    bin="$(pg_bindir)" || die "PostgreSQL is not installed: run '$0 install'"
    ensure_user
    mkdir -p "$datadir"
    datadir="$(cd "$datadir" && pwd)"
    if [[ "$(id -u)" == 0 ]]; then chown "$PG_USER" "$datadir"; fi
    chmod 700 "$datadir"
    if [[ ! -s "$datadir/PG_VERSION" ]]; then
        local out
        out="$(as_pg "$bin/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --locale=C --no-sync 2>&1)" \
            || { echo "$out" >&2; die "initdb failed in $datadir"; }
    fi
    if as_pg "$bin/pg_ctl" status -D "$datadir" >/dev/null 2>&1; then
        echo "pg.sh: already running from $datadir"; return 0
    fi
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$datadir'"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    if ! as_pg "$bin/pg_ctl" start -D "$datadir" -l "$datadir/server.log" -o "$opts" -w -t "$START_TIMEOUT" >/dev/null; then
        tail -n 30 "$datadir/server.log" >&2 || true
        die "server in $datadir did not start on 127.0.0.1:$port"
    fi
    # pg_ctl -w returns once the server accepts connections; check the TCP listener the tests use
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t "$START_TIMEOUT" \
        || die "server in $datadir does not answer on 127.0.0.1:$port"
    echo "pg.sh: running from $datadir on 127.0.0.1:$port"
}

cmd_stop() {
    local datadir="${1:?usage: pg.sh stop DATADIR}"
    local bin
    bin="$(pg_bindir)" || die "PostgreSQL is not installed"
    [[ -f "$datadir/postmaster.pid" ]] || { echo "pg.sh: not running from $datadir"; return 0; }
    as_pg "$bin/pg_ctl" stop -D "$datadir" -m fast -w -t "$START_TIMEOUT" >/dev/null
}

case "${1:-}" in
    install) cmd_install ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) echo "usage: $0 install | start DATADIR PORT | stop DATADIR" >&2; exit 2 ;;
esac
