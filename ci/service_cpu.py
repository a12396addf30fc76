#!/usr/bin/env python3
"""CPU of a local fleet's services (NATS, Redis, PostgreSQL), which the load tester cannot
scrape: they export no Prometheus metrics here.

    python3 ci/service_cpu.py mark SERVICES_DIR > MARK.json    # CPU seconds so far
    python3 ci/service_cpu.py since SERVICES_DIR MARK.json     # cores used since the mark

SERVICES_DIR is what ci/services.sh started them in (nats.pid, redis.pid, pg/postmaster.pid).
PostgreSQL counts the postmaster, its children alive at each reading and the children that
ended and were reaped (the postmaster's cutime and cstime); a child alive at the mark that
ends before the next reading loses what it used before the mark to the sum, so the figure
can be low, never high, and the output says so. Linux only.
"""
import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, reaped_children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime, stime, cutime and cstime are fields 14 to 17 of stat; the split above starts
    # at field 3.
    used = int(fields[11]) + int(fields[12])
    if reaped_children:
        used += int(fields[13]) + int(fields[14])
    return used / TICKS


def children_of(parent):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append(int(entry))
    return found


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def reading(services_dir):
    out = {"at": time.monotonic()}
    for name, pidfile in (("nats", "nats.pid"), ("redis", "redis.pid")):
        pid = read_pid(os.path.join(services_dir, pidfile))
        out[name] = cpu_seconds(pid) if pid else None
    postmaster = read_pid(os.path.join(services_dir, "pg", "postmaster.pid"))
    if postmaster:
        total = cpu_seconds(postmaster, reaped_children=True) or 0.0
        for pid in children_of(postmaster):
            total += cpu_seconds(pid) or 0.0
        out["postgresql"] = total
    else:
        out["postgresql"] = None
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "mark":
        print(json.dumps(reading(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "since":
        with open(sys.argv[3]) as f:
            before = json.load(f)
        now = reading(sys.argv[2])
        wall_s = now["at"] - before["at"]
        parts = []
        for name in ("nats", "redis", "postgresql"):
            if before.get(name) is None or now.get(name) is None or wall_s <= 0:
                parts.append(f"{name} -")
            else:
                parts.append(f"{name} {(now[name] - before[name]) / wall_s:.3f}")
        print(f"services' CPU over {wall_s:.0f} s (cores; PostgreSQL may read low, see "
              f"ci/service_cpu.py): " + ", ".join(parts))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
