#!/usr/bin/env bash
# A local fleet in one command: NATS, Redis and PostgreSQL on loopback (ci/services.sh), four
# zone processes and two gateway processes of one world, all on this machine.
#
#   bash ci/fleet.sh up [DIR]     builds mmo-server (release), starts everything with its
#                                 files under DIR (default /tmp/mmo-fleet), prints the
#                                 gateways' login URLs and where the logs are
#   bash ci/fleet.sh down [DIR]   stops everything started by `up`
#
# Every process shares DIR/data (the JWT secret the gateways sign logins with and the zone
# process checks, and the certificate both gateways present) and the PostgreSQL database.
# Logins are open (`--dev-open-login`: any name, password `dev_password`), for trying it
# out and for `mmo-loadtest --http <gateway HTTP address>`.
#
# The world (DIR/fleet.toml) is the default 4 km square cut into 2 x 2 zones, which meet at
# the spawn point; each zone process runs one zone (--zones), and new characters appear
# within 40 m of the spawn point, so players walking about cross zone and process borders
# (docs/fleet.md).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:?usage: ci/fleet.sh up|down [DIR]}
dir=${2:-/tmp/mmo-fleet}

log() { printf '== fleet: %s\n' "$*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts `mmo-server` with the given flags in the background; waits for its READY line.
start_server() {
    local name=$1
    shift
    local out="$dir/$name.ready"
    : >"$out"
    RUST_LOG=info target/release/mmo-server "$@" </dev/null >"$out" 2>"$dir/$name.log" &
    echo $! >"$dir/$name.pid"
    for _ in $(seq 300); do
        grep -q MMO_SERVER_READY "$out" && break
        if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
            log "$name exited; its log:"
            tail -20 "$dir/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    grep -q MMO_SERVER_READY "$out" || { log "$name did not get ready"; exit 1; }
    log "$name: $(cat "$out")"
}

case "$cmd" in
up)
    if [ -f "$dir/fleet.up" ]; then
        log "a fleet is already up in $dir (bash ci/fleet.sh down $dir first)"
        exit 1
    fi
    if [ -d "$dir/services" ]; then
        log "$dir/services is left from an earlier run: bash ci/fleet.sh down $dir first"
        exit 1
    fi
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    log "building mmo-server (release)"
    cargo build --release -q -p mmo-server
    bash ci/services.sh start "$dir/services" >/dev/null
    # shellcheck disable=SC1091
    . "$dir/services/env"
    touch "$dir/fleet.up"
    world="local"
    cat >"$dir/fleet.toml" <<'TOML'
[world]
zone_columns = 2
zone_rows = 2

[gameplay]
spawn_spread_m = 40
TOML
    common=(--config "$dir/fleet.toml" --nats-url "$MMO_TEST_NATS_URL" --world "$world"
        --data-dir "$dir/data"
        --database-url "$MMO_TEST_POSTGRES_URL" --redis-url "$MMO_TEST_REDIS_URL"
        --dev-open-login --handshake-burst 100000 --handshake-refill-per-s 100000
        --logins-per-address-per-min 100000)
    # The first zone process creates the JWT secret and certificate the others read.
    for z in 0 1 2 3; do
        start_server "zone-$z" --role zone --zones "$z" --http-addr "127.0.0.1:$(free_port)" \
            "${common[@]}"
    done
    for g in 1 2; do
        start_server "gateway-$g" --role gateway --http-addr "127.0.0.1:$(free_port)" \
            --quic-addr "127.0.0.1:$(free_port)" "${common[@]}"
    done
    echo "fleet up in $dir (logs: $dir/*.log)"
    also=()
    for z in 0 1 2 3; do
        zone_http=$(tr ' ' '\n' <"$dir/zone-$z.ready" | sed -n 's/^http=//p')
        also+=(--also-metrics "$zone_http")
        echo "zone process $z: metrics at http://$zone_http/metrics"
    done
    for g in 1 2; do
        http=$(tr ' ' '\n' <"$dir/gateway-$g.ready" | sed -n 's/^http=//p')
        echo "gateway $g: login at http://$http/v1/login (any name, password dev_password); load: mmo-loadtest --http $http ${also[*]}"
    done
    ;;
down)
    for name in gateway-1 gateway-2 zone-0 zone-1 zone-2 zone-3; do
        if [ -f "$dir/$name.pid" ]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
            for _ in $(seq 100); do
                kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
                sleep 0.1
            done
            rm -f "$dir/$name.pid"
        fi
    done
    if [ -d "$dir/services" ]; then
        bash ci/services.sh stop "$dir/services"
        # The databases are scratch: the next `up` starts from empty ones.
        rm -rf "$dir/services"
    fi
    rm -f "$dir/fleet.up"
    log "down"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
