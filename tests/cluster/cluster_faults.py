#!/usr/bin/env python3
"""Cluster fault tests: gateway -> aggregator -> alerter, each its own `cybersyn` process, on a
real 3-broker Kafka cluster (deploy/local/kafka.sh start --brokers 3: replication 3,
min.insync.replicas=2), with a fault injected mid-stream. Per scenario it checks exact totals:

  * the gateway exits 0 having confirmed every one of the N records of its CSV;
  * the unit-level aggregates (read_committed, last value per window) count exactly N records and
    sum exactly the CSV's values: nothing lost, nothing counted twice;
  * no signal is raised twice (signals stay open, so each node raises at most once), and the
    record that breaks `thresholds.max` raised one at its unit;
and prints the longest stall: the longest time the aggregator's applied-record count did not move
while records were still to come.

Scenarios (--scenarios, comma-separated; default all):
  leader_kill   kill -9 the broker leading records partition 0, start it again 15 s later
  rolling       a rolling restart of the three brokers (stop, start, next)
  two_down      stop two of three brokers for 25 s (below min.insync.replicas: the gateway buffers
                to disk, the roles wait), then start them
  zombie        SIGSTOP the leader of records partition 0 for 25 s (past the aggregator's 6 s
                session timeout and the brokers' 9 s session), then SIGCONT
  coordinator   kill -9 the transaction coordinator of the aggregator's transactional id while its
                transactions are in flight, start it again 15 s later
  partition     the aggregator's own connections to every broker go through
                tests/cluster/fault_proxy.py: 300 ms delay and 5 % loss for 10 s, then a partition
                for 20 s (past its 6 s session timeout); a second aggregator instance on direct
                connections takes over; the partitioned one is fenced when it comes back

  cluster_faults.py --cybersyn build/cli/cybersyn [--scenarios leader_kill,zombie] [--records 600]

Python 3 standard library only (plus kcat, Java and Maven for the brokers, as kafka.sh needs).
Bounded: each scenario gives up after --timeout seconds. Cleans up its brokers and processes.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "chaos"))
sys.path.insert(0, HERE)
import soak  # noqa: E402  (wire-format decoding, topic reading, process handling)
from fault_proxy import FaultProxy  # noqa: E402

KAFKA_SH = os.path.join(ROOT, "deploy", "local", "kafka.sh")
UNITS = ["cl/e1/u1", "cl/e1/u2", "cl/e2/u1", "cl/e2/u2", "cl/e3/u1", "cl/e3/u2"]
# Windows close this long after their end: it must cover the longest fault (a stalled stream is
# delayed, not late), and it bounds how long each scenario waits for its last windows.
LATENESS_S = 90
ALL = ["leader_kill", "rolling", "two_down", "zombie", "coordinator", "partition"]


def log(msg):
    print(f"[cluster {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kafka(kdir, *args, timeout=300):
    p = subprocess.run([KAFKA_SH, *args, "--dir", kdir], capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"kafka.sh {' '.join(args)}: {p.stderr[-800:]}")
    return p.stdout.strip()


def java_string_hash(s):
    h = 0
    for unit in s.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_of(kdir, transactional_id, state_partitions=4):
    """The broker leading __transaction_state's partition for the id (Kafka's
    Utils.abs(id.hashCode) % partitions)."""
    h = java_string_hash(transactional_id)
    p = 0 if h == -(1 << 31) else abs(h) % state_partitions
    return int(kafka(kdir, "leader", "__transaction_state", str(p)))


def config_yaml(bootstrap, prefix, work):
    return f"""kafka: {{bootstrap: "{bootstrap}", topic_prefix: {prefix}, partitions: 4,
        replication_factor: 3}}
levels:
  - {{name: nation, ack_within: 1h, resolve_within: 5h}}
  - {{name: enterprise, ack_within: 1h, resolve_within: 5h}}
  - {{name: unit, ack_within: 1h, resolve_within: 5h}}
hierarchy:
  cl:
    children:
      e1: {{children: {{u1: {{}}, u2: {{}}}}}}
      e2: {{children: {{u1: {{}}, u2: {{}}}}}}
      e3: {{children: {{u1: {{}}, u2: {{}}}}}}
indicators:
  - {{name: output, unit: t, rollup: sum, thresholds: {{max: 1000}}, detector: {{kind: none}}}}
operators:
  - {{name: planning, subtree: cl, token: cluster-test-token}}
aggregator:
  windows: [10s]
  allowed_lateness: {LATENESS_S}s
  grace: 1s
  idle_advance: 2s
  state_dir: {work}/agg
  memory_limit: 32MiB
alerter:
  state_dir: {work}/alert
  warmup: 2
  auto_resolve_after: 100000
gateway:
  id: gw-cluster
  buffer_dir: {work}/gw
  buffer_max_bytes: 64MiB
"""


def write_csv(path, records, rate):
    """records rows over the units at `rate` per second of event time from a few seconds from now,
    as the gateway will send them (--rate): event time follows the wall clock, so a stalled
    stream is delayed, not late. One value breaks thresholds.max."""
    t0 = time.time() + 5
    total = 0.0
    with open(path, "w") as f:
        f.write("node,indicator,value,time\n")
        for i in range(records):
            v = 5000 if i == records // 2 else 10 + (i % 7)
            total += v
            t = t0 + i / rate
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
            f.write(f"{UNITS[i % len(UNITS)]},output,{v},{ts}\n")
    return total


class Scenario:
    def __init__(self, name, args, kdir, proxies, work):
        self.name, self.args, self.kdir, self.proxies = name, args, kdir, proxies
        self.work = os.path.join(work, name)
        os.makedirs(self.work)
        self.prefix = f"cl-{name}-{int(time.time())}"
        # Everything but a partitioned aggregator bypasses the proxies.
        self.direct = open(os.path.join(kdir, "bootstrap_internal")).read().strip()
        self.proxied = open(os.path.join(kdir, "bootstrap")).read().strip()
        self.config = os.path.join(self.work, "config.yaml")
        with open(self.config, "w") as f:
            f.write(config_yaml(self.direct, self.prefix, self.work))
        self.csv = os.path.join(self.work, "input.csv")
        self.total = write_csv(self.csv, args.records, args.rate)
        self.breach_unit = UNITS[(args.records // 2) % len(UNITS)]
        self.roles = []

    def role(self, name, argv, metrics=True):
        port = soak.free_port() if metrics else None
        if metrics:
            argv = argv + ["--metrics", f"127.0.0.1:{port}"]
        r = soak.Role(name, argv, os.path.join(self.work, f"{name}.log"), metrics_port=port)
        self.roles.append(r)
        r.start()
        return r

    def aggregator(self, instance, bootstrap):
        return self.role(f"aggregator-{instance}",
                         [self.args.cybersyn, "aggregator", "--config", self.config,
                          "--brokers", bootstrap, "--instance-id", instance,
                          "--state-dir", os.path.join(self.work, f"agg-{instance}")])

    def run(self):
        b = self.args.cybersyn
        p = subprocess.run([b, "kafka", "topics", "--config", self.config], capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"kafka topics: {p.stderr}")
        agg_bootstrap = self.proxied if self.name == "partition" else self.direct
        aggs = [self.aggregator("a1", agg_bootstrap)]
        self.role("alerter", [b, "alerter", "--config", self.config, "--instance-id", "l1",
                              "--state-dir", os.path.join(self.work, "alerter"),
                              "--listen-grpc", f"127.0.0.1:{soak.free_port()}"])
        if aggs[0].wait_ready(120) is None:
            raise RuntimeError("aggregator a1 not ready in 120 s")
        gw = self.role("gateway", [b, "gateway", "--config", self.config, "--input",
                                   f"csv:{self.csv}", "--rate", str(self.args.rate),
                                   "--buffer-dir", os.path.join(self.work, "gw")], metrics=False)
        t0 = time.time()
        stream_s = self.args.records / self.args.rate
        fault_at = t0 + min(8.0, stream_s / 4)
        faulted = False
        applied_last, moved_at, longest_stall = 0.0, time.time(), 0.0
        deadline = t0 + self.args.timeout
        while time.time() < deadline:
            if not faulted and time.time() >= fault_at:
                faulted = True
                self.inject(aggs)
            samples = [a.metric_sum('cybersyn_aggregator_records_total{outcome="applied"}')
                       for a in aggs if a.alive()]
            now = time.time()
            if not samples or None in samples:
                time.sleep(0.5)  # a scrape that failed (or an instance restarting) tells nothing
                continue
            applied = sum(samples)
            if applied != applied_last:
                applied_last, moved_at = applied, now
            if applied < self.args.records:  # a stall: records still to come
                longest_stall = max(longest_stall, now - moved_at)
            if not gw.alive() and faulted and self.settled():
                break
            time.sleep(0.5)
        self.longest_stall = longest_stall
        gw_rc = gw.proc.wait(timeout=max(1, deadline - time.time())) if gw.alive() else gw.proc.returncode
        return self.check(gw_rc)

    def settled(self):
        counts = self.unit_counts()
        return counts[0] >= self.args.records

    def unit_counts(self):
        latest = {}
        for v in soak.read_topic(self.direct, f"{self.prefix}.aggregates"):
            key, canon, count = soak.decode_aggregate(v)
            if canon.get(15, [0])[-1] != 2:  # level: unit
                continue
            latest[key] = (count, canon.get(5, [0.0])[-1])
        return sum(c for c, _ in latest.values()), sum(s for _, s in latest.values())

    def check(self, gw_rc):
        problems = []
        with open(os.path.join(self.work, "gateway.log"), errors="replace") as f:
            gw_log = f.read()
        if gw_rc != 0 or f"gateway: confirmed {self.args.records} records" not in gw_log:
            problems.append(f"gateway exit {gw_rc}, not 'confirmed {self.args.records} records'")
        count, total = self.unit_counts()
        if count != self.args.records or abs(total - self.total) > 1e-6:
            problems.append(f"unit aggregates count {count} sum {total}; expected "
                            f"{self.args.records} and {self.total}")
        raised = [e["node"] for e in (soak.decode_signal_event(v) for v in
                                      soak.read_topic(self.direct, f"{self.prefix}.signals"))
                  if e["t_kind"] == soak.T_RAISED]
        # Signals stay open (auto_resolve_after is huge), so each node raises at most once: a node
        # raised twice is a duplicate. The breaching unit must be among them.
        twice = sorted({n for n in raised if raised.count(n) > 1})
        if twice:
            problems.append(f"duplicate signals: {twice} raised more than once ({raised})")
        if self.breach_unit not in raised:
            problems.append(f"no signal at {self.breach_unit}, whose record broke max ({raised})")
        self.raised = raised
        return problems

    # ------------------------------------------------------------------------- faults
    def inject(self, aggs):
        k = self.kdir
        if self.name == "leader_kill":
            n = int(kafka(k, "leader", f"{self.prefix}.records", "0"))
            log(f"{self.name}: kill -9 broker {n} (leader of records[0])")
            kafka(k, "kill", str(n))
            time.sleep(15)
            kafka(k, "start", str(n))
        elif self.name == "rolling":
            for n in (1, 2, 3):
                log(f"{self.name}: restarting broker {n}")
                kafka(k, "restart", str(n))
                time.sleep(5)
        elif self.name == "two_down":
            log(f"{self.name}: stopping brokers 2 and 3 for 25 s")
            kafka(k, "kill", "2")
            kafka(k, "kill", "3")
            time.sleep(25)
            kafka(k, "start", "2")
            kafka(k, "start", "3")
        elif self.name == "zombie":
            n = int(kafka(k, "leader", f"{self.prefix}.records", "0"))
            log(f"{self.name}: SIGSTOP broker {n} (leader of records[0]) for 25 s")
            kafka(k, "pause", str(n))
            time.sleep(25)
            kafka(k, "resume", str(n))
        elif self.name == "coordinator":
            tid = f"{self.prefix}.aggregator.a1"
            n = coordinator_of(k, tid)
            log(f"{self.name}: kill -9 broker {n} (transaction coordinator of {tid})")
            kafka(k, "kill", str(n))
            time.sleep(15)
            kafka(k, "start", str(n))
        elif self.name == "partition":
            log(f"{self.name}: aggregator a1's links: 300 ms delay, 5 % loss for 10 s")
            for p in self.proxies:
                p.delay_ms, p.loss = 300, 0.05
            time.sleep(10)
            log(f"{self.name}: a1 partitioned from every broker; a2 starts on direct links")
            for p in self.proxies:
                p.delay_ms, p.loss, p.partition = 0, 0.0, True
            aggs.append(self.aggregator("a2", self.direct))
            time.sleep(20)
            log(f"{self.name}: healed; a1 reconnects (and must find itself fenced)")
            for p in self.proxies:
                p.partition = False
                p.cut()

    def stop(self):
        for r in self.roles:
            r.terminate()


def main():
    # SIGTERM (ctest's timeout) cleans up like Ctrl-C: brokers and roles are stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cybersyn", required=True)
    ap.add_argument("--scenarios", default=",".join(ALL))
    ap.add_argument("--records", type=int, default=1200)
    ap.add_argument("--rate", type=float, default=20, help="gateway records/s (wall clock)")
    ap.add_argument("--timeout", type=float, default=300, help="per scenario, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    for s in names:
        if s not in ALL:
            sys.exit(f"unknown scenario {s!r} (one of {', '.join(ALL)})")
    work = tempfile.mkdtemp(prefix="cybersyn-cluster-")
    kdir = os.path.join(work, "kafka")
    proxies = []
    failed = []
    try:
        # Proxies first, so the brokers can advertise them; they forward to the client ports
        # kafka.sh picks, known once the cluster is laid out.
        ports = [soak.free_port() for _ in range(3)]
        t0 = time.time()
        kafka(kdir, "start", "--brokers", "3",
              *sum((["--advertise", f"{i + 1}=127.0.0.1:{p}"] for i, p in enumerate(ports)), []))
        log(f"3-broker cluster up in {time.time() - t0:.1f} s ({kdir})")
        for i, p in enumerate(ports):
            target = open(os.path.join(kdir, str(i + 1), "bootstrap")).read().strip()
            host, port = target.rsplit(":", 1)
            proxies.append(FaultProxy(p, (host, int(port)), seed=i).start())
        for name in names:
            s = Scenario(name, args, kdir, proxies, work)
            t1 = time.time()
            try:
                problems = s.run()
            except Exception as e:  # a broken scenario must not hide the others' results
                problems = [f"{type(e).__name__}: {e}"]
            finally:
                s.stop()
                kafka(kdir, "start")  # every broker back (no-op for running ones)
                for p in proxies:
                    p.delay_ms, p.loss, p.partition = 0, 0.0, False
            took = time.time() - t1
            stall = getattr(s, "longest_stall", float("nan"))
            if problems:
                failed.append(name)
                log(f"{name}: FAIL after {took:.0f} s (longest stall {stall:.1f} s): "
                    + "; ".join(problems))
                for r in s.roles:
                    with open(r.log_path, errors="replace") as f:
                        print(f"--- {r.name} log (tail) ---\n{f.read()[-2500:]}", flush=True)
            else:
                log(f"{name}: ok in {took:.0f} s: {args.records} records, exact totals, signals "
                    f"raised once each at {sorted(set(s.raised))}; longest stall {stall:.1f} s")
    finally:
        for p in proxies:
            p.stop()
        try:
            kafka(kdir, "stop", timeout=120)
        except Exception as e:
            log(f"stopping the cluster: {e}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        sys.exit(1)
    log("all scenarios passed")


if __name__ == "__main__":
    main()
