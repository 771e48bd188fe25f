#!/usr/bin/env python3
"""Chaos soak: the whole pipeline as separate `cybersyn` processes against a real Kafka broker,
under sustained simulated load, while a seeded schedule kill -9s every role, restarts the broker
and stalls processes (SIGSTOP) past their consumer-group session timeout. Then a fault-free
reference run over the same simulated input (same seed and start) and a comparison:

  * every window's aggregate (all levels, read_committed, last value per key) equals the
    reference's, field for field (only closed_at_ms, a processing time, is ignored);
  * every record the reference gateway produced was confirmed in the chaos run;
  * every injected fault the detector caught in the reference produced exactly one signal
    (one RAISED transition) in the chaos run, and the chaos run raised exactly the reference's
    signals;
  * no escalation timer was lost: at the end no open signal below the top level has an ack or
    resolve deadline in the past, and no signal escalated twice from the same node.

It prints a report (records in/confirmed, kills survived, restarts, max restore time, max
consumer lag, mismatches) and exits 1 when anything mismatched or a role failed.

Independent of Cybersyn internals: it drives the `cybersyn` binary's roles, reads topics with
kcat and decodes the few protobuf fields it needs itself (wire format, field numbers from
proto/cybersyn/v1). Python 3 standard library only.

  tests/chaos/soak.py --binary build/cli/cybersyn --duration 600   # the 10-minute soak
  tests/chaos/soak.py --binary build/cli/cybersyn --duration 120   # what CI runs (ctest -L chaos)
"""

import argparse
import collections
import csv
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))

AGG_SESSION_TIMEOUT_S = 6  # the aggregator's session.timeout.ms (aggregator.cc)
ALERTER_SESSION_TIMEOUT_S = 45  # librdkafka's default, which the alerter keeps
DEPLOYMENTS = []  # stopped on the way out, whatever happened
LATENESS_S = 90  # covers a broker restart under load (56 s seen)
LARGEST_WINDOW_S = 30
GRACE_S = 5
IDLE_S = 5
# Detectors learn their baseline from this many windows (their default, 30, is 5 minutes of 10 s
# windows: a 2-minute run could never raise a signal, and its fault -> signal check was vacuous).
DETECTOR_WARMUP = 6


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- protobuf wire format (minimal)

def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def pb_fields(buf):
    """Field number -> list of raw values (int for varint, bytes for length-delimited,
    float for fixed64 doubles, int for fixed32)."""
    out = collections.defaultdict(list)
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v = struct.unpack_from("<d", buf, i)[0]
            i += 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 5:
            v = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out[num].append(v)
    return out


def _one(f, num, default=0):
    v = f.get(num)
    return v[-1] if v else default


def _str(f, num):
    return _one(f, num, b"").decode()


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_aggregate(value):
    f = pb_fields(value)
    s = pb_fields(_one(f, 1, b""))
    key = (_str(s, 1), _str(s, 2), _signed(_one(s, 3)), _signed(_one(f, 2)))
    canon = {k: v for k, v in f.items() if k != 17}  # 17 = closed_at_ms (processing time)
    return key, canon, _one(f, 4)


def decode_signal_event(value):
    f = pb_fields(value)
    s = pb_fields(_one(f, 1, b""))
    t = pb_fields(_one(f, 2, b""))
    series = pb_fields(_one(s, 2, b""))
    return {
        "id": _str(s, 1),
        "node": _str(series, 1), "indicator": _str(series, 2), "window_ms": _one(series, 3),
        "kind": _one(s, 3), "origin": _str(s, 11), "current": _str(s, 12),
        "level": _one(s, 13), "state": _one(s, 15),
        "ack_deadline": _signed(_one(s, 17)), "resolve_deadline": _signed(_one(s, 18)),
        "window_start": _signed(_one(s, 21)),
        "t_kind": _one(t, 1), "t_at": _signed(_one(t, 2)), "t_from": _str(t, 5),
    }


def decode_records(value):
    f = pb_fields(value)
    out = []
    for r in f.get(3, []):
        rf = pb_fields(r)
        out.append((_str(rf, 1), _str(rf, 2), _signed(_one(rf, 4)), _one(rf, 3, 0.0)))
    return out


T_RAISED, T_ACK, T_ESCALATED, T_RESOLVED = 1, 3, 4, 5
S_RESOLVED = 4
KIND_NAMES = {1: "step", 2: "slope", 3: "transient", 4: "threshold", 5: "no_data", 6: "reward"}


def deadletter_reasons(bootstrap, topic, timeout=120):
    """Counter of the `reason` header of the dead-letter topic's messages."""
    cmd = ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
           "-X", "isolation.level=read_committed", "-f", "%h\n"]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    out = collections.Counter()
    for line in p.stdout.decode(errors="replace").splitlines():
        for h in line.split(","):
            if h.startswith("reason="):
                out[h[len("reason="):]] += 1
    return out


def read_topic(bootstrap, topic, timeout=120):
    """All committed messages of `topic` (values), via kcat, read_committed."""
    cmd = ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
           "-X", "isolation.level=read_committed", "-f", "%p %o %S\n%s"]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"kcat {topic}: {p.stderr.decode(errors='replace')[-500:]}")
    data, i, out = p.stdout, 0, []
    while i < len(data):
        nl = data.index(b"\n", i)
        _, _, size = data[i:nl].split(b" ")
        size = int(size)
        i = nl + 1
        if size < 0:
            continue  # tombstone
        out.append(data[i:i + size])
        i += size
    return out


# ---------------------------------------------------------------- processes

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except Exception:  # refused, timed out, stalled process
        return 0, ""


class Role:
    """One `cybersyn` process, restartable; stdout+stderr appended to its log."""

    def __init__(self, name, argv, log_path, metrics_port=None, env=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.metrics_port = metrics_port
        self.env = env
        self.proc = None
        self.starts = 0
        self.kills = 0
        self.stops = 0
        self.restore_times = []
        self.unexpected_exits = []
        self.done = False  # a finite role (the gateway) that finished with exit 0

    def start(self):
        with open(self.log_path, "ab") as f:
            f.write(f"---- start #{self.starts + 1} at {time.time():.3f}\n".encode())
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        self.started_at = time.time()
        self.starts += 1

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if not self.alive():
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1
        return True

    def terminate(self, timeout=15):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def wait_ready(self, timeout=120):
        """Seconds from now until /readyz answers 200 (restore finished), or None."""
        if self.metrics_port is None:
            return 0.0
        t0 = time.time()
        while time.time() - t0 < timeout:
            if not self.alive():
                return None
            code, _ = http_get(f"http://127.0.0.1:{self.metrics_port}/readyz", 0.5)
            if code == 200:
                return time.time() - t0
            time.sleep(0.1)
        return None

    def metric_sum(self, name):
        if self.metrics_port is None or not self.alive():
            return None
        code, text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics", 0.5)
        if code != 200:
            return None
        total, seen = 0.0, False
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
        return total if seen else None


class Broker:
    def __init__(self, kafka_dir):
        self.dir = kafka_dir
        self.script = os.path.join(SOURCE_DIR, "deploy", "local", "kafka.sh")
        self.restarts = 0
        self.restart_times = []

    def run(self, action):
        t0 = time.time()
        p = subprocess.run([self.script, action, "--dir", self.dir], capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"kafka.sh {action}: {p.stderr[-800:]}")
        return p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "", time.time() - t0

    def start(self):
        self.bootstrap, secs = self.run("start")
        log(f"broker up at {self.bootstrap} in {secs:.1f} s")
        return self.bootstrap

    def restart(self):
        _, secs = self.run("restart")
        self.restarts += 1
        self.restart_times.append(secs)
        return secs

    def stop(self):
        self.run("stop")


# ---------------------------------------------------------------- deployment

def config_yaml(bootstrap, prefix, state_root):
    return f"""# generated by tests/chaos/soak.py
kafka: {{bootstrap: "{bootstrap}", topic_prefix: {prefix}, partitions: 4}}
levels:
  - {{name: nation, ack_within: 60s, resolve_within: 5m}}
  - {{name: sector, ack_within: 40s, resolve_within: 4m}}
  - {{name: enterprise, ack_within: 30s, resolve_within: 3m}}
  - {{name: unit, ack_within: 20s, resolve_within: 2m}}
hierarchy:
  cl:
    children:
      textiles:
        children:
          yarur: {{children: {{spinning: {{}}, weaving: {{}}}}}}
          sumar: {{children: {{spinning: {{}}, weaving: {{}}}}}}
      mining:
        children:
          chuqui: {{children: {{extraction: {{}}, smelter: {{}}}}}}
          teniente: {{children: {{extraction: {{}}, smelter: {{}}}}}}
indicators:
  - {{name: output, unit: t, rollup: sum, role: actuality,
     detector: {{kind: cyberstride, params: {{warmup: {DETECTOR_WARMUP}}}}}}}
  - {{name: capacity, unit: t, rollup: sum, role: capability}}
  - {{name: potential, unit: t, rollup: sum, role: potentiality, detector: {{kind: none}}}}
  - {{name: energy, unit: MWh, rollup: sum, thresholds: {{min: 0}},
     detector: {{kind: ewma, params: {{warmup: {DETECTOR_WARMUP}}}}}}}
operators:
  - {{name: planning, subtree: cl, token: soak-cl}}
gateway:
  id: soak-gw
  buffer_dir: {state_root}/gateway
aggregator:
  windows: [10s, 30s]
  allowed_lateness: {LATENESS_S}s
  grace: {GRACE_S}s
  idle_advance: {IDLE_S}s
  state_dir: {state_root}/aggregator
  memory_limit: 32MiB
alerter:
  state_dir: {state_root}/alerter
  warmup: 6
  auto_resolve_after: 3
"""


# What config_yaml declares, for the aggregates a run must produce: every node at every level,
# the four indicators (all rolled up) and Beer's three indices (A/C/P are all configured), per
# window size.
SOAK_NODES = ["cl", "cl/textiles", "cl/mining"] + [
    f"cl/{sector}/{ent}" + unit
    for sector, ents in (("textiles", ("yarur", "sumar")), ("mining", ("chuqui", "teniente")))
    for ent in ents
    for unit in ([""] + [f"/{u}" for u in (("spinning", "weaving") if sector == "textiles"
                                            else ("extraction", "smelter"))])]
SOAK_INDICATORS = ["output", "capacity", "potential", "energy",
                   "productivity", "latency", "performance"]
WINDOWS_S = [10, LARGEST_WINDOW_S]
MIN_COVERAGE = 0.9  # of the implied aggregates the reference must have produced


def implied_aggregates(start_ms, duration_s):
    """(node, indicator, window_ms, window_start_ms) of every window that lies wholly inside the
    run's event time, for every series the config declares."""
    end_ms = start_ms + duration_s * 1000
    keys = []
    for w_s in WINDOWS_S:
        w = w_s * 1000
        first = -(-start_ms // w) * w
        for ws in range(first, end_ms - w + 1, w):
            keys += [(n, i, w, ws) for n in SOAK_NODES for i in SOAK_INDICATORS]
    return keys


def sim_yaml(speedup, interval_ms, faults_per_day, size_min, size_max):
    return f"""preset: small
speedup: {speedup}
interval: {interval_ms}ms
faults: {{per_series_per_day: {faults_per_day}, step: 0.6, slope: 0.3, transient: 0.1, outage: 0,
         size_min: {size_min}, size_max: {size_max}, min_duration: 30s, max_duration: 90s}}
"""


class Deployment:
    """One topic prefix with its config, sim file and the roles over it."""

    def __init__(self, work, name, bootstrap, binary, args, speedup):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.prefix = f"soak{args.seed}-{name}-{int(time.time())}"
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(config_yaml(bootstrap, self.prefix, self.dir))
        self.sim = os.path.join(self.dir, "sim.yaml")
        with open(self.sim, "w") as f:
            f.write(sim_yaml(speedup, args.interval_ms, args.faults_per_day,
                             args.fault_size_min, args.fault_size_max))
        self.truth = os.path.join(self.dir, "truth.csv")
        self.bootstrap = bootstrap
        self.binary = binary
        self.args = args
        self.roles = {}
        DEPLOYMENTS.append(self)

    def gateway(self, start_ms):
        argv = [self.binary, "gateway", "--config", self.config, "--input", f"sim:{self.sim}",
                "--seed", str(self.args.seed), "--start", str(start_ms),
                "--duration", f"{self.args.duration}s", "--truth", self.truth,
                "--buffer-dir", os.path.join(self.dir, "gateway-buffer")]
        r = Role("gateway", argv, os.path.join(self.dir, "gateway.log"))
        self.roles[r.name] = r
        return r

    def aggregator(self, instance):
        port = free_port()
        argv = [self.binary, "aggregator", "--config", self.config, "--instance-id", instance,
                "--state-dir", os.path.join(self.dir, f"agg-{instance}"),
                "--metrics", f"127.0.0.1:{port}", "--log-level", "info"]
        r = Role(f"aggregator-{instance}", argv, os.path.join(self.dir, f"agg-{instance}.log"),
                 metrics_port=port)
        self.roles[r.name] = r
        return r

    def alerter(self, instance):
        port = free_port()
        argv = [self.binary, "alerter", "--config", self.config, "--instance-id", instance,
                "--state-dir", os.path.join(self.dir, f"alerter-{instance}"),
                "--metrics", f"127.0.0.1:{port}",
                "--listen-grpc", f"127.0.0.1:{free_port()}", "--log-level", "info"]
        r = Role(f"alerter-{instance}", argv, os.path.join(self.dir, f"alerter-{instance}.log"),
                 metrics_port=port)
        self.roles[r.name] = r
        return r

    def topic(self, suffix):
        return f"{self.prefix}.{suffix}"

    def ensure_topics(self):
        p = subprocess.run([self.binary, "kafka", "topics", "--config", self.config],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"cybersyn kafka topics: {p.stderr}")

    def read_aggregates(self):
        out = {}
        for v in read_topic(self.bootstrap, self.topic("aggregates")):
            key, canon, _ = decode_aggregate(v)
            out[key] = canon
        return out

    def read_signal_events(self):
        return [decode_signal_event(v) for v in read_topic(self.bootstrap, self.topic("signals"))]

    def read_record_keys(self):
        keys = set()
        total = 0
        for v in read_topic(self.bootstrap, self.topic("records")):
            for node, ind, t, value in decode_records(v):
                keys.add((node, ind, t, value))
                total += 1
        return keys, total

    def stop_all(self):
        for r in self.roles.values():
            r.terminate()

    def wait_settled(self, not_before, quiet_s, timeout_s, min_count=0):
        """Polls the aggregates topic until its content stopped changing for quiet_s (and
        now >= not_before, and at least min_count keys)."""
        deadline = time.time() + timeout_s
        last, last_change = None, time.time()
        while time.time() < deadline:
            aggs = self.read_aggregates()
            sig = (len(aggs), hash(frozenset((k, repr(sorted(v.items()))) for k, v in aggs.items())))
            if sig != last:
                last, last_change = sig, time.time()
            elif (time.time() >= not_before and time.time() - last_change >= quiet_s
                  and len(aggs) >= min_count):
                return aggs
            time.sleep(3)
        return self.read_aggregates()


# ---------------------------------------------------------------- the chaos schedule

def make_schedule(rng, duration, role_names, long_run):
    """(offset_s, action, target) events over the middle of the run. Every role is killed at
    least once, the broker restarts once (twice in long runs), an aggregator is stalled past its
    session timeout; long runs also stall an alerter past its (longer) session timeout."""
    actions = [("kill", name) for name in role_names]
    actions.append(("broker", None))
    actions.append(("stop", rng.choice([n for n in role_names if n.startswith("aggregator")])))
    if long_run:
        actions.append(("broker", None))
        actions.append(("stop", rng.choice([n for n in role_names if n.startswith("alerter")])))
        extra = max(0, int(duration / 40) - len(actions))
        for _ in range(extra):
            actions.append(("kill", rng.choice(role_names)))
    rng.shuffle(actions)
    # The first 15% warms up (restores, detector warm-up); the last 20% lets things settle.
    lo, hi = 0.15 * duration, 0.80 * duration
    step = (hi - lo) / max(1, len(actions))
    return [(lo + i * step + rng.uniform(0, step * 0.3), a, t) for i, (a, t) in enumerate(actions)]


def run_chaos(args, work, broker, rng):
    dep = Deployment(work, "chaos", broker.bootstrap, args.binary, args, speedup=1)
    dep.ensure_topics()
    aggs = [dep.aggregator("a1"), dep.aggregator("a2")]
    alerters = [dep.alerter("l1"), dep.alerter("l2")]
    for r in aggs + alerters:
        r.start()
    for r in aggs + alerters:
        t = r.wait_ready()
        if t is None:
            raise RuntimeError(f"{r.name} did not become ready; see {r.log_path}")
    start_ms = int(time.time() * 1000)
    gw = dep.gateway(start_ms)
    gw.start()
    t_start = time.time()
    names = [gw.name] + [r.name for r in aggs + alerters]
    schedule = make_schedule(rng, args.duration, names, args.duration >= 300)
    log(f"chaos run: prefix {dep.prefix}, {len(schedule)} faults scheduled over "
        f"{args.duration} s: " + ", ".join(f"{int(o)}s {a} {t or 'broker'}" for o, a, t in schedule))
    stats = {"max_lag": 0.0, "lag_role": "", "broker_restarts": [], "events": [], "errors": []}
    stopped = {}  # role -> time to SIGCONT
    pending = list(schedule)
    gw_end_by = t_start + args.duration + 600

    def sample_lag():
        for r in aggs + alerters:
            metric = ("cybersyn_aggregator_consumer_lag_messages" if r.name.startswith("aggregator")
                      else "cybersyn_alerter_consumer_lag_messages")
            lag = r.metric_sum(metric)
            if lag is not None and lag > stats["max_lag"]:
                stats["max_lag"], stats["lag_role"] = lag, r.name

    next_lag = 0
    broker_thread = None
    restoring = {}  # role -> restart time, until its /readyz answers 200
    while True:
        now = time.time()
        for name, since in list(restoring.items()):
            r = dep.roles[name]
            if name in stopped:
                continue
            code, _ = http_get(f"http://127.0.0.1:{r.metrics_port}/readyz", 0.3)
            if code == 200:
                r.restore_times.append(time.time() - since)
                del restoring[name]
                stats["events"].append(f"{time.time() - t_start:6.1f}s {name} ready "
                                       f"{time.time() - since:.1f} s after its restart")
            elif now - since > 180:
                r.restore_times.append(None)
                del restoring[name]
        if (gw.done and not pending and not stopped and not restoring
                and (broker_thread is None or not broker_thread.is_alive())):
            break
        if now > gw_end_by:
            raise RuntimeError("the gateway did not finish; see " + gw.log_path)
        # Resume stalled processes whose stall is over.
        for name, until in list(stopped.items()):
            if now >= until:
                dep.roles[name].proc.send_signal(signal.SIGCONT)
                del stopped[name]
                stats["events"].append(f"{now - t_start:6.1f}s SIGCONT {name}")
        # Roles that died on their own are failures (counted) and restarted.
        for r in [gw] + aggs + alerters:
            if r.done or r.alive() or r.name in stopped:
                continue
            rc = r.proc.returncode
            if r is gw and rc == 0:
                gw.done = True
                stats["events"].append(f"{now - t_start:6.1f}s gateway finished")
                continue
            r.unexpected_exits.append(rc)
            stats["events"].append(f"{now - t_start:6.1f}s {r.name} EXITED rc={rc}; restarting")
            r.start()
            if r.metrics_port is not None:
                restoring[r.name] = r.started_at
        if (pending and now - t_start >= pending[0][0] and pending[0][1] == "broker"
                and broker_thread is not None and broker_thread.is_alive()):
            # One broker restart at a time: this one waits for the previous to finish.
            pending[0] = (now - t_start + 5, "broker", None)
        elif pending and now - t_start >= pending[0][0]:
            _, action, target = pending.pop(0)
            if action == "kill":
                r = dep.roles[target]
                if r.done or not r.alive():
                    stats["events"].append(f"{now - t_start:6.1f}s kill {target}: not running")
                else:
                    r.kill9()
                    time.sleep(rng.uniform(0.5, 2.0))
                    r.start()
                    if r.metrics_port is not None:
                        restoring[r.name] = r.started_at
                    stats["events"].append(f"{now - t_start:6.1f}s kill -9 {target}, restarted")
            elif action == "broker":
                # In the background: the schedule goes on while the broker is away.
                at = now - t_start

                def restart_broker(at=at):
                    try:
                        secs = broker.restart()
                    except Exception as e:  # noqa: BLE001 - reported as a failure of the run
                        stats["errors"].append(f"broker restart at {at:.0f} s failed: {e}")
                        return
                    stats["broker_restarts"].append(secs)
                    stats["events"].append(f"{at:6.1f}s broker restart (stop + start) took "
                                           f"{secs:.1f} s")

                broker_thread = threading.Thread(target=restart_broker)
                broker_thread.start()
            elif action == "stop":
                r = dep.roles[target]
                if r.alive():
                    stall = (AGG_SESSION_TIMEOUT_S if target.startswith("aggregator")
                             else ALERTER_SESSION_TIMEOUT_S) + 6
                    r.proc.send_signal(signal.SIGSTOP)
                    r.stops += 1
                    stopped[target] = time.time() + stall
                    stats["events"].append(f"{now - t_start:6.1f}s SIGSTOP {target} for {stall} s")
        if now >= next_lag:
            sample_lag()
            next_lag = now + 1
        time.sleep(0.2)
    stats["gateway_done_at"] = time.time()
    log(f"chaos gateway finished after {time.time() - t_start:.0f} s; waiting for the last "
        f"windows to close")
    # The last windows close when the partitions are idle: watermark = now - lateness.
    # The last window ends up to LARGEST_WINDOW_S after the last record.
    not_before = time.time() + LARGEST_WINDOW_S + LATENESS_S + GRACE_S + IDLE_S + 10
    stats["aggregates"] = dep.wait_settled(not_before, quiet_s=12, timeout_s=600)
    sample_lag()
    # Escalation timers: let every deadline that passed be processed, then look.
    time.sleep(8)
    stats["signals"] = dep.read_signal_events()
    stats["checked_at_ms"] = int(time.time() * 1000)
    stats["records"] = dep.read_record_keys()
    stats["deadletter"] = deadletter_reasons(dep.bootstrap, dep.topic("deadletter"))
    stats["gateway_log"] = open(gw.log_path, errors="replace").read()
    dep.stop_all()
    stats["dep"] = dep
    stats["t_start"] = t_start
    return stats


def run_reference(args, work, broker, start_ms):
    dep = Deployment(work, "reference", broker.bootstrap, args.binary, args, speedup=0)
    dep.ensure_topics()
    gw = dep.gateway(start_ms)
    gw.start()
    gw.proc.wait(timeout=600)
    if gw.proc.returncode != 0:
        raise RuntimeError(f"reference gateway failed; see {gw.log_path}")
    # Aggregators start after the input is in Kafka, so the historical records are never behind
    # an idle-advanced watermark.
    agg = dep.aggregator("r1")
    alerter = dep.alerter("r1")
    agg.start()
    alerter.start()
    aggs = dep.wait_settled(time.time() + 20, quiet_s=12, timeout_s=600)
    time.sleep(5)
    signals = dep.read_signal_events()
    records = dep.read_record_keys()
    deadletter = deadletter_reasons(dep.bootstrap, dep.topic("deadletter"))
    dep.stop_all()
    truth = []
    with open(dep.truth) as f:
        for row in csv.DictReader(f):
            truth.append(row)
    return {"aggregates": aggs, "signals": signals, "records": records, "truth": truth,
            "dep": dep, "deadletter": deadletter}


# ---------------------------------------------------------------- comparison and report

def compare(args, chaos, ref, broker):
    lines, mismatches = [], 0
    dep = chaos["dep"]
    roles = dep.roles

    # Aggregates.
    want, got = ref["aggregates"], chaos["aggregates"]
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    differ = [k for k in want if k in got and got[k] != want[k]]
    for k in (missing[:3] + extra[:3] + differ[:3]):
        lines.append(f"  aggregate {k}: reference {want.get(k)} chaos {got.get(k)}")
    agg_mismatch = len(missing) + len(extra) + len(differ)
    mismatches += agg_mismatch
    if agg_mismatch:
        # Every difference, for the post-mortem: key, counts, seconds after the run's start.
        t0 = int(dep.roles["gateway"].argv[dep.roles["gateway"].argv.index("--start") + 1])
        with open(os.path.join(dep.dir, "aggregate-differences.txt"), "w") as f:
            for k in sorted(missing + extra + differ, key=lambda k: (k[3], k[0], k[1], k[2])):
                w, g = want.get(k), got.get(k)
                f.write(f"{(k[3] - t0) / 1000:8.1f}s {k[0]} {k[1]} {k[2]} "
                        f"count ref {w and w.get(4)} chaos {g and g.get(4)}\n")

    # Records.
    ref_keys, ref_total = ref["records"]
    chaos_keys, chaos_total = chaos["records"]
    lost = len(ref_keys - chaos_keys)
    foreign = len(chaos_keys - ref_keys)
    mismatches += lost + foreign

    # Signals: RAISED per id.
    def raised(events):
        c = collections.Counter()
        info = {}
        for e in events:
            if e["t_kind"] == T_RAISED:
                c[e["id"]] += 1
                info[e["id"]] = e
        return c, info

    ref_raised, ref_info = raised(ref["signals"])
    chaos_raised, _ = raised(chaos["signals"])
    doubled = [i for i, n in chaos_raised.items() if n > 1]
    signal_set_diff = set(ref_raised) ^ set(chaos_raised)
    mismatches += len(doubled) + len(signal_set_diff)
    for i in list(signal_set_diff)[:3]:
        lines.append(f"  signal {i}: in reference {i in ref_raised}, in chaos {i in chaos_raised}")

    # Injected faults the reference caught -> exactly one signal each in the chaos run.
    caught = caught_ok = 0
    kinds_caught = collections.Counter()
    for fault in ref["truth"]:
        lo, hi = int(fault["start"]) - 60_000, int(fault["end"]) + 60_000
        ids = [i for i, e in ref_info.items()
               if e["node"] == fault["node"] and e["indicator"] == fault["indicator"]
               and lo <= e["window_start"] <= hi]
        if not ids:
            continue
        caught += 1
        kinds_caught[fault["kind"]] += 1
        if all(chaos_raised.get(i, 0) == 1 for i in ids):
            caught_ok += 1
    mismatches += caught - caught_ok

    # The soak cannot pass on nothing: two runs that produced nothing compare equal. The
    # reference must have produced (nearly) what its schedule implies, and caught faults.
    start_ms = int(dep.roles["gateway"].argv[dep.roles["gateway"].argv.index("--start") + 1])
    implied = implied_aggregates(start_ms, args.duration)
    produced = sum(1 for k in implied if k in want)
    coverage = produced / len(implied) if implied else 0.0
    if coverage < MIN_COVERAGE:
        mismatches += 1
        lines.append(f"  the reference produced {produced} of the {len(implied)} aggregates its "
                     f"schedule implies ({coverage:.0%} < {MIN_COVERAGE:.0%})")
    # Kinds injected often enough after the detectors' warm-up must each have been caught.
    # Not transients: the simulator's transient is a one-sample spike, and a 10 s window sums 100
    # samples, so an 8-16 sigma spike moves the window by 0.8-1.6 of its own noise's sigma, which
    # no detector should flag (a 10-minute run injects ~5 and none is caught).
    warm_ms = start_ms + DETECTOR_WARMUP * WINDOWS_S[0] * 1000
    kinds_due = collections.Counter(f["kind"] for f in ref["truth"]
                                    if int(f["start"]) >= warm_ms and f["kind"] != "transient")
    uncaught_kinds = sorted(k for k, n in kinds_due.items()
                            if n >= args.kind_needs_faults and kinds_caught[k] == 0)
    mismatches += len(uncaught_kinds)
    for k in uncaught_kinds:
        lines.append(f"  no {k} fault caught by the reference ({kinds_due[k]} injected after "
                     f"warm-up)")
    if caught < args.min_caught_faults:
        mismatches += 1
        lines.append(f"  the reference caught {caught} faults, fewer than --min-caught-faults "
                     f"{args.min_caught_faults}")

    # Escalation timers: at the end nothing below the top level is past a deadline, and no
    # signal left the same node twice.
    latest = {}
    escalations = collections.Counter()
    for e in chaos["signals"]:
        latest[e["id"]] = e
        if e["t_kind"] == T_ESCALATED:
            escalations[(e["id"], e["t_from"])] += 1
    margin_ms = 15_000
    lost_timers = []
    for i, e in latest.items():
        if e["state"] == S_RESOLVED or e["level"] == 0:
            continue
        for what in ("ack_deadline", "resolve_deadline"):
            d = e[what]
            if d and d < chaos["checked_at_ms"] - margin_ms:
                lost_timers.append((i, what, (chaos["checked_at_ms"] - d) / 1000))
    double_esc = [k for k, n in escalations.items() if n > 1]
    mismatches += len(lost_timers) + len(double_esc)
    for i, what, late in lost_timers[:3]:
        lines.append(f"  signal {i}: {what} passed {late:.0f} s before the end, no escalation")

    mismatches += len(chaos["errors"])
    lines += ["  " + e for e in chaos["errors"]]
    kills = sum(r.kills for r in roles.values())
    restarts = sum(r.starts - 1 for r in roles.values())
    stops = sum(r.stops for r in roles.values())
    unexpected = {r.name: r.unexpected_exits for r in roles.values() if r.unexpected_exits}
    restore = [t for r in roles.values() for t in r.restore_times if t is not None]
    never_ready = sum(1 for r in roles.values() for t in r.restore_times if t is None)
    mismatches += never_ready
    gw_confirmed = [l for l in chaos["gateway_log"].splitlines() if "confirmed" in l]

    report = [
        "==== Cybersyn chaos soak report ====",
        f"duration {args.duration} s, seed {args.seed}, interval {args.interval_ms} ms, "
        f"{len(ref['truth'])} faults injected by the simulator",
        f"records in (reference gateway, unique):   {len(ref_keys)}",
        f"records confirmed in the chaos run:        {len(chaos_keys)} unique "
        f"({chaos_total} in the topic incl. replays after kills), lost {lost}, foreign {foreign}",
        f"kills survived (kill -9):                  {kills} "
        f"({', '.join(f'{n} {r.kills}' for n, r in roles.items() if r.kills)})",
        f"stalls past session timeout (SIGSTOP):     {stops}",
        f"broker restarts:                           {broker.restarts} "
        f"(took {', '.join(f'{s:.1f}' for s in chaos['broker_restarts'])} s)",
        f"process restarts:                          {restarts}, unexpected exits: "
        f"{unexpected or 'none'}",
        f"max restore time (restart -> /readyz):     "
        f"{max(restore):.1f} s" if restore else "max restore time: n/a",
        f"max consumer lag (sampled 1/s):            {chaos['max_lag']:.0f} messages "
        f"({chaos['lag_role']})",
        f"aggregates compared:                       {len(want)} reference, {len(got)} chaos; "
        f"missing {len(missing)}, extra {len(extra)}, different {len(differ)}",
        f"signals raised:                            {len(ref_raised)} reference, "
        f"{len(chaos_raised)} chaos; raised twice {len(doubled)}, set difference "
        f"{len(signal_set_diff)}",
        f"reference output vs schedule:              {produced} of {len(implied)} implied "
        f"aggregates ({coverage:.1%}; at least {MIN_COVERAGE:.0%} required)",
        f"faults caught in reference:                {caught} (at least {args.min_caught_faults} "
        f"required; by kind {dict(kinds_caught)}, required kinds injected after warm-up "
        f"{dict(kinds_due)} (not transients)); "
        f"with exactly one signal each in chaos: {caught_ok}",
        f"escalations in chaos:                      {sum(escalations.values())}; lost timers "
        f"{len(lost_timers)}, double escalations {len(double_esc)}",
        f"dead-lettered:                             reference {dict(ref['deadletter'])}, "
        f"chaos {dict(chaos['deadletter'])}",
        f"gateway (last incarnation): {gw_confirmed[-1].strip() if gw_confirmed else 'no summary line'}",
        f"MISMATCHES: {mismatches}",
    ]
    return report + (["details:"] + lines if lines else []), mismatches, unexpected


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(SOURCE_DIR, "build", "cli", "cybersyn"))
    ap.add_argument("--duration", type=int, default=600, help="seconds of load (default 600)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval-ms", type=int, default=100,
                    help="sim: event time between samples of one series (32 series)")
    ap.add_argument("--faults-per-day", type=float, default=200,
                    help="sim: faults per series per day")
    ap.add_argument("--fault-size-min", type=float, default=8,
                    help="sim: smallest fault, in noise standard deviations of one sample")
    ap.add_argument("--fault-size-max", type=float, default=16,
                    help="sim: largest fault, in noise standard deviations of one sample")
    ap.add_argument("--min-caught-faults", type=int, default=3,
                    help="the reference run must catch at least this many injected faults "
                         "(default 3), or the soak fails: it proves nothing otherwise")
    ap.add_argument("--kind-needs-faults", type=int, default=2,
                    help="a fault kind injected at least this many times after the detectors' "
                         "warm-up must be caught at least once by the reference (default 2)")
    ap.add_argument("--work-dir", default="",
                    help="runs in a fresh directory under this one (default: under $TMPDIR); "
                         "kept when the soak fails")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs) on success")
    ap.add_argument("--report", default="", help="also write the report here")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"soak: {args.binary} is not an executable (build the `cybersyn` target)")
    if shutil.which("kcat") is None:
        sys.exit("soak: kcat is not installed (deploy/setup.sh installs it)")
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        work = tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=args.work_dir)
    else:
        work = tempfile.mkdtemp(prefix="cybersyn-soak-")
    rng = random.Random(args.seed)
    broker = Broker(os.path.join(work, "kafka"))
    ok = False
    try:
        broker.start()
        t0 = time.time()
        chaos = run_chaos(args, work, broker, rng)
        log(f"chaos run done in {time.time() - t0:.0f} s; reference run")
        start_ms = int(chaos["dep"].roles["gateway"].argv[
            chaos["dep"].roles["gateway"].argv.index("--start") + 1])
        ref = run_reference(args, work, broker, start_ms)
        report, mismatches, unexpected = compare(args, chaos, ref, broker)
        report.insert(1, "schedule:")
        events = sorted(chaos["events"], key=lambda e: float(e.split("s", 1)[0]))
        report[2:2] = ["  " + e for e in events]
        text = "\n".join(report)
        print(text, flush=True)
        if args.report:
            with open(args.report, "w") as f:
                f.write(text + "\n")
        ok = mismatches == 0 and not unexpected
        if not ok:
            log(f"FAILED; logs kept in {work}")
    finally:
        for d in DEPLOYMENTS:
            d.stop_all()
        try:
            broker.stop()
        except Exception as e:  # noqa: BLE001 - report and go on cleaning up
            log(f"stopping the broker: {e}")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
