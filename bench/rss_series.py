#!/usr/bin/env python3
"""Peak RSS of the aggregator and the alerter processes per active series.

Runs the real `cybersyn` roles (gateway with the simulator, one aggregator, one alerter) against
a real Kafka broker twice: a baseline deployment with few series and one with many (default
100,000 unit series: 25,000 units x 4 indicators), each series reporting for a few 1-minute
windows. Samples every process's RSS from /proc (VmRSS every 0.25 s, VmHWM at the end) and
prints the peaks, the bytes per series ((peak - baseline peak) / (series - baseline series)) and
the ratio of the peaks; exits 1 when a peak exceeds --cap-mib.

  bench/rss_series.py --binary build/cli/cybersyn                  # own broker, 100k series
  bench/rss_series.py --binary ... --brokers 127.0.0.1:9092         # an existing broker

Python 3 standard library only; needs deploy/local/kafka.sh (and Java/Maven) without --brokers.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDICATORS = ["output", "capacity", "potential", "energy"]


def log(msg):
    print(f"[rss {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def metric(port, name):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except Exception:  # not up yet
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def proc_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def config_yaml(bootstrap, prefix, work, sectors, enterprises, units, memory_limit):
    lines = [
        f'kafka: {{bootstrap: "{bootstrap}", topic_prefix: {prefix}, partitions: 4}}',
        "levels:",
        "  - {name: nation, ack_within: 60m, resolve_within: 5h}",
        "  - {name: sector, ack_within: 40m, resolve_within: 4h}",
        "  - {name: enterprise, ack_within: 20m, resolve_within: 3h}",
        "  - {name: unit, ack_within: 10m, resolve_within: 2h}",
        "hierarchy:",
        "  sim:",
        "    children:",
    ]
    for s in range(sectors):
        lines.append(f"      s{s}:")
        lines.append("        children:")
        for e in range(enterprises):
            kids = ", ".join(f"u{u}: {{}}" for u in range(units))
            lines.append(f"          e{e}: {{children: {{{kids}}}}}")
    lines += ["indicators:"]
    lines += [f"  - {{name: {i}, unit: t, rollup: sum}}" for i in INDICATORS]
    lines += [
        "gateway:",
        "  id: rss-gw",
        f"  buffer_dir: {work}/gateway",
        "aggregator:",
        "  windows: [1m]",
        "  allowed_lateness: 30s",
        "  grace: 2s",
        "  idle_advance: 3s",
        f"  state_dir: {work}/aggregator",
        f"  memory_limit: {memory_limit}",
        "alerter:",
        f"  state_dir: {work}/alerter",
        "  warmup: 2",
    ]
    return "\n".join(lines) + "\n"


def run_size(args, bootstrap, root, name, sectors, enterprises, units):
    work = os.path.join(root, name)
    os.makedirs(work, exist_ok=True)
    prefix = f"rss-{name}-{int(time.time())}"
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write(config_yaml(bootstrap, prefix, work, sectors, enterprises, units,
                            args.memory_limit))
    sim = os.path.join(work, "sim.yaml")
    with open(sim, "w") as f:
        f.write(f"preset: bench\ninterval: {args.interval_s}s\nfaults: {{per_series_per_day: 0}}\n")
    unit_series = sectors * enterprises * units * len(INDICATORS)
    nodes = 1 + sectors + sectors * enterprises + sectors * enterprises * units
    all_series = nodes * len(INDICATORS)
    subprocess.run([args.binary, "kafka", "topics", "--config", config], check=True,
                   capture_output=True, timeout=120)
    start_ms = (int(time.time()) // 3600 - 2) * 3600 * 1000  # historical, whole minutes
    t0 = time.time()
    gw = subprocess.run([args.binary, "gateway", "--config", config, "--input", f"sim:{sim}",
                         "--seed", "7", "--start", str(start_ms),
                         "--duration", f"{args.windows}m", "--buffer-dir",
                         os.path.join(work, "buf")], capture_output=True, text=True, timeout=1800)
    if gw.returncode != 0:
        raise RuntimeError(f"gateway failed: {gw.stderr[-1000:]}")
    log(f"{name}: {unit_series} unit series ({all_series} with roll-ups), "
        f"{gw.stderr.strip().splitlines()[-1]} in {time.time() - t0:.0f} s")
    procs = {}
    ports = {}
    for role in ("aggregator", "alerter"):
        ports[role] = free_port()
        argv = [args.binary, role, "--config", config, "--metrics", f"127.0.0.1:{ports[role]}",
                "--log-level", "warn"]
        if role == "aggregator":
            argv += ["--instance-id", "rss"]
        else:
            argv += ["--listen-grpc", f"127.0.0.1:{free_port()}"]
        procs[role] = subprocess.Popen(argv, stdout=open(os.path.join(work, role + ".log"), "w"),
                                       stderr=subprocess.STDOUT)
    peak = {r: 0 for r in procs}
    t0 = time.time()
    done_at = None
    last = None
    try:
        while time.time() - t0 < args.timeout:
            for r, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{r} exited with {p.returncode}; see {work}/{r}.log")
                peak[r] = max(peak[r], proc_kib(p.pid, "VmRSS") or 0)
            tracked = metric(ports["alerter"], "cybersyn_alerter_series_tracked")
            aggs = metric(ports["alerter"], "cybersyn_alerter_aggregates_total")
            now = (tracked, aggs)
            # Settled: every series seen (or nothing moved for 10 s after the first aggregates).
            if tracked and aggs and now == last:
                if done_at is None:
                    done_at = time.time()
                elif time.time() - done_at > (3 if tracked >= all_series else 10):
                    break
            else:
                done_at = None
            last = now
            time.sleep(0.25)
        else:
            raise RuntimeError(f"{name}: the alerter tracked {last} series after {args.timeout} s")
        hwm = {r: proc_kib(p.pid, "VmHWM") for r, p in procs.items()}
        open_windows = metric(ports["aggregator"], "cybersyn_aggregator_open_windows")
        rocks = metric(ports["aggregator"], "cybersyn_aggregator_rocksdb_memory_bytes")
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    log(f"{name}: done in {time.time() - t0:.0f} s; peak RSS aggregator "
        f"{hwm['aggregator'] / 1024:.0f} MiB, alerter {hwm['alerter'] / 1024:.0f} MiB "
        f"(aggregator RocksDB {0 if rocks is None else rocks / 2**20:.0f} MiB, open windows "
        f"{open_windows})")
    return {"unit_series": unit_series, "series": all_series, "peak_kib": hwm, "tracked": last[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(SOURCE_DIR, "build", "cli", "cybersyn"))
    ap.add_argument("--brokers", default="", help="default: start a broker (deploy/local/kafka.sh)")
    ap.add_argument("--units", type=int, default=25_000, help="units (x 4 indicators = series)")
    ap.add_argument("--baseline-units", type=int, default=250)
    ap.add_argument("--windows", type=int, default=3, help="1-minute windows of input per series")
    ap.add_argument("--interval-s", type=int, default=30, help="sim: seconds between samples")
    ap.add_argument("--memory-limit", default="64MiB", help="aggregator RocksDB memory cap")
    ap.add_argument("--cap-mib", type=float, default=1024, help="peak RSS cap per process")
    ap.add_argument("--timeout", type=int, default=900)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    root = tempfile.mkdtemp(prefix="cybersyn-rss-")
    kafka_dir = os.path.join(root, "kafka")
    script = os.path.join(SOURCE_DIR, "deploy", "local", "kafka.sh")
    bootstrap = args.brokers
    try:
        if not bootstrap:
            bootstrap = subprocess.run([script, "start", "--dir", kafka_dir], check=True,
                                       capture_output=True, text=True).stdout.strip().split()[-1]
        # 10 sectors x 25 enterprises x N units.
        base = run_size(args, bootstrap, root, "baseline", 10, 25,
                        max(1, args.baseline_units // 250))
        big = run_size(args, bootstrap, root, "big", 10, 25, max(1, args.units // 250))
    finally:
        if not args.brokers:
            subprocess.run([script, "stop", "--dir", kafka_dir], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    failed = False
    print("==== peak RSS per active series ====")
    for role in ("aggregator", "alerter"):
        b, g = base["peak_kib"][role] * 1024, big["peak_kib"][role] * 1024
        per = (g - b) / max(1, big["series"] - base["series"])
        over = g > args.cap_mib * 2**20
        failed |= over
        print(f"{role:10s}: {base['series']:7d} series -> {b / 2**20:7.1f} MiB; "
              f"{big['series']:7d} series -> {g / 2**20:7.1f} MiB; "
              f"{per:7.0f} bytes/series; ratio {g / b:5.2f}x; cap {args.cap_mib:.0f} MiB "
              f"{'EXCEEDED' if over else 'ok'}")
    print(f"(unit series: {base['unit_series']} and {big['unit_series']}; series incl. "
          f"roll-ups: {base['series']} and {big['series']}; 1 window size)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
