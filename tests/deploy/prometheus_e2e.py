#!/usr/bin/env python3
"""End-to-end: a real Prometheus server scrapes a running Cybersyn pipeline.

  prometheus_e2e.py --cybersyn PATH_TO_CYBERSYN     (run by ctest as deploy_prometheus_e2e)

Starts, as separate processes on free loopback ports: `cybersyn aggregator`, `cybersyn alerter`
and `cybersyn gateway` (a CSV of N records, one of which breaks an indicator's limit) against the
real Kafka broker of the CTest fixture (CYBERSYN_TEST_KAFKA_DIR), and Debian's `prometheus`
scraping the three /metrics endpoints every second with deploy/prometheus's rules loaded. Then,
over Prometheus' HTTP API, asserts:
  - every target is up; the metrics the rules need (enterprise records, buffer bound, alerter lag
    and restore) are exported;
  - the gateway's confirmed count and the aggregator's applied count both equal N, and the gateway
    reports N confirmed when it stops;
  - cybersyn_alerter_signals_open has a series > 0 (the limit breach opened a signal);
  - every rule of deploy/prometheus/rules evaluates without error against the real metrics;
  - the gateway took --gateway-id, and no process logged the operator token.
Bounded: gives up after 90 s of waiting. Exits non-zero with the reason and the processes' logs.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from ports import free_ports

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "rules", "cybersyn.rules.yml")
N_STEPS = 40      # event-time steps, 5 s apart
UNITS = ["cl/e1/u1", "cl/e1/u2", "cl/e2/u1"]
N = N_STEPS * len(UNITS)
WAIT_S = 90
TOKEN = "e2e-operator-token-5d1c"


def config_yaml(prefix, bootstrap, work):
    return f"""kafka:
  bootstrap: "{bootstrap}"
  topic_prefix: {prefix}
  partitions: 2
  replication_factor: 1
levels:
  - {{name: nation, ack_within: 1h, resolve_within: 5h}}
  - {{name: enterprise, ack_within: 1h, resolve_within: 5h}}
  - {{name: unit, ack_within: 1h, resolve_within: 5h}}
hierarchy:
  cl:
    children:
      e1: {{children: {{u1: {{}}, u2: {{}}}}}}
      e2: {{children: {{u1: {{}}}}}}
indicators:
  - {{name: output, unit: t, rollup: sum, thresholds: {{max: 1000}}}}
operators:
  - {{name: planning, subtree: cl, token: {TOKEN}}}
aggregator:
  windows: [10s]
  # The gateway sends one batch per enterprise; enterprises sharing a partition interleave
  # batches spanning 200 s of event time, which lateness must cover.
  allowed_lateness: 5m
  grace: 1s
  idle_advance: 2s
  state_dir: {work}/agg
  memory_limit: 32MiB
alerter:
  state_dir: {work}/alert
  warmup: 2
  auto_resolve_after: 1000
gateway:
  id: gw-from-config
  buffer_dir: {work}/gw
  buffer_max_bytes: 64MiB
"""


def write_csv(path):
    # Event time 30 min ago onwards; the last record of cl/e1/u1 (value 5000) breaks max 1000.
    t0 = (int(time.time()) - 1800) // 10 * 10
    with open(path, "w") as f:
        f.write("node,indicator,value,time\n")
        for step in range(N_STEPS):
            for u in UNITS:
                v = 5000 if (u == "cl/e1/u1" and step == N_STEPS - 1) else 10 + step % 3
                ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 5 * step))
                f.write(f"{u},output,{v},{ts}\n")


class Pipeline:
    def __init__(self, work):
        self.work = work
        self.procs = {}

    def start(self, name, argv):
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                fail(f"{name} exited early with {p.returncode}", self)

    def stop(self, name, timeout=20):
        p = self.procs.pop(name)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name, timeout=10)

    def logs(self):
        out = []
        for fn in sorted(os.listdir(self.work)):
            if fn.endswith(".log"):
                with open(os.path.join(self.work, fn), errors="replace") as f:
                    tail = f.read()[-3000:]
                out.append(f"--- {fn} (tail) ---\n{tail}")
        return "\n".join(out)


def fail(msg, pipeline=None):
    print(f"prometheus_e2e: FAIL: {msg}", file=sys.stderr)
    if pipeline is not None:
        print(pipeline.logs(), file=sys.stderr)
        pipeline.stop_all()
    sys.exit(1)


def query(prom, expr):
    url = f"http://{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def scalar(prom, expr):
    res = query(prom, expr)
    return float(res[0]["value"][1]) if res else None


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cybersyn", required=True)
    args = ap.parse_args()
    kdir = os.environ.get("CYBERSYN_TEST_KAFKA_DIR")
    if not kdir or not os.path.exists(os.path.join(kdir, "bootstrap")):
        fail("CYBERSYN_TEST_KAFKA_DIR unset or has no bootstrap file: run through ctest "
             "(fixture kafka_broker) or `deploy/local/kafka.sh start --dir D`")
    with open(os.path.join(kdir, "bootstrap")) as f:
        bootstrap = f.read().strip()
    if shutil.which("prometheus") is None:
        subprocess.run(["bash", os.path.join(ROOT, "deploy", "setup.sh")], check=True,
                       env=dict(os.environ, CYBERSYN_SETUP_EXTRAS="prometheus"),
                       stdout=subprocess.DEVNULL)

    work = tempfile.mkdtemp(prefix="cybersyn-prom-e2e-")
    p = Pipeline(work)
    try:
        run(args.cybersyn, bootstrap, work, p)
    finally:
        p.stop_all()
    shutil.rmtree(work, ignore_errors=True)
    print(f"prometheus_e2e: ok ({N} records counted by Prometheus, signal open)")


def run(bin_, bootstrap, work, p):
    prefix = f"prome2e{os.getpid()}t{int(time.time())}"
    cfg = os.path.join(work, "cybersyn.yaml")
    with open(cfg, "w") as f:
        f.write(config_yaml(prefix, bootstrap, work))
    csv = os.path.join(work, "input.csv")
    write_csv(csv)
    r = subprocess.run([bin_, "kafka", "topics", "--config", cfg], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        fail(f"cybersyn kafka topics: {r.stdout}{r.stderr}")

    names = ("agg", "alert", "gw", "gw_grpc", "grpc", "prom")
    ports = dict(zip(names, free_ports(len(names))))
    # The gateway first: its records are 30 min old in event time, so the aggregator must find
    # them all in Kafka when it starts (an idle partition's watermark follows the wall clock and
    # would make records arriving later "late"). --listen-grpc keeps the gateway (and its
    # /metrics) up after the CSV is read.
    p.start("gateway", [bin_, "gateway", "--config", cfg, "--gateway-id", "gw-e2e",
                        "--input", f"csv:{csv}", "--metrics", f"127.0.0.1:{ports['gw']}",
                        "--listen-grpc", f"127.0.0.1:{ports['gw_grpc']}"])
    # The deploy rules, evaluated every second here (the file's group intervals dropped).
    rules = os.path.join(work, "cybersyn.rules.yml")
    with open(RULES) as f, open(rules, "w") as out:
        out.writelines(line for line in f if not line.strip().startswith("interval:"))
    prom_yml = os.path.join(work, "prometheus.yml")
    with open(prom_yml, "w") as f:
        f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{rules}"]
scrape_configs:
  - job_name: cybersyn-gateway
    static_configs: [{{targets: ["127.0.0.1:{ports['gw']}"]}}]
  - job_name: cybersyn-aggregator
    static_configs: [{{targets: ["127.0.0.1:{ports['agg']}"]}}]
  - job_name: cybersyn-alerter
    static_configs: [{{targets: ["127.0.0.1:{ports['alert']}"]}}]
""")
    prom = f"127.0.0.1:{ports['prom']}"
    p.start("prometheus", ["prometheus", f"--config.file={prom_yml}",
                           f"--storage.tsdb.path={work}/tsdb", f"--web.listen-address={prom}"])

    # Prometheus sees the gateway confirm all N; then the aggregator and alerter start.
    deadline = time.time() + WAIT_S
    while True:
        p.check_alive()
        try:
            confirmed = scalar(prom, "sum(cybersyn_gateway_records_confirmed_total)")
        except OSError:
            confirmed = None
        if confirmed == N:
            break
        if time.time() > deadline:
            fail(f"after {WAIT_S}s the gateway confirmed {confirmed} of {N}", p)
        time.sleep(0.5)
    p.start("aggregator", [bin_, "aggregator", "--config", cfg, "--instance-id", "agg-e2e",
                           "--metrics", f"127.0.0.1:{ports['agg']}"])
    p.start("alerter", [bin_, "alerter", "--config", cfg, "--instance-id", "alert-e2e",
                        "--listen-grpc", f"127.0.0.1:{ports['grpc']}",
                        "--metrics", f"127.0.0.1:{ports['alert']}"])

    want = {
        "up": ('sum(up{job=~"cybersyn-.*"})', lambda v: v == 3),
        "gateway confirmed": ("sum(cybersyn_gateway_records_confirmed_total)", lambda v: v == N),
        "aggregator applied": ('sum(cybersyn_aggregator_records_total{outcome="applied"})',
                               lambda v: v == N),
        "signals open": ("sum(cybersyn_alerter_signals_open)", lambda v: v is not None and v > 0),
        # Metrics the rules and dashboard use, exported for real.
        "enterprise records": ("sum(cybersyn_aggregator_node_records_total)", lambda v: v == N),
        "buffer bound": ("max(cybersyn_gateway_buffer_max_bytes)", lambda v: v == 64 << 20),
        "alerter lag series": ("count(cybersyn_alerter_consumer_lag_messages)", lambda v: v == 2),
        "alerter restored": ("max(cybersyn_alerter_restore_duration_seconds)",
                             lambda v: v is not None and v > 0),
    }
    last = {}
    deadline = time.time() + WAIT_S
    while True:
        p.check_alive()
        try:
            last = {k: scalar(prom, e) for k, (e, _) in want.items()}
        except OSError:
            last = {"prometheus": "not answering yet"}
        if len(last) == len(want) and all(ok(last[k]) for k, (_, ok) in want.items()):
            break
        if time.time() > deadline:
            outcomes = {r["metric"].get("outcome"): r["value"][1] for r in query(
                prom, "sum by (outcome) (cybersyn_aggregator_records_total) > 0")}
            fail(f"after {WAIT_S}s, want N={N}: {last}; aggregator outcomes {outcomes}", p)
        time.sleep(1)
    print(f"prometheus_e2e: PromQL after {WAIT_S - (deadline - time.time()):.0f}s: {last}")

    # The open-signals series itself, by level and kind.
    series = query(prom, "cybersyn_alerter_signals_open > 0")
    if not series:
        fail("cybersyn_alerter_signals_open > 0 returned no series", p)
    print("prometheus_e2e: open signals:",
          [(s["metric"].get("level"), s["metric"].get("kind"), s["value"][1]) for s in series])
    if not any(s["metric"].get("kind", "").lower().endswith("threshold") for s in series):
        fail(f"expected a threshold signal among {series}", p)

    # Every deploy rule evaluates cleanly against the real metrics (once all have been evaluated).
    for _ in range(20):
        groups = get_json(f"http://{prom}/api/v1/rules")["data"]["groups"]
        health = [(r["name"], r.get("health"), r.get("lastError")) for g in groups
                  for r in g["rules"]]
        if health and all(h != "unknown" for _, h, _ in health):
            break
        time.sleep(0.5)
    bad = [(n, h, e) for n, h, e in health if h != "ok"]
    if not groups or bad:
        fail(f"rules not healthy: {bad or 'no rule groups loaded'}", p)
    print(f"prometheus_e2e: {sum(len(g['rules']) for g in groups)} deploy rules evaluate cleanly")

    # The gateway's own account on stop: what it sent is what Prometheus counted.
    rc = p.stop("gateway")
    with open(os.path.join(work, "gateway.log")) as f:
        gw_log = f.read()
    if rc != 0 or f"gateway: confirmed {N} records" not in gw_log:
        fail(f"gateway exit {rc}; expected 'gateway: confirmed {N} records' in its log", p)
    if "gateway: id gw-e2e" not in gw_log:
        fail("the gateway did not take --gateway-id gw-e2e", p)

    # Tokens are never logged: the operator token appears in no process's output.
    p.stop_all()
    for fn in os.listdir(work):
        if fn.endswith(".log"):
            with open(os.path.join(work, fn), errors="replace") as f:
                if TOKEN in f.read():
                    fail(f"{fn} contains the operator token")


if __name__ == "__main__":
    main()
