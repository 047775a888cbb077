#!/usr/bin/env python3
"""Checks the deployment files (deploy/) against the needle configs they ship with.

No container runtime or cluster is needed: the files are read as data. What must agree:
ports (listener, admin, container ports, Services, probes, scrape targets, systemd's socket,
the image's EXPOSE), probe paths (/ready, /healthz), drain times (terminationGracePeriodSeconds
and TimeoutStopSec above preStop + drain_timeout), the non-root user, and every shipped
needle.toml must pass `needle check`.

Usage: check_deploy.py --needle PATH/TO/needle [--root REPO]   (exit 0: all agree)
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)
    return condition


def duration_seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def host_port(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def needle_check(needle, toml_text, name):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml_text)
        path = f.name
    try:
        run = subprocess.run([needle, "check", "-c", path], capture_output=True, text=True,
                             timeout=30)
        check(run.returncode == 0, f"{name}: needle check failed:\n{run.stdout}{run.stderr}")
    finally:
        os.unlink(path)


def drain_timeout(config):
    return duration_seconds(config.get("server", {}).get("drain_timeout", "30s"))


def check_kubernetes(root, needle):
    docs = []
    kdir = os.path.join(root, "deploy", "kubernetes")
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        resources = yaml.safe_load(f)["resources"]
    for name in resources:
        with open(os.path.join(kdir, name)) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    for name in os.listdir(kdir):
        check(name in resources or name == "kustomization.yaml",
              f"deploy/kubernetes/{name} is not listed in kustomization.yaml")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    (configmap,) = by_kind["ConfigMap"]
    toml_text = configmap["data"]["needle.toml"]
    needle_check(needle, toml_text, "configmap.yaml needle.toml")
    config = tomllib.loads(toml_text)
    (listener,) = config["listener"]
    listen_host, listen_port = host_port(listener["address"])
    admin_host, admin_port = host_port(config["admin"]["address"])
    check(listen_host in ("0.0.0.0", "::"), "the listener must bind every address of the pod")
    check(admin_host in ("0.0.0.0", "::"), "the admin listener must bind the pod's address "
          "(the kubelet's probes and Prometheus reach it there)")

    (deployment,) = by_kind["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]
    pod_labels = pod["metadata"]["labels"]
    check(spec["selector"]["matchLabels"].items() <= pod_labels.items(),
          "Deployment selector does not match its pod labels")
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    needle_c = containers["needle"]
    ports = {p["name"]: p["containerPort"] for p in needle_c["ports"]}
    check(ports.get("http") == listen_port,
          f"container port http {ports.get('http')} != listener port {listen_port}")
    check(ports.get("admin") == admin_port,
          f"container port admin {ports.get('admin')} != admin port {admin_port}")

    def probe_port(probe):
        port = probe["httpGet"]["port"]
        return ports.get(port) if isinstance(port, str) else port

    ready, live = needle_c["readinessProbe"], needle_c["livenessProbe"]
    check(ready["httpGet"]["path"] == "/ready", "readiness probe must be GET /ready")
    check(live["httpGet"]["path"] == "/healthz", "liveness probe must be GET /healthz")
    check(probe_port(ready) == admin_port, "readiness probe is not on the admin port")
    check(probe_port(live) == admin_port, "liveness probe is not on the admin port")

    # Shutdown: preStop sleep, then SIGTERM and drain_timeout, all inside the grace period.
    pre_stop = needle_c["lifecycle"]["preStop"]
    if "exec" in pre_stop:
        cmd = pre_stop["exec"]["command"]
        check(cmd[0] == "sleep", "preStop is expected to be a sleep")
        sleep = float(cmd[1])
    else:
        sleep = float(pre_stop["sleep"]["seconds"])
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    drain = drain_timeout(config)
    check(grace > sleep + drain,
          f"terminationGracePeriodSeconds {grace} must exceed preStop {sleep} + drain_timeout "
          f"{drain}")

    # Non-root, read-only root filesystem, resources.
    pod_sc = pod["spec"].get("securityContext", {})
    check(pod_sc.get("runAsNonRoot") is True, "pod must set runAsNonRoot: true")
    check(pod_sc.get("runAsUser", 0) != 0, "pod must run as a non-zero uid")
    for name, c in containers.items():
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation")
        res = c.get("resources", {})
        check("requests" in res and "limits" in res, f"{name}: resources requests and limits")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        check(mounts.get("/etc/needle") == "config", f"{name}: mounts the config at /etc/needle")
    check("/etc/needle/needle.toml" in needle_c["args"], "needle runs /etc/needle/needle.toml")
    reloader = containers.get("config-reloader")
    if check(reloader is not None, "a config-reloader container reloads on ConfigMap change"):
        script = " ".join(reloader["args"])
        check("kill -HUP" in script, "the config reloader sends SIGHUP")
        check(pod["spec"].get("shareProcessNamespace") is True,
              "the config reloader needs shareProcessNamespace to signal needle")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    check(volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"],
          "the config volume is the ConfigMap")

    annotations = pod["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/port") == str(admin_port),
          "prometheus.io/port annotation != admin port")
    check(annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path != /metrics")

    # Services: selectors match the pods, target ports name container ports.
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    for name in ("needle", "needle-admin"):
        s = services[name]
        check(s["spec"]["selector"].items() <= pod_labels.items(),
              f"Service {name} does not select the needle pods")
    (http_port,) = services["needle"]["spec"]["ports"]
    check(ports.get(http_port["targetPort"]) == listen_port, "Service needle -> listener port")
    (admin_svc_port,) = services["needle-admin"]["spec"]["ports"]
    check(ports.get(admin_svc_port["targetPort"]) == admin_port,
          "Service needle-admin -> admin port")

    (monitor,) = by_kind["ServiceMonitor"]
    selected = [s for s in services.values()
                if monitor["spec"]["selector"]["matchLabels"].items()
                <= s["metadata"].get("labels", {}).items()]
    check([s["metadata"]["name"] for s in selected] == ["needle-admin"],
          "the ServiceMonitor must select the needle-admin Service only")
    (endpoint,) = monitor["spec"]["endpoints"]
    check(endpoint["port"] == admin_svc_port["name"] and endpoint["path"] == "/metrics",
          "the ServiceMonitor scrapes /metrics on the admin port")

    (pdb,) = by_kind["PodDisruptionBudget"]
    check(pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(),
          "the PodDisruptionBudget does not select the needle pods")
    check(spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0,
          "rolling updates start a ready pod before draining one (maxUnavailable: 0)")

    # The upstream's headless Service is what [cluster.app] hosts names.
    headless = services["app-headless"]
    check(headless["spec"].get("clusterIP") == "None", "app-headless must be headless")
    (app_port,) = headless["spec"]["ports"]
    hosts = config["cluster"]["app"]["hosts"]
    expected = f"app-headless.default.svc.cluster.local:{app_port['port']}"
    check(expected in hosts, f"[cluster.app] hosts must name {expected}")


def ini_values(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("["):
                continue
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def check_systemd(root, needle):
    sdir = os.path.join(root, "deploy", "systemd")
    with open(os.path.join(sdir, "needle.toml")) as f:
        toml_text = f.read()
    needle_check(needle, toml_text, "deploy/systemd/needle.toml")
    config = tomllib.loads(toml_text)
    socket = ini_values(os.path.join(sdir, "needle.socket"))
    service = ini_values(os.path.join(sdir, "needle.service"))
    with open(os.path.join(sdir, "needle.service")) as f:
        service_text = f.read()
    listeners = [l["address"] for l in config["listener"]]
    check(socket["ListenStream"] == listeners,
          f"needle.socket ListenStream {socket['ListenStream']} != listeners {listeners}")
    check(socket.get("Service") == ["needle.service"], "needle.socket activates needle.service")
    check(service["ExecReload"] == ["/bin/kill -HUP $MAINPID"], "ExecReload sends SIGHUP")
    check("SIGUSR2" in service_text, "needle.service documents the upgrade signal (SIGUSR2)")
    check(service.get("Requires") == ["needle.socket"], "needle.service requires needle.socket")
    stop = duration_seconds(service["TimeoutStopSec"][0])
    check(stop > drain_timeout(config),
          f"TimeoutStopSec {stop} must exceed drain_timeout {drain_timeout(config)}")
    config_path = "/etc/" + service["ConfigurationDirectory"][0] + "/needle.toml"
    for key in ("ExecStart", "ExecStartPre"):
        check(config_path in service[key][0], f"{key} uses {config_path}")
    check(service.get("DynamicUser") == ["yes"] or service.get("User", ["root"])[0] != "root",
          "needle.service runs as an unprivileged user")


def check_containerfile(root, needle):
    with open(os.path.join(root, "deploy", "Containerfile")) as f:
        text = f.read()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(len(stages) >= 2, "the Containerfile is multi-stage")
    check(all("bookworm" in s for s in stages), f"every stage is Debian bookworm: {stages}")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    check(users and not users[-1].startswith("0") and users[-1] != "root",
          "the image runs as a non-root user")
    with open(os.path.join(root, "deploy", "kubernetes", "deployment.yaml")) as f:
        deployment = yaml.safe_load(f)
    uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    check(users and users[-1].split(":")[0] == str(uid),
          f"the image's USER {users} is the Deployment's runAsUser {uid}")
    with open(os.path.join(root, "deploy", "container", "needle.toml")) as f:
        toml_text = f.read()
    needle_check(needle, toml_text, "deploy/container/needle.toml")
    config = tomllib.loads(toml_text)
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", text, re.M)
               for p in line.split()}
    wanted = {host_port(l["address"])[1] for l in config["listener"]}
    wanted.add(host_port(config["admin"]["address"])[1])
    check(exposed == wanted, f"EXPOSE {sorted(exposed)} != the config's ports {sorted(wanted)}")
    check("COPY deploy/container/needle.toml /etc/needle/needle.toml" in text,
          "the image carries its default config at /etc/needle/needle.toml")
    check('"/etc/needle/needle.toml"' in re.search(r"^CMD (.+)$", text, re.M).group(1),
          "CMD runs /etc/needle/needle.toml")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--needle", required=True)
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    args = parser.parse_args()
    for part in (check_kubernetes, check_systemd, check_containerfile):
        try:
            part(args.root, args.needle)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            FAILURES.append(f"{part.__name__}: missing or malformed field: {e!r}")
    for failure in FAILURES:
        print("FAIL:", failure)
    if FAILURES:
        return 1
    print("deploy files agree with their configs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
