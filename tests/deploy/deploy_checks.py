#!/usr/bin/env python3
"""Structural checks of deploy/ that no off-the-shelf validator covers (run by check_deploy.sh).

  deploy_checks.py sync-rules       rewrite deploy/k8s/prometheusrule.yaml from the rules file
  deploy_checks.py rules-in-sync    the PrometheusRule carries exactly the Prometheus rule groups
  deploy_checks.py crds             ServiceMonitor / PrometheusRule structure (no schema ships)
  deploy_checks.py k8s-refs         k8s: selectors match pod labels, probes/ports/volumes resolve,
                                    memory limit above the config's memory_limit, kustomization
                                    lists every manifest
  deploy_checks.py compose-refs     compose: bind-mounted files exist, every scraped target is a
                                    service, Grafana dashboard queries only known metrics
  deploy_checks.py metrics          every cybersyn_* metric used in rules/dashboard is exported by
                                    the sources (ASSUMED, the allowed exceptions, is empty)
  deploy_checks.py k8s-config OUT   write the ConfigMap's cybersyn.yaml to OUT

Needs PyYAML. Exits non-zero with one line per problem.
"""
import json
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
# CYBERSYN_DEPLOY_RULES: another rules file (check_deploy.sh's self-test of `metrics`).
RULES = os.environ.get("CYBERSYN_DEPLOY_RULES") or os.path.join(DEPLOY, "prometheus", "rules", "cybersyn.rules.yml")
PROM_RULE = os.path.join(DEPLOY, "k8s", "prometheusrule.yaml")

# Metrics the rules/dashboard may use before a role exports them: none. Any cybersyn_* name in
# the rules or the dashboard that no role's sources register is a failure (typo or missing
# metric). An entry here would have to name an unexported metric; exported ones are refused.
ASSUMED = {}

problems = []


def problem(msg):
    problems.append(msg)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_files():
    d = os.path.join(DEPLOY, "k8s")
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if f.endswith(".yaml") and f != "kustomization.yaml")


def prometheus_rule_doc():
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "cybersyn", "labels": {"app.kubernetes.io/part-of": "cybersyn"}},
        "spec": {"groups": groups},
    }


def sync_rules():
    header = ("# GENERATED from deploy/prometheus/rules/cybersyn.rules.yml by\n"
              "#   python3 tests/deploy/deploy_checks.py sync-rules\n"
              "# Edit the rules file (and its promtool tests), then regenerate; the suite fails on drift.\n")
    with open(PROM_RULE, "w") as f:
        f.write(header)
        yaml.safe_dump(prometheus_rule_doc(), f, sort_keys=False, width=100)


def rules_in_sync():
    if not os.path.exists(PROM_RULE):
        problem(f"{PROM_RULE} missing; run: python3 tests/deploy/deploy_checks.py sync-rules")
        return
    got = load_all(PROM_RULE)
    if got != [prometheus_rule_doc()]:
        problem("deploy/k8s/prometheusrule.yaml differs from deploy/prometheus/rules/"
                "cybersyn.rules.yml; run: python3 tests/deploy/deploy_checks.py sync-rules")


def crds():
    for path in k8s_files():
        for doc in load_all(path):
            kind = doc.get("kind")
            where = f"{os.path.relpath(path, ROOT)}: {kind}/{doc.get('metadata', {}).get('name')}"
            if kind not in ("ServiceMonitor", "PrometheusRule"):
                continue
            if doc.get("apiVersion") != "monitoring.coreos.com/v1":
                problem(f"{where}: apiVersion must be monitoring.coreos.com/v1")
            spec = doc.get("spec") or {}
            if kind == "ServiceMonitor":
                unknown = set(spec) - {"selector", "endpoints", "namespaceSelector", "jobLabel",
                                       "targetLabels", "podTargetLabels", "sampleLimit"}
                if unknown:
                    problem(f"{where}: unknown spec keys {sorted(unknown)}")
                if not (spec.get("selector") or {}).get("matchLabels"):
                    problem(f"{where}: spec.selector.matchLabels required")
                for ep in spec.get("endpoints") or []:
                    if not ep.get("port"):
                        problem(f"{where}: every endpoint needs a named port")
                    if "interval" in ep and not re.fullmatch(r"\d+(ms|s|m|h)", str(ep["interval"])):
                        problem(f"{where}: bad interval {ep['interval']!r}")
                if not spec.get("endpoints"):
                    problem(f"{where}: spec.endpoints required")
            else:
                groups = spec.get("groups")
                if not isinstance(groups, list) or not groups:
                    problem(f"{where}: spec.groups must be a non-empty list")
                    continue
                for g in groups:
                    if not g.get("name") or not isinstance(g.get("rules"), list):
                        problem(f"{where}: every group needs name and rules")
                    for r in g.get("rules", []):
                        if ("alert" in r) == ("record" in r) or not r.get("expr"):
                            problem(f"{where}: rule needs exactly one of alert/record and an expr: {r}")


def pod_templates(doc):
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job"):
        return doc["spec"]["template"]
    return None


def parse_mem(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|KiB|MiB|GiB|TiB|k|M|G|KB|MB|GB)?", str(q))
    if not m:
        raise ValueError(q)
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "KiB": 1 << 10,
            "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "k": 1000, "M": 10**6, "G": 10**9,
            "KB": 1000, "MB": 10**6, "GB": 10**9}[m.group(2)]
    return int(m.group(1)) * mult


def k8s_config():
    for path in k8s_files():
        for doc in load_all(path):
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "cybersyn-config":
                return doc["data"]["cybersyn.yaml"]
    problem("deploy/k8s: no ConfigMap cybersyn-config with data cybersyn.yaml")
    return ""


def k8s_refs():
    docs = []
    for path in k8s_files():
        docs += [(os.path.relpath(path, ROOT), d) for d in load_all(path)]
    with open(os.path.join(DEPLOY, "k8s", "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    listed = set(kust.get("resources", []))
    for path in k8s_files():
        if os.path.basename(path) not in listed:
            problem(f"kustomization.yaml does not list {os.path.basename(path)}")
    for r in listed:
        if not os.path.exists(os.path.join(DEPLOY, "k8s", r)):
            problem(f"kustomization.yaml lists missing {r}")
    config = yaml.safe_load(k8s_config() or "{}") or {}
    by_kind = {}
    for where, d in docs:
        by_kind.setdefault(d["kind"], []).append((where, d))
    names = {(d["kind"], d["metadata"]["name"]) for _, d in docs}
    token_envs = {op["token_env"] for op in config.get("operators", []) if "token_env" in op}
    secret_keys = {}
    for _, d in by_kind.get("Secret", []):
        secret_keys[d["metadata"]["name"]] = set((d.get("data") or {})) | set((d.get("stringData") or {}))
    pods = []
    for where, d in docs:
        t = pod_templates(d)
        if t is None:
            continue
        pods.append((where, d, t))
        name = f"{where}: {d['kind']}/{d['metadata']['name']}"
        sel = (d["spec"].get("selector") or {}).get("matchLabels")
        labels = t["metadata"].get("labels", {})
        if d["kind"] != "Job" and (not sel or any(labels.get(k) != v for k, v in sel.items())):
            problem(f"{name}: selector {sel} does not match the pod labels {labels}")
        vols = {v["name"]: v for v in t["spec"].get("volumes", [])}
        claims = {c["metadata"]["name"] for c in d["spec"].get("volumeClaimTemplates", [])}
        for v in vols.values():
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in names:
                problem(f"{name}: volume {v['name']} refers to missing ConfigMap")
            if "secret" in v and ("Secret", v["secret"]["secretName"]) not in names:
                problem(f"{name}: volume {v['name']} refers to missing Secret")
        for c in t["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols and m["name"] not in claims:
                    problem(f"{name}: mount {m['name']} has no volume")
            for ef in c.get("envFrom", []):
                sname = ef.get("secretRef", {}).get("name")
                if sname and sname not in secret_keys:
                    problem(f"{name}: envFrom refers to missing Secret {sname}")
                elif sname and not token_envs <= secret_keys[sname]:
                    problem(f"{name}: Secret {sname} lacks {sorted(token_envs - secret_keys[sname])}")
            if token_envs and not c.get("envFrom"):
                problem(f"{name}: the config reads token_env {sorted(token_envs)}: set them (envFrom)")
            if "/etc/cybersyn/cybersyn.yaml" not in mounts:
                problem(f"{name}: config not mounted at /etc/cybersyn/cybersyn.yaml")
            listen = config.get("listen") or {}
            tls_files = [f for k in ("tls", "http_tls") for f in (listen.get(k) or {}).values()]
            for f in tls_files:
                if not any(f.startswith(p + "/") for p in mounts):
                    problem(f"{name}: TLS file {f} from the config is not mounted")
            if d["kind"] == "Deployment" and (c.get("args") or [None])[0] == "gateway":
                gid = flag_value(c.get("args") or [], "--gateway-id")
                env = {e["name"]: e for e in c.get("env", [])}
                var = re.fullmatch(r"\$\((\w+)\)", gid or "")
                if not var or (env.get(var.group(1), {}).get("valueFrom", {}).get("fieldRef", {})
                               .get("fieldPath") != "metadata.name"):
                    problem(f"{name}: gateways need their own id: --gateway-id $(VAR) with VAR "
                            f"from the pod name (metadata.name), got {gid!r}")
            if d["kind"] == "Job":
                continue
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                p = c.get(probe)
                if not p or p.get("httpGet", {}).get("path") != path:
                    problem(f"{name}: {probe} must GET {path}")
                elif p["httpGet"]["port"] not in ports or ports[p["httpGet"]["port"]] != 9464:
                    problem(f"{name}: {probe} must use the metrics port (9464)")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits", {}).get("memory"):
                problem(f"{name}: resources.requests and limits.memory required")
            role = d["metadata"]["name"].removeprefix("cybersyn-")
            cfg_limit = (config.get(role) or {}).get("memory_limit")
            if cfg_limit and res.get("limits", {}).get("memory"):
                if parse_mem(res["limits"]["memory"]) <= 2 * parse_mem(cfg_limit):
                    problem(f"{name}: memory limit {res['limits']['memory']} must leave room above "
                            f"{role}.memory_limit {cfg_limit} (more than twice it)")
            if d["kind"] == "StatefulSet":
                state_dir = (config.get(role) or {}).get("state_dir")
                if mounts.get(state_dir) not in claims:
                    problem(f"{name}: {role}.state_dir {state_dir} is not on a PersistentVolumeClaim")
    for where, s in by_kind.get("Service", []):
        sel = s["spec"].get("selector", {})
        matched = [t for _, _, t in pods if all(t["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if not matched:
            problem(f"{where}: Service/{s['metadata']['name']} selects no pod")
        for p in s["spec"]["ports"]:
            if matched and not any(p["targetPort"] in {cp["name"] for c in t["spec"]["containers"] for cp in c.get("ports", [])} for t in matched):
                problem(f"{where}: Service/{s['metadata']['name']} targetPort {p['targetPort']} not a pod port")
    for where, d in by_kind.get("StatefulSet", []):
        svc = [s for _, s in by_kind.get("Service", []) if s["metadata"]["name"] == d["spec"]["serviceName"]]
        if not svc or svc[0]["spec"].get("clusterIP") != "None":
            problem(f"{where}: StatefulSet/{d['metadata']['name']} needs a headless Service {d['spec']['serviceName']}")
    for kind in ("StatefulSet", "Deployment"):
        for where, d in by_kind.get(kind, []):
            lbl = d["spec"]["selector"]["matchLabels"]
            if not any(p["spec"]["selector"].get("matchLabels") == lbl for _, p in by_kind.get("PodDisruptionBudget", [])):
                problem(f"{where}: {kind}/{d['metadata']['name']} has no PodDisruptionBudget")
    sm = [d for _, d in by_kind.get("ServiceMonitor", [])]
    for where, s in by_kind.get("Service", []):
        if any(p["name"] == "metrics" for p in s["spec"]["ports"]) and not any(
                all(s["metadata"].get("labels", {}).get(k) == v for k, v in m["spec"]["selector"]["matchLabels"].items()) for m in sm):
            problem(f"{where}: Service/{s['metadata']['name']} has a metrics port no ServiceMonitor selects")


def flag_value(argv, flag):
    """The value of FLAG in an argv list (`--flag V` or `--flag=V`), or None."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if isinstance(a, str) and a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def compose_refs():
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith((".", "/")) and not os.path.exists(os.path.join(DEPLOY, src)):
                problem(f"compose.yaml: {name} mounts missing {src}")
        cmd = svc.get("command") or []
        for arg in cmd if isinstance(cmd, list) else []:
            m = re.match(r"sim:(/etc/cybersyn/.*)", str(arg))
            if m and not os.path.exists(os.path.join(DEPLOY, "compose", m.group(1)[len("/etc/cybersyn/"):])):
                problem(f"compose.yaml: {name} simulates from missing {m.group(1)}")
    ids = [flag_value(s.get("command") or [], "--gateway-id")
           for n, s in services.items() if n.startswith("gateway")]
    if len(set(ids)) != len(ids) or None in ids:
        problem(f"compose.yaml: every gateway needs its own --gateway-id, got {ids}")
    with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                host, port = t.rsplit(":", 1)
                if host != "localhost" and host not in services:
                    problem(f"prometheus.yml: job {job['job_name']} scrapes {t}: no such compose service")
                if job["job_name"].startswith("cybersyn-") and port != "9464":
                    problem(f"prometheus.yml: {t}: Cybersyn serves /metrics on 9464")
                if job["job_name"].startswith("cybersyn-"):
                    cmd = services[host].get("command") or []
                    if "gateway" in job["job_name"] and "0.0.0.0:9464" not in cmd:
                        problem(f"compose.yaml: {host} must serve --metrics 0.0.0.0:9464")
    for n in ("gateway-1", "gateway-2"):
        if (services[n].get("command") or [None])[0] != "gateway":
            problem(f"compose.yaml: {n} must run `cybersyn gateway`")
    ds_uids = set()
    for root, _, files in os.walk(os.path.join(DEPLOY, "grafana", "provisioning", "datasources")):
        for fn in files:
            with open(os.path.join(root, fn)) as f:
                ds_uids |= {d["uid"] for d in yaml.safe_load(f)["datasources"]}
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "cybersyn.json")) as f:
        dash = json.load(f)
    ds_var = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    if not ds_var or ds_var[0]["current"]["value"] not in ds_uids:
        problem("dashboard: the datasource variable must default to a provisioned datasource uid")
    titles = [p["title"] for p in dash["panels"]]
    for needed in ("throughput", "lag", "quantiles", "signals by level", "indicator"):
        if not any(needed in t.lower() for t in titles):
            problem(f"dashboard: no panel about {needed!r}")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problem("dashboard: duplicate panel ids")


def exported_metrics():
    names = set()
    roles = set()
    for d in ("ingest", "aggregator", "alerter", "query", "common", "opsroom", "cli"):
        for root, _, files in os.walk(os.path.join(ROOT, d)):
            for fn in files:
                if fn.endswith((".cc", ".h")) and not fn.endswith("_test.cc"):
                    with open(os.path.join(root, fn), errors="replace") as f:
                        text = f.read()
                        names |= set(re.findall(r'"(cybersyn_[a-z_]+)"', text))
                        roles |= set(re.findall(r'\.role = "([a-z_]+)"', text))
    # The stream runtime names its metrics after the role running it: cybersyn_<role>_<suffix>.
    for root, _, files in os.walk(os.path.join(ROOT, "stream")):
        for fn in files:
            if fn.endswith((".cc", ".h")) and not fn.endswith("_test.cc"):
                with open(os.path.join(root, fn), errors="replace") as f:
                    for suffix in re.findall(r'Name\(p \+ "(_[a-z_]+)"\)', f.read()):
                        names |= {f"cybersyn_{r}{suffix}" for r in roles}
    return names


def used_metrics():
    used = {}
    with open(RULES) as f:
        text = f.read()
    with open(os.path.join(DEPLOY, "grafana", "dashboards", "cybersyn.json")) as f:
        text += f.read()
    for m in re.findall(r"(?<![:\w])(cybersyn_[a-z_]+)(?![:\w])", text):
        if ":" in m:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        used[base] = True
    # regex selectors like {__name__=~"cybersyn_(aggregator|alerter)_restoring_partitions"}
    for alts, tail in re.findall(r'cybersyn_\(([a-z|]+)\)_([a-z_]+)', text):
        for a in alts.split("|"):
            used[f"cybersyn_{a}_{tail}"] = True
    return {u for u in used if not u.endswith("_")}


def metrics():
    exported = exported_metrics()
    if not exported:
        problem("found no exported cybersyn_* metric in the sources")
    for m in sorted(used_metrics()):
        if m not in exported and m not in ASSUMED:
            problem(f"{m}: used by rules/dashboard but exported by no role (typo, or export it from the role)")
    for m in sorted(ASSUMED):
        if m in exported:
            problem(f"{m}: now exported; remove it from ASSUMED in tests/deploy/deploy_checks.py")
    for m in sorted(exported):
        # `store` and `kafka` are components every role has (RocksDB, librdkafka clients).
        if m != "cybersyn_build_info" and not re.fullmatch(
                r"cybersyn_(gateway|aggregator|alerter|query|opsroom|store|kafka|test)_[a-z_]+", m):
            problem(f"{m}: expected cybersyn_<role>_<name> (or cybersyn_build_info)")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "sync-rules":
        sync_rules()
    elif cmd == "rules-in-sync":
        rules_in_sync()
    elif cmd == "crds":
        crds()
    elif cmd == "k8s-refs":
        k8s_refs()
    elif cmd == "compose-refs":
        compose_refs()
    elif cmd == "metrics":
        metrics()
    elif cmd == "k8s-config" and len(argv) == 3:
        text = k8s_config()
        with open(argv[2], "w") as f:
            f.write(text)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"deploy_checks {cmd}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
