#!/usr/bin/env bash
# Starts and stops the real services the tests use: a PostgreSQL server, a Redis server and
# a NATS server on loopback, data in a directory of their own, nothing left behind.
#
#   ci/services.sh start DIR   installs PostgreSQL, Redis and NATS from Debian's packages if
#                              missing, starts them with their data under DIR, and writes
#                              DIR/env (export lines: MMO_TEST_POSTGRES_URL,
#                              MMO_TEST_REDIS_URL, MMO_TEST_NATS_URL, MMO_TEST_SERVICES_DIR)
#   ci/services.sh pg-stop DIR  stops PostgreSQL (fast), for outage tests
#   ci/services.sh pg-start DIR starts it again on the same port and data
#   ci/services.sh stop DIR    stops all three
#
# Runs as root (CI) or as a user with sudo for apt-get. PostgreSQL refuses to run as root,
# so as root its cluster belongs to the `postgres` user the package creates.
set -euo pipefail

cmd=${1:?usage: ci/services.sh start|stop|pg-stop|pg-start DIR}
dir=${2:?usage: ci/services.sh start|stop|pg-stop|pg-start DIR}

log() { printf '== services: %s\n' "$*" >&2; }

pg_bin() {
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        if [ -x "$bin/initdb" ]; then
            echo "$bin"
            return
        fi
    done
    return 1
}

install_missing() {
    local missing=()
    pg_bin >/dev/null 2>&1 || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        # The packages would start their own cluster and server as services; ours run on
        # other ports, from DIR, so theirs are left alone.
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
}

# Runs a PostgreSQL command as the owner of the cluster.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
    local bin
    bin=$(pg_bin)
    as_pg "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
        -o "-p $(cat "$dir/pg.port") -k $dir/pgsock -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=400" start >/dev/null
}

pg_stop() {
    local bin
    bin=$(pg_bin)
    as_pg "$bin/pg_ctl" -D "$dir/pg" -m fast -w -t 60 stop >/dev/null || true
}

case "$cmd" in
start)
    install_missing
    mkdir -p "$dir/pgsock"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$dir" "$dir/pgsock"
        chmod 755 "$dir"
    fi
    bin=$(pg_bin)
    free_port >"$dir/pg.port"
    free_port >"$dir/redis.port"
    log "PostgreSQL on 127.0.0.1:$(cat "$dir/pg.port"), data in $dir/pg"
    as_pg "$bin/initdb" -D "$dir/pg" -U mmo --auth=trust -E UTF8 >/dev/null
    pg_start
    log "Redis on 127.0.0.1:$(cat "$dir/redis.port")"
    redis-server --bind 127.0.0.1 --port "$(cat "$dir/redis.port")" --save '' --appendonly no \
        --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$(cat "$dir/redis.port")" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$(cat "$dir/redis.port")" ping >/dev/null
    free_port >"$dir/nats.port"
    log "NATS on 127.0.0.1:$(cat "$dir/nats.port")"
    nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
    "$nats_bin" -a 127.0.0.1 -p "$(cat "$dir/nats.port")" -P "$dir/nats.pid" -l "$dir/nats.log" \
        </dev/null >"$dir/nats.out" 2>&1 &
    nats_up=no
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/nats.port")") 2>/dev/null; then
            nats_up=yes
            break
        fi
        sleep 0.1
    done
    if [ "$nats_up" != yes ]; then
        log "NATS did not start; its log:"
        cat "$dir/nats.log" "$dir/nats.out" >&2 2>/dev/null || true
        exit 1
    fi
    cat >"$dir/env" <<ENV
export MMO_TEST_POSTGRES_URL=postgres://mmo@127.0.0.1:$(cat "$dir/pg.port")/postgres
export MMO_TEST_REDIS_URL=redis://127.0.0.1:$(cat "$dir/redis.port")/
export MMO_TEST_NATS_URL=nats://127.0.0.1:$(cat "$dir/nats.port")
export MMO_TEST_SERVICES_DIR=$dir
ENV
    cat "$dir/env"
    ;;
pg-stop) pg_stop ;;
pg-start) pg_start ;;
stop)
    pg_stop
    for pidfile in "$dir/redis.pid" "$dir/nats.pid"; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
