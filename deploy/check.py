#!/usr/bin/env python3
"""Static checks of deploy/ against the code; no Docker engine or cluster needed.

  python3 deploy/check.py            (from the repository root; needs python3-yaml)

1. every YAML file parses (multi-document) and the dashboard JSON parses;
2. `kubectl kustomize` renders each overlay, when kubectl is on PATH (client only, no cluster);
3. every flag passed to an r1r process in compose or k8s is declared by that process
   (services/<name>/main.cc plus common/rpc/server.cc AddServerFlags);
4. the gRPC / metrics ports in compose, prometheus.yml and k8s match the services' defaults;
5. every r1r_* metric the dashboard queries is registered under common/ or services/;
6. the job specs copied under deploy/k8s are identical to configs/;
7. every Dockerfile's RUN commands pass `sh -n`, its COPY sources exist, no `# syntax=` line, and the
   from-source ones (and tools/deploy/image) package every binary the compose/k8s files start;
   deploy/**/*.sh pass sh -n (and shellcheck).
Exit status 1 when any check fails.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
SERVICES = ["orchestrator", "learner", "actor", "reward", "judge", "serve"]
errors = []


def err(msg):
    errors.append(msg)
    print("FAIL", msg)


def rel(p):
    return os.path.relpath(p, ROOT)


class ComposeLoader(yaml.SafeLoader):
    pass


# ---------------------------------------------------------------- 1. syntax
yaml_files = sorted(glob.glob(os.path.join(DEPLOY, "**", "*.y*ml"), recursive=True))
docs_by_file = {}
for f in yaml_files:
    try:
        with open(f) as fh:
            docs_by_file[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
    except yaml.YAMLError as e:
        err(f"{rel(f)}: YAML: {e}")
json_files = sorted(glob.glob(os.path.join(DEPLOY, "**", "*.json"), recursive=True))
dashboards = {}
for f in json_files:
    try:
        with open(f) as fh:
            dashboards[f] = json.load(fh)
    except json.JSONDecodeError as e:
        err(f"{rel(f)}: JSON: {e}")
print(f"syntax: {len(yaml_files)} YAML files, {len(json_files)} JSON files")

# ---------------------------------------------------------------- 2. kustomize
rendered = {}
kubectl = shutil.which("kubectl")
if kubectl:
    for overlay in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "overlays", "*"))):
        token = os.path.join(overlay, "auth-token.txt")
        created = not os.path.exists(token)
        if created:  # the Secret's source file is local-only (gitignored); use a throwaway one
            with open(token, "w") as fh:
                fh.write("check-only-token\n")
        try:
            out = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True, timeout=120)
        finally:
            if created:
                os.remove(token)
        if out.returncode != 0:
            err(f"kubectl kustomize {rel(overlay)}: {out.stderr.strip()}")
            continue
        rendered[os.path.basename(overlay)] = [d for d in yaml.safe_load_all(out.stdout) if d]
        print(f"kustomize: {rel(overlay)} renders {len(rendered[os.path.basename(overlay)])} objects")
    for comp in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "components", "*"))):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "kustomization.yaml"), "w") as fh:
                fh.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                         f"resources: [{os.path.relpath(os.path.join(DEPLOY, 'k8s', 'base'), tmp)}]\n"
                         f"components: [{os.path.relpath(comp, tmp)}]\n")
            out = subprocess.run([kubectl, "kustomize", tmp], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            err(f"kubectl kustomize base + {rel(comp)}: {out.stderr.strip()}")
        else:
            n = len([d for d in yaml.safe_load_all(out.stdout) if d])
            print(f"kustomize: base + {rel(comp)} renders {n} objects")
else:
    print("kustomize: kubectl not found; overlays not rendered")

# ---------------------------------------------------------------- 3. flags
flag_re = re.compile(r'\.(?:Value|Switch)\("([a-z0-9-]+)"')
server_flags = set(flag_re.findall(open(os.path.join(ROOT, "common/rpc/server.cc")).read())) | {"help"}
declared = {}
for s in SERVICES:
    main = os.path.join(ROOT, "services", s, "main.cc")
    declared[s] = server_flags | set(flag_re.findall(open(main).read()))


def check_args(where, argv):
    if not argv:
        return
    name = argv[0].removeprefix("r1r-")
    if name not in declared:
        return
    for a in argv[1:]:
        if not isinstance(a, str) or not a.startswith("--"):
            continue
        flag = a[2:].split("=", 1)[0]
        if flag not in declared[name]:
            err(f"{where}: r1r-{name} has no flag --{flag}")


def r1r_containers(objs):
    for o in objs:
        if o.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        for c in o["spec"]["template"]["spec"]["containers"]:
            if c.get("image", "").split("/")[-1].split(":")[0] == "r1r":
                yield o, c


ports = {"orchestrator": (50051, 9101), "learner": (50052, 9102), "actor": (50053, 9103),
         "reward": (50054, 9104), "judge": (50055, 9105), "serve": (50056, 9106)}
for s, (g, m) in ports.items():
    src = open(os.path.join(ROOT, "services", s, "main.cc")).read()
    if not re.search(rf'default_listen = "[^"]*:{g}"', src) or not re.search(rf'default_metrics = "[^"]*:{m}"', src):
        err(f"services/{s}/main.cc: default ports are not {g}/{m} any more; update deploy/")

def check_listen(where, argv):
    """A container must listen on every interface (the services default to loopback), on its port."""
    want_g, want_m = ports[argv[0]]
    if not any(a == f"--listen=0.0.0.0:{want_g}" for a in argv):
        err(f"{where}: needs --listen=0.0.0.0:{want_g} (the default is loopback, unreachable from other containers)")
    if not any(a == f"--metrics-listen=0.0.0.0:{want_m}" for a in argv):
        err(f"{where}: needs --metrics-listen=0.0.0.0:{want_m} (Prometheus scrapes it from another container)")


def check_learner_ranks(where, sts, objs):
    """The learner's pods are its data-parallel ranks: replicas, --dist-* flags and Services agree."""
    c = sts["spec"]["template"]["spec"]["containers"][0]
    flags = dict(a[2:].split("=", 1) for a in c.get("args", []) if a.startswith("--") and "=" in a)
    n = sts["spec"].get("replicas", 1)
    if int(flags.get("dist-world-size", "1")) != n:
        err(f"{where}: learner --dist-world-size={flags.get('dist-world-size', '1')} but {n} replicas")
    if n > 1 and flags.get("dist-rank") != "hostname":
        err(f"{where}: {n} learner replicas need --dist-rank=hostname (pod r1r-learner-N is rank N)")
    if n > 1 and sts["spec"].get("podManagementPolicy") != "Parallel":
        err(f"{where}: learner ranks must start together (podManagementPolicy: Parallel)")
    rendezvous = {p["name"]: p["containerPort"] for p in c.get("ports", [])}.get("rendezvous")
    want_master = f"r1r-learner-0.{sts['spec']['serviceName']}:{rendezvous}"
    if flags.get("dist-master") != want_master:
        err(f"{where}: learner --dist-master={flags.get('dist-master')}, expected {want_master}")
    services = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "Service"}
    ranks = services.get(sts["spec"]["serviceName"], {})
    if ranks.get("clusterIP") != "None" or not ranks.get("publishNotReadyAddresses"):
        err(f"{where}: Service {sts['spec']['serviceName']} must be headless with publishNotReadyAddresses")
    if services.get("r1r-learner", {}).get("selector", {}).get("statefulset.kubernetes.io/pod-name") != "r1r-learner-0":
        err(f"{where}: Service r1r-learner must select rank 0 only (the other ranks refuse calls)")


compose_files = [f for f in yaml_files if "/compose/docker-compose" in f]
for f in compose_files:
    for doc in docs_by_file.get(f, []):
        for svc, spec in (doc.get("services") or {}).items():
            cmd = spec.get("command")
            if isinstance(cmd, list) and cmd and cmd[0] in ports:
                check_args(f"{rel(f)}:{svc}", cmd)
                check_listen(f"{rel(f)}:{svc}", cmd)

for f in compose_files:  # learner ranks started by one file: world size, ranks 0..N-1, one master
    ranks = {}
    for doc in docs_by_file.get(f, []):
        for svc, spec in (doc.get("services") or {}).items():
            cmd = spec.get("command")
            if isinstance(cmd, list) and cmd and cmd[0] == "learner":
                flags = dict(a[2:].split("=", 1) for a in cmd if isinstance(a, str) and a.startswith("--") and "=" in a)
                if "dist-world-size" in flags:
                    ranks[svc] = flags
    if ranks:
        try:
            world = {int(fl["dist-world-size"]) for fl in ranks.values()}
            numbers = sorted(int(fl.get("dist-rank", "0")) for fl in ranks.values())
        except ValueError:
            err(f"{rel(f)}: compose learner ranks need numeric --dist-world-size and --dist-rank")
            continue
        masters = {fl.get("dist-master") for fl in ranks.values()}
        rank0 = [svc for svc, fl in ranks.items() if fl.get("dist-rank", "0") == "0"]
        if len(world) != 1 or numbers != list(range(len(ranks))) or world != {len(ranks)}:
            err(f"{rel(f)}: learner ranks {numbers} with --dist-world-size {sorted(world)}: need ranks 0..N-1 of N")
        elif len(masters) != 1 or not rank0 or not next(iter(masters)).startswith(rank0[0] + ":"):
            err(f"{rel(f)}: every learner rank needs --dist-master=<rank 0's service>:PORT, got {sorted(masters)}")

# The actors pull weights only from the learner addresses they allow (--learner-targets, default loopback):
# the orchestrator's --learner must be one of them, or every job fails at its first weight sync.
def check_learner_targets(where, orch_args, actor_args, env):
    if "learner-targets" not in declared["actor"]:
        return
    learner = dict(a[2:].split("=", 1) for a in orch_args if a.startswith("--") and "=" in a).get("learner", "")
    allowed = dict(a[2:].split("=", 1) for a in actor_args if a.startswith("--") and "=" in a).get("learner-targets")
    allowed = allowed or env.get("R1R_LEARNER_TARGETS")
    if not allowed:
        err(f"{where}: the actor has no --learner-targets / R1R_LEARNER_TARGETS; it would refuse the orchestrator's "
            f"--learner={learner} (the default allows loopback only)")
        return
    host = learner.rsplit(":", 1)[0]
    if learner not in allowed.split(",") and f"{host}:*" not in allowed.split(","):
        err(f"{where}: the actor allows learners {allowed}, not the orchestrator's --learner={learner}")


base_compose = next(iter(docs_by_file.get(os.path.join(DEPLOY, "compose", "docker-compose.yml"), [])), {})
for f in compose_files:
    for doc in docs_by_file.get(f, []):
        for svc, spec in (doc.get("services") or {}).items():
            cmd = spec.get("command")
            if isinstance(cmd, list) and cmd and cmd[0] == "actor":
                env = dict(base_compose.get("services", {}).get(svc, {}).get("environment") or {})
                env.update(spec.get("environment") or {})
                check_learner_targets(f"{rel(f)}:{svc}", base_compose["services"]["orchestrator"]["command"], cmd,
                                      {k: str(v) for k, v in env.items()})

prom = docs_by_file.get(os.path.join(DEPLOY, "compose", "prometheus.yml"), [{}])[0]
targets = {t for sc in prom.get("scrape_configs", []) for st in sc.get("static_configs", []) for t in st["targets"]}
for want in ["orchestrator:9101", "learner:9102", "actor-0:9103", "actor-1:9103", "reward:9104", "judge:9105",
             "serve:9106"]:
    if want not in targets:
        err(f"deploy/compose/prometheus.yml: no scrape target {want}")

for overlay, objs in rendered.items():
    for o, c in r1r_containers(objs):
        where = f"k8s/{overlay}:{o['kind']}/{o['metadata']['name']}"
        args = c.get("args", [])
        check_args(where, args)
        if args and args[0] in ports:
            check_listen(where, args)
            g, m = ports[args[0]]
            cports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if cports.get("grpc") != g or cports.get("metrics") != m:
                err(f"{where}: container ports {cports}, expected grpc {g} metrics {m}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if c.get(probe, {}).get("grpc", {}).get("port") != g:
                    err(f"{where}: {probe} is not a gRPC probe on {g}")
            ann = o["spec"]["template"]["metadata"].get("annotations", {})
            if ann.get("prometheus.io/port") != str(m):
                err(f"{where}: prometheus.io/port {ann.get('prometheus.io/port')}, expected {m}")
            if "--auth-token-file=/etc/r1r/auth/token" not in args:
                err(f"{where}: no --auth-token-file")
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "r1r-actor":
            n = o["spec"].get("replicas", 1)
            orch = next(c2 for o2, c2 in r1r_containers(objs) if o2["metadata"]["name"] == "r1r-orchestrator")
            actors = next(a for a in orch["args"] if a.startswith("--actors=")).split("=", 1)[1].split(",")
            want = [f"r1r-actor-{i}.r1r-actor:50053" for i in range(n)]
            if actors != want:
                err(f"k8s/{overlay}: orchestrator --actors {actors} does not match {n} actor replicas")

    for o in objs:
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "r1r-learner":
            check_learner_ranks(f"k8s/{overlay}", o, objs)
    orch = next((c for o, c in r1r_containers(objs) if o["metadata"]["name"] == "r1r-orchestrator"), None)
    for o, c in r1r_containers(objs):
        if orch and c.get("args", [""])[0] == "actor":
            check_learner_targets(f"k8s/{overlay}:{o['kind']}/{o['metadata']['name']}", orch.get("args", []),
                                  c.get("args", []), {e["name"]: e.get("value", "") for e in c.get("env", [])})


# ---------------------------------------------------------------- 5. metrics
code_metrics = set()
dynamic_prefixes = set()
for path in glob.glob(os.path.join(ROOT, "common", "**", "*.cc"), recursive=True) + \
        glob.glob(os.path.join(ROOT, "services", "**", "*.cc"), recursive=True):
    src = open(path, errors="replace").read()
    code_metrics |= set(re.findall(r'"(r1r_[a-z0-9_]+)"', src))
    code_metrics |= set(re.findall(r'"(process_[a-z_]+)"', src))
    # absl::StrCat("r1r_serve_", rpc, "_seconds") with rpc in {"compare", "rank"}
    for pre, suf in re.findall(r'StrCat\("(r1r_[a-z_]+_)",\s*\w+,\s*"(_[a-z_]+)"\)', src):
        dynamic_prefixes.add((pre, suf))
for path in glob.glob(os.path.join(ROOT, "services", "serve", "*.cc")):
    for rpc in re.findall(r'CountRequest\("([a-z]+)"', open(path).read()):
        for pre, suf in dynamic_prefixes:
            code_metrics.add(f"{pre}{rpc}{suf}")
suffixes = ("_bucket", "_sum", "_count")
for f, dash in dashboards.items():
    used = set()
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            used |= set(re.findall(r"\b((?:r1r|process)_[a-z0-9_]+)", t.get("expr", "")))
    for v in dash.get("templating", {}).get("list", []):
        used |= set(re.findall(r"\b(r1r_[a-z0-9_]+)", json.dumps(v.get("query", ""))))
    missing = []
    for name in sorted(used):
        base = name
        for s in suffixes:
            if name.endswith(s) and name[: -len(s)] in code_metrics:
                base = name[: -len(s)]
        if base not in code_metrics:
            missing.append(name)
    for name in missing:
        err(f"{rel(f)}: metric {name} is not registered anywhere under common/ or services/")
    unused = sorted(m for m in code_metrics if m.startswith("r1r_") and m not in
                    {u[: -len(s)] if u.endswith(s) else u for u in used for s in suffixes + ("",)}
                    and not m.endswith("_"))
    print(f"metrics: {rel(f)} queries {len(used)} names, all registered: {not missing}; "
          f"registered but not on the dashboard: {', '.join(unused) or 'none'}")

# Grafana: every panel has a unit and a description; the data source the dashboard selects is the
# provisioned one (uid), and every panel and query uses it through the variable.
prov = docs_by_file.get(os.path.join(DEPLOY, "compose", "grafana", "provisioning", "datasources", "prometheus.yml"), [{}])[0]
uids = {d.get("uid") for d in prov.get("datasources", [])}
for f, dash in dashboards.items():
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            continue
        if not p.get("description"):
            err(f"{rel(f)}: panel {p['title']!r} has no description")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            err(f"{rel(f)}: panel {p['title']!r} has no unit")
        for obj in [p] + p.get("targets", []):
            if obj.get("datasource", {}).get("uid") != "${datasource}":
                err(f"{rel(f)}: panel {p['title']!r} does not use the $datasource variable")
    ds = [v for v in dash.get("templating", {}).get("list", []) if v.get("name") == "datasource"]
    if not ds or ds[0].get("current", {}).get("value") not in uids:
        err(f"{rel(f)}: the datasource variable's value is not a provisioned uid ({sorted(map(str, uids))})")

# ---------------------------------------------------------------- 6. copied specs
for copy in glob.glob(os.path.join(DEPLOY, "k8s", "**", "configs", "*.yaml"), recursive=True):
    orig = os.path.join(ROOT, "configs", os.path.basename(copy))
    if not os.path.exists(orig) or open(orig).read() != open(copy).read():
        err(f"{rel(copy)} differs from {rel(orig)}: cp {rel(orig)} {rel(copy)}")

# ---------------------------------------------------------------- 7. Dockerfiles
def dockerfile_instructions(path):
    lines, cur = [], ""
    for raw in open(path).read().splitlines():
        if raw.strip().startswith("#"):
            if raw.startswith("# syntax="):
                err(f"{rel(path)}: a '# syntax=' line makes BuildKit pull a frontend image from a registry")
            continue  # Docker drops comment lines, also inside continued instructions
        if raw.endswith("\\"):
            cur += raw[:-1] + " "
            continue
        cur += raw
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    return lines


for dockerfile in sorted(glob.glob(os.path.join(DEPLOY, "docker", "Dockerfile*"))):
    if dockerfile.endswith(".dockerignore"):
        continue
    name = rel(dockerfile)
    lines = dockerfile_instructions(dockerfile)
    stage = None
    built_bins = set()
    # Dockerfile.prebuilt's context is staged by tools/deploy/image (bin/ + configs/ + deploy/docker/*).
    prebuilt = dockerfile.endswith(".prebuilt")
    context = os.path.join(DEPLOY, "docker") if dockerfile.endswith(".prometheus") else ROOT
    for ins in lines:
        word, _, rest = ins.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage = rest.split()[-1]
        elif word == "RUN":
            body = re.sub(r"^(--mount=\S+\s+)+", "", rest)
            r = subprocess.run(["sh", "-n", "-c", body], capture_output=True, text=True)
            if r.returncode != 0:
                err(f"{name}: RUN fails sh -n: {r.stderr.strip()}")
        elif word == "COPY" and "--from=" not in rest:
            for src in rest.split()[:-1]:
                if src.startswith("--") or (prebuilt and src.startswith("bin/")):
                    continue
                if not os.path.exists(os.path.join(context, src)):
                    err(f"{name}: COPY source {src} does not exist")
        if word == "RUN" and stage == "build":
            built_bins |= set(re.findall(r"build/(?:services|tools/cli)/(r1r[a-z-]*)", rest))
    if os.path.basename(dockerfile) in ("Dockerfile", "Dockerfile.cuda"):
        for s in SERVICES:
            if f"r1r-{s}" not in built_bins:
                err(f"{name}: the build stage does not copy r1r-{s}")
        if "r1r" not in built_bins:
            err(f"{name}: the build stage does not copy the CLI")
    print(f"dockerfile: {name}: {len(lines)} instructions, RUN bodies parse"
          + (f", binaries: {', '.join(sorted(built_bins))}" if built_bins else ""))
image_script = open(os.path.join(ROOT, "tools", "deploy", "image")).read()
for s in SERVICES:
    if not re.search(rf"add_executable\(r1r-{s}\b", open(os.path.join(ROOT, "services", s, "CMakeLists.txt")).read()):
        err(f"services/{s}/CMakeLists.txt: no target r1r-{s} (the Dockerfiles build it)")
    if f"services/r1r-{s}" not in image_script:
        err(f"tools/deploy/image: does not package r1r-{s}")

shellcheck = shutil.which("shellcheck")
for sh in glob.glob(os.path.join(DEPLOY, "**", "*.sh"), recursive=True):
    r = subprocess.run(["sh", "-n", sh], capture_output=True, text=True)
    if r.returncode != 0:
        err(f"{rel(sh)}: sh -n: {r.stderr.strip()}")
    if shellcheck:
        r = subprocess.run([shellcheck, sh], capture_output=True, text=True)
        if r.returncode != 0:
            err(f"{rel(sh)}: shellcheck:\n{r.stdout.strip()}")
    if not os.access(sh, os.X_OK):
        err(f"{rel(sh)}: not executable")
print(f"scripts: sh -n{' and shellcheck' if shellcheck else ''} on deploy/**/*.sh")

print("OK" if not errors else f"{len(errors)} problem(s)")
sys.exit(1 if errors else 0)
