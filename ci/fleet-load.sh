#!/usr/bin/env bash
# The fleet load test in one command: a local fleet (ci/fleet.sh up), light bots through its
# first gateway for BOTS players, the report as JSON and HTML, the fleet down again.
#
#   bash ci/fleet-load.sh BOTS [DIR] [-- more mmo-loadtest flags]
#
# Writes DIR/report.json, DIR/report.html and DIR/report.txt (a summary, with the CPU of NATS,
# Redis and PostgreSQL over the run from ci/service_cpu.py; default DIR: /tmp/mmo-fleet-load).
# The fleet's size comes from ci/fleet.sh's variables (MMO_FLEET_ZONES, MMO_FLEET_GATEWAYS,
# MMO_FLEET_SPAWN_SPREAD_M, and MMO_FLEET_SINGLE=1 for the same world in one process); the
# run from these (defaults in brackets):
#   MMO_LOAD_RAMP_PER_S      bots started per second [200]
#   MMO_LOAD_ITERATIONS      1 s iterations per bot [60]
#   MMO_LOAD_PLAN_CCU        the report plans a fleet for this many players [10000]
#
# The 10,000-player scenario, on a machine with the cores for it (docs/performance.md,
# "Fleet capacity"):
#   MMO_FLEET_ZONES=4x4 MMO_FLEET_GATEWAYS=8 MMO_FLEET_SPAWN_SPREAD_M=1800 \
#       MMO_LOAD_RAMP_PER_S=500 bash ci/fleet-load.sh 10000 /tmp/fleet-10k -- --worker-threads 8
set -euo pipefail

usage="usage: ci/fleet-load.sh BOTS [DIR] [-- more mmo-loadtest flags]"
bots=${1:?$usage}
shift
dir=/tmp/mmo-fleet-load
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    dir=$1
    shift
fi
if [ $# -gt 0 ]; then
    if [ "$1" != "--" ]; then
        echo "fleet-load: $1: mmo-loadtest flags go after --; $usage" >&2
        exit 2
    fi
    shift
fi
if ! [[ $bots =~ ^[1-9][0-9]*$ ]]; then
    echo "fleet-load: BOTS=$bots: expected a whole number >= 1; $usage" >&2
    exit 2
fi
if [[ $dir == -* ]]; then
    echo "fleet-load: DIR=$dir: a directory, not a flag (flags go after --); $usage" >&2
    exit 2
fi
# Resolved from the caller's directory, before the cd below.
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

cd "$(dirname "$0")/.."
cargo build --release -q -p mmo-loadtest
# Before `up`: a fleet that fails half-way up is taken down too.
trap 'bash ci/fleet.sh down "$dir/fleet"' EXIT
bash ci/fleet.sh up "$dir/fleet"
read -r -a target <"$dir/fleet/load-args"
python3 ci/service_cpu.py mark "$dir/fleet/services" >"$dir/services-cpu.json"
status=0
target/release/mmo-loadtest "${target[@]}" --light --bots "$bots" \
    --ramp-per-s "${MMO_LOAD_RAMP_PER_S:-200}" --iterations "${MMO_LOAD_ITERATIONS:-60}" \
    --plan-ccu "${MMO_LOAD_PLAN_CCU:-10000}" --json --no-progress \
    --html "$dir/report.html" "$@" >"$dir/report.json" || status=$?
if [ ! -s "$dir/report.json" ]; then
    echo "fleet-load: mmo-loadtest exited $status without a report" >&2
    exit "$status"
fi
python3 - "$dir/report.json" >"$dir/report.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"bots {r['bots']} connected {r['connected']} ccu_peak {r['ccu_peak']}")
print(f"input-to-ack ms p50 {r['input_to_ack_ms_p50']} p99 {r['input_to_ack_ms_p99']}; corrections {r['corrections']}; "
      f"UDP down per client mean {r['udp_bytes_per_s_down_mean']} B/s")
for role in r["roles"]:
    print(f"role {role['role']} x{role['processes']}: {role['cpu_millicores_per_player']} millicores, "
          f"{role['memory_kib_per_player']} KiB, client payload {role['client_payload_bytes_per_s_per_player']} B/s, "
          f"NATS {role['nats_bytes_per_s_per_player']} B/s per player")
PY
python3 ci/service_cpu.py since "$dir/fleet/services" "$dir/services-cpu.json" >>"$dir/report.txt"
cat "$dir/report.txt"
echo "fleet-load: reports in $dir (report.json, report.html); mmo-loadtest exit $status"
exit "$status"
