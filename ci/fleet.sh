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
#
# Sizes (environment, read by `up`):
#   MMO_FLEET_ZONES=CxR          zone columns x rows, one zone process each (default 2x2)
#   MMO_FLEET_GATEWAYS=N         gateway processes (default 2)
#   MMO_FLEET_SPAWN_SPREAD_M=M   new characters within M metres of the centre (default 40)
#   MMO_FLEET_ONE_ZONE_PROCESS=1 every zone in one zone process instead of one each (the
#                                relay's cost without borders between zone processes)
#   MMO_FLEET_SPARES=N           spare zone processes (`--zones auto`, default 0): each takes
#                                a zone whose process died, or a shard the gateways ask for
#   MMO_FLEET_SHARD_CAP=N        every process's --shard-cap (default the server's, 900)
#   MMO_FLEET_SINGLE=1           the same world and PostgreSQL in one `--role all` process
#                                instead (the comparison the fleet's costs are judged by)
#
# `up` also writes DIR/load-args: the `mmo-loadtest` flags that target the first gateway
# and scrape every other process (--also-metrics), as ci/fleet-load.sh uses them.
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
    zones=${MMO_FLEET_ZONES:-2x2}
    gateways=${MMO_FLEET_GATEWAYS:-2}
    spread=${MMO_FLEET_SPAWN_SPREAD_M:-40}
    if ! [[ $zones =~ ^([1-9][0-9]?)x([1-9][0-9]?)$ ]]; then
        log "MMO_FLEET_ZONES=$zones: expected COLUMNSxROWS, e.g. 2x2"
        exit 2
    fi
    columns=${BASH_REMATCH[1]}
    rows=${BASH_REMATCH[2]}
    if ! [[ $gateways =~ ^[1-9][0-9]?$ ]]; then
        log "MMO_FLEET_GATEWAYS=$gateways: expected 1 to 99"
        exit 2
    fi
    if [ $((columns * rows)) -gt 4095 ]; then
        log "MMO_FLEET_ZONES=$zones: a fleet has at most 4095 zones (16 shards each fit 16-bit ids)"
        exit 2
    fi
    spares=${MMO_FLEET_SPARES:-0}
    if ! [[ $spares =~ ^[0-9]{1,2}$ ]]; then
        log "MMO_FLEET_SPARES=$spares: expected a whole number, 0 to 99"
        exit 2
    fi
    if [ -n "${MMO_FLEET_SHARD_CAP:-}" ] && ! [[ $MMO_FLEET_SHARD_CAP =~ ^[1-9][0-9]{0,5}$ ]]; then
        log "MMO_FLEET_SHARD_CAP=$MMO_FLEET_SHARD_CAP: expected players per shard, 1 to 100000"
        exit 2
    fi
    if ! [[ $spread =~ ^[0-9]+$ ]] || [ "$spread" -gt 10000 ]; then
        log "MMO_FLEET_SPAWN_SPREAD_M=$spread: expected whole metres, 0 to 10000"
        exit 2
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
    cat >"$dir/fleet.toml" <<TOML
[world]
zone_columns = $columns
zone_rows = $rows

[gameplay]
spawn_spread_m = $spread
TOML
    # What every process shares, the one-process twin included; the fleet adds NATS, Redis
    # and the world's name.
    base=(--config "$dir/fleet.toml" --data-dir "$dir/data"
        --database-url "$MMO_TEST_POSTGRES_URL"
        --dev-open-login --handshake-burst 100000 --handshake-refill-per-s 100000
        --logins-per-address-per-min 100000)
    common=("${base[@]}" --nats-url "$MMO_TEST_NATS_URL" --world "$world"
        --redis-url "$MMO_TEST_REDIS_URL")
    [ -z "${MMO_FLEET_SHARD_CAP:-}" ] || common+=(--shard-cap "$MMO_FLEET_SHARD_CAP")
    http_of() { tr ' ' '\n' <"$dir/$1.ready" | sed -n 's/^http=//p'; }
    if [ "${MMO_FLEET_SINGLE:-0}" = 1 ]; then
        start_server "all-1" --role all "${base[@]}" \
            --http-addr "127.0.0.1:$(free_port)" --quic-addr "127.0.0.1:$(free_port)"
        echo "one process up in $dir (log: $dir/all-1.log)"
        echo "--http $(http_of all-1)" >"$dir/load-args"
        echo "load: mmo-loadtest $(cat "$dir/load-args")"
        exit 0
    fi
    # The first zone process creates the JWT secret and certificate the others read.
    zone_ids=$(seq 0 $((columns * rows - 1)))
    if [ "${MMO_FLEET_ONE_ZONE_PROCESS:-0}" = 1 ]; then
        # Every zone in one zone process ("zone-0", no --zones): the relay's hop without
        # zone borders between processes.
        zone_ids=0
    fi
    for z in $zone_ids; do
        zones_flag=(--zones "$z")
        [ "${MMO_FLEET_ONE_ZONE_PROCESS:-0}" != 1 ] || zones_flag=()
        start_server "zone-$z" --role zone ${zones_flag[@]+"${zones_flag[@]}"} --http-addr "127.0.0.1:$(free_port)" \
            "${common[@]}"
    done
    # Spares print their READY line only once they take a zone or shard: not waited for.
    for s in $(seq "$spares"); do
        port=$(free_port)
        echo "127.0.0.1:$port" >"$dir/spare-$s.http"
        RUST_LOG=info target/release/mmo-server --role zone --zones auto \
            --http-addr "127.0.0.1:$port" "${common[@]}" \
            </dev/null >"$dir/spare-$s.ready" 2>"$dir/spare-$s.log" &
        echo $! >"$dir/zone-spare-$s.pid"
        log "spare-$s: waiting for a zone or shard (log: $dir/spare-$s.log)"
    done
    for g in $(seq "$gateways"); do
        start_server "gateway-$g" --role gateway --http-addr "127.0.0.1:$(free_port)" \
            --quic-addr "127.0.0.1:$(free_port)" "${common[@]}"
    done
    for s in $(seq "$spares"); do
        if ! kill -0 "$(cat "$dir/zone-spare-$s.pid")" 2>/dev/null; then
            log "spare-$s exited; its log:"
            tail -20 "$dir/spare-$s.log" >&2
            exit 1
        fi
    done
    echo "fleet up in $dir (logs: $dir/*.log)"
    also=()
    for z in $zone_ids; do
        also+=(--also-metrics "$(http_of "zone-$z")")
        echo "zone process $z: metrics at http://$(http_of "zone-$z")/metrics"
    done
    for s in $(seq "$spares"); do
        also+=(--also-metrics "$(cat "$dir/spare-$s.http")")
    done
    for g in $(seq "$gateways"); do
        [ "$g" = 1 ] || also+=(--also-metrics "$(http_of "gateway-$g")")
        echo "gateway $g: login at http://$(http_of "gateway-$g")/v1/login (any name, password dev_password)"
    done
    echo "--http $(http_of gateway-1) ${also[*]}" >"$dir/load-args"
    echo "load: mmo-loadtest $(cat "$dir/load-args")"
    ;;
down)
    # Gateways first (their clients end), then spares (so none takes over a zone given
    # back below), then the zone processes (they save).
    for pidfile in "$dir"/gateway-*.pid "$dir"/zone-spare-*.pid "$dir"/zone-*.pid "$dir"/all-*.pid; do
        [ -f "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$(cat "$pidfile")" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$pidfile"
    done
    if [ -d "$dir/services" ]; then
        bash ci/services.sh stop "$dir/services"
        # The databases are scratch: the next `up` starts from empty ones.
        rm -rf "$dir/services"
    fi
    rm -f "$dir/fleet.up" "$dir/load-args"
    log "down"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
