#!/usr/bin/env python3
"""End-to-end: what an SRE's standard gRPC tools see, with grpcurl as the real client.

  grpc_tools_e2e.py --cybersyn PATH_TO_CYBERSYN [--grpcurl PATH]   (ctest: deploy_grpc_tools)

Starts `cybersyn demo` (embedded Kafka; Alerts and Query on gRPC, Opsroom and /metrics on HTTP)
on free loopback ports, then asserts, each through a separate process:
  - `grpcurl list` works without the .proto files (server reflection) and names cybersyn.v1.Alerts,
    cybersyn.v1.Query and grpc.health.v1.Health; `grpcurl describe` shows the Alerts methods;
  - `grpcurl grpc.health.v1.Health/Check` answers SERVING (what Kubernetes gRPC probes ask);
  - a second process (`cybersyn gateway --listen-grpc` on the demo's gRPC port, then `--metrics`
    on its HTTP port) exits 1 with "address in use" instead of sharing the port (SO_REUSEPORT);
  - /metrics has cybersyn_build_info.
grpcurl comes from the Go module proxy (github.com/fullstorydev/grpcurl, pinned below), built
with the machine's Go into $CYBERSYN_GO_BIN (default BUILD/go-bin) the first time (~1-4 min).
Bounded: 60 s of waiting for the demo. Exits non-zero with the reason and the demo's log.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from ports import free_ports

GRPCURL_MODULE = "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"


def fail(msg, log_path=None):
    print(f"grpc_tools_e2e: FAIL: {msg}", file=sys.stderr)
    if log_path and os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            print("--- demo log (tail) ---\n" + f.read()[-4000:], file=sys.stderr)
    sys.exit(1)


def ensure_grpcurl(explicit):
    if explicit:
        return explicit
    found = shutil.which("grpcurl")
    if found:
        return found
    gobin = os.environ.get("CYBERSYN_GO_BIN") or os.path.join(os.getcwd(), "go-bin")
    path = os.path.join(gobin, "grpcurl")
    if os.path.exists(path):
        return path
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        fail("grpcurl is not installed and there is no Go toolchain to build it "
             f"(go install {GRPCURL_MODULE}); pass --grpcurl PATH")
    print(f"grpc_tools_e2e: building grpcurl into {gobin} (go install {GRPCURL_MODULE})", flush=True)
    env = dict(os.environ, GOBIN=gobin, GOFLAGS="-mod=mod")
    subprocess.run([go, "install", GRPCURL_MODULE], check=True, env=env)
    return path


def run(cmd, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cybersyn", required=True)
    ap.add_argument("--grpcurl", default="")
    args = ap.parse_args()
    grpcurl = ensure_grpcurl(args.grpcurl)
    work = tempfile.mkdtemp(prefix="cybersyn-grpc-tools-")
    grpc_port, http_port = free_ports(2)
    grpc_addr = f"127.0.0.1:{grpc_port}"
    http_addr = f"127.0.0.1:{http_port}"
    log_path = os.path.join(work, "demo.log")
    demo = subprocess.Popen(
        [args.cybersyn, "demo", "--quiet", "--duration", "120s", "--listen-grpc", grpc_addr,
         "--listen-http", http_addr],
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=work)
    try:
        deadline = time.time() + 60
        listed = None
        while time.time() < deadline:
            if demo.poll() is not None:
                fail(f"the demo exited with {demo.returncode}", log_path)
            p = run([grpcurl, "-plaintext", grpc_addr, "list"])
            if p.returncode == 0:
                listed = p.stdout
                break
            time.sleep(0.5)
        if listed is None:
            fail(f"grpcurl list {grpc_addr} did not answer in 60 s", log_path)
        for service in ["cybersyn.v1.Alerts", "cybersyn.v1.Query", "grpc.health.v1.Health",
                        "grpc.reflection.v1alpha.ServerReflection"]:
            if service not in listed.split():
                fail(f"grpcurl list does not name {service}: {listed!r}")
        p = run([grpcurl, "-plaintext", grpc_addr, "describe", "cybersyn.v1.Alerts"])
        if p.returncode != 0 or "rpc Watch" not in p.stdout or "rpc Acknowledge" not in p.stdout:
            fail(f"grpcurl describe cybersyn.v1.Alerts: rc {p.returncode}: {p.stdout} {p.stderr}")
        p = run([grpcurl, "-plaintext", grpc_addr, "grpc.health.v1.Health/Check"])
        if p.returncode != 0 or '"SERVING"' not in p.stdout:
            fail(f"health check: rc {p.returncode}: {p.stdout} {p.stderr}")
        print(f"grpc_tools_e2e: grpcurl list/describe/health against {grpc_addr}: ok")

        with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        if "cybersyn_build_info{" not in metrics:
            fail("/metrics has no cybersyn_build_info")

        # A second process on the ports the demo holds.
        cfg = os.path.join(work, "gw.yaml")
        with open(cfg, "w") as f:
            f.write(run([args.cybersyn, "config", "example"]).stdout)
        for flag, addr in [("--listen-grpc", grpc_addr), ("--metrics", http_addr)]:
            # (The example config says kafka.bootstrap: embedded, which a gateway takes only when
            # asked: this is about the ports.)
            p = run([args.cybersyn, "gateway", "--config", cfg, "--embedded-broker", "--input",
                     "sim:small", "--count", "10", "--buffer-dir", os.path.join(work, "gw" + flag),
                     flag, addr],
                    timeout=60)
            if p.returncode == 0 or "address in use" not in p.stderr:
                fail(f"a second process with {flag} {addr} (in use): rc {p.returncode}, "
                     f"stderr: {p.stderr[-1500:]}")
            print(f"grpc_tools_e2e: second process on {addr} ({flag}): refused, address in use")
        if demo.poll() is not None:
            fail("the demo died while a second process tried its ports", log_path)
    finally:
        if demo.poll() is None:
            demo.terminate()
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("grpc_tools_e2e: ok")


if __name__ == "__main__":
    main()
