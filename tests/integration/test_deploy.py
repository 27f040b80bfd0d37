"""Offline checks of deploy/: what can be checked without a Docker engine
or a Kubernetes cluster.

- Kubernetes: `kubectl kustomize` renders the base and every overlay, and
  every rendered object follows the deployment policy (probes, resources,
  restricted security context, a ReadWriteMany data volume, one Recreate
  controller, a grace period longer than the workers' drain, ...), and
  validates against the Kubernetes schemas (kubernetes-models, npm).
- Docker: the Dockerfile is multi-stage on debian:bookworm-slim, runs as a
  numeric user, has an exec-form HEALTHCHECK; its build context configures;
  compose.yaml scales workers, gates them on a healthy controller, shares a
  named volume and asks for plain text explicitly; the compose files
  validate against the Compose specification's JSON schema.
- systemd: `systemd-analyze verify` accepts the units (warnings fail), and
  the units carry the hardening and stop settings the workers need.
- shellcheck passes on every shell script in scripts/ and deploy/.
- Every shoal flag and SHOAL_ variable used in deploy/ exists (--help).

A check whose tool is missing (kubectl, python3-yaml, systemd-analyze,
shellcheck, the built binaries) is skipped with a message naming it. The
schema checks run tests/deploy-schemas/validate.mjs (node, after `npm ci`
there); they fail instead of skipping when SHOAL_REQUIRE_TOOLS=1.
"""
import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

try:
    import yaml
except ImportError:  # Debian: python3-yaml (scripts/deps.sh installs it)
    yaml = None

SOURCE_DIR = os.environ.get(
    "SHOAL_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("SHOAL_BUILD_DIR",
                           os.path.join(SOURCE_DIR, "build"))
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
DOCKER = os.path.join(DEPLOY, "docker")
KUBERNETES = os.path.join(DEPLOY, "kubernetes")
SYSTEMD = os.path.join(DEPLOY, "systemd")
BINARIES = ("shoal-controller", "shoal-worker", "shoal-keygen")

DRAIN_DEFAULT_S = 25        # shoal-worker --drain-timeout default
BYE_MARGIN_S = 5            # after the drain: stop the rest, say BYE
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
CLUSTER_SCOPED = ("Namespace", "PersistentVolume", "StorageClass",
                  "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "PriorityClass")


def need_yaml(test):
    if yaml is None:
        test.skipTest("python3-yaml is not installed (Debian package "
                      "python3-yaml, in scripts/deps.sh)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def binary(name):
    return os.path.join(BUILD_DIR, name)


def help_text(name):
    """The --help output of a built binary, or None if it is not built."""
    path = binary(name)
    if not os.access(path, os.X_OK):
        return None
    out = subprocess.run([path, "--help"], capture_output=True, text=True,
                         timeout=30)
    return out.stdout + out.stderr


def flags_of(help_output):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_output))


def seconds(value):
    """A Compose duration ("40s", "1m30s", 40) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ms|us|h|m|s)", str(value)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1,
                                  "ms": 0.001, "us": 1e-6}[unit]
    return total


def option(argv, name):
    """The value of `--name VALUE` or `--name=VALUE` in argv, or None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


# ---- command lines: the shoal invocations found in text ---------------

BINARY_RE = re.compile(r"(?<![\w@.-])(shoal-controller|shoal-worker|shoal-keygen)"
                       r"(?![\w@.-])")
# A token that runs a binary: its name, or a path to it (absolute, ./,
# $DIR/ or build.../; not kubectl's deploy/shoal-worker).
COMMAND_RE = re.compile(r"(?:(?:/|\./|\$\{?\w+\}?/|build[\w-]*/)(?:[\w.-]+/)*)?"
                        r"(shoal-controller|shoal-worker|shoal-keygen)")
SEPARATORS = {"|", "||", "&&", ";", "&", ")", "(", "do", "done", "then"}


def invocations(argv):
    """(binary, arguments) for each shoal binary named in a token list;
    a quoted token holding a command (docker --health-cmd '...') is
    looked into too."""
    found = []
    for i, token in enumerate(argv):
        if " " in token and BINARY_RE.search(token):
            try:
                found += invocations(shlex.split(token))
            except ValueError:
                pass
            continue
        match = COMMAND_RE.fullmatch(token)
        if not match:
            continue
        args = []
        for arg in argv[i + 1:]:
            if arg in SEPARATORS or arg.startswith("#") or COMMAND_RE.fullmatch(arg):
                break
            args.append(arg)
        found.append((match.group(1), args))
    return found


def shell_lines(text):
    """Lines of shell text, backslash continuations joined, comments cut."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    return lines


def invocations_in_shell(text):
    found = []
    for line in shell_lines(text):
        if line.lstrip().startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        found += invocations(tokens)
    return found


def markdown_code_blocks(text):
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)


# ---- Kubernetes -------------------------------------------------------

def kubectl_minor():
    """kubectl's client minor version, or None if unknown."""
    try:
        out = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                             capture_output=True, text=True, timeout=30)
        info = json.loads(out.stdout)["clientVersion"]
        return int(re.match(r"\d+", info["minor"]).group(0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            subprocess.SubprocessError):
        return None


def kustomize_command():
    """The command that renders a kustomization, or (None, why not)."""
    if shutil.which("kubectl"):
        minor = kubectl_minor()
        if minor is None or minor >= 21:
            return ["kubectl", "kustomize"], None
        if not shutil.which("kustomize"):
            return None, ("kubectl 1.%d embeds kustomize v2, which cannot "
                          "render deploy/kubernetes (labels:, patches:); "
                          "install kubectl 1.21 or later" % minor)
    if shutil.which("kustomize"):
        return ["kustomize", "build"], None
    return None, ("kubectl is not installed: cannot run `kubectl kustomize` "
                  "on deploy/kubernetes (install kubectl 1.21 or later)")


def kustomizations():
    """base and every overlay: {name: directory}."""
    dirs = {"base": os.path.join(KUBERNETES, "base")}
    for path in sorted(glob.glob(os.path.join(KUBERNETES, "overlays", "*",
                                              "kustomization.yaml"))):
        d = os.path.dirname(path)
        dirs["overlays/" + os.path.basename(d)] = d
    return dirs


_rendered = {}


def render(name, directory):
    if name not in _rendered:
        out = subprocess.run(kustomize_command()[0] + [directory],
                             capture_output=True, text=True, timeout=120)
        _rendered[name] = out
    return _rendered[name]


class Rendered:
    """One rendered kustomization: its objects and lookups over them."""

    def __init__(self, name, text):
        self.name = name
        self.objects = [d for d in yaml.safe_load_all(text) if d]

    def of_kind(self, *kinds):
        return [o for o in self.objects if o.get("kind") in kinds]

    def get(self, kind, name):
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        return None

    def workloads(self):
        return self.of_kind(*WORKLOAD_KINDS)

    def component(self, component):
        """The workload whose pods run `shoal-<component>`."""
        for w in self.workloads():
            for c in containers(w):
                if any(b == "shoal-" + component for b, _ in
                       invocations(command_line(c))):
                    return w
        return None


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def containers(workload):
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec.get("containers", [])


def command_line(container):
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


def env_value(container, name):
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value")
    return None


def mount_for(workload, container, path):
    """(volumeMount, volume) of the mount holding `path`, the deepest."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    if best is None:
        return None, None
    for v in pod_spec(workload).get("volumes", []):
        if v["name"] == best["name"]:
            return best, v
    return best, None


def labels_match(selector, labels):
    return all(labels.get(k) == v
               for k, v in (selector or {}).get("matchLabels", {}).items())


class KubernetesTest(unittest.TestCase):
    """deploy/kubernetes: every kustomization renders and follows policy."""

    @classmethod
    def setUpClass(cls):
        cls.tool, cls.why_not = kustomize_command()

    def setUp(self):
        if self.tool is None:
            self.skipTest(self.why_not)
        need_yaml(self)

    def each(self):
        """Every rendered kustomization (messages name the one at fault)."""
        rendered = []
        for name, directory in kustomizations().items():
            out = render(name, directory)
            self.assertEqual(out.returncode, 0, "%s does not render:\n%s"
                             % (name, out.stderr))
            rendered.append(Rendered(name, out.stdout))
        return rendered

    # --- rendering

    def test_every_kustomization_renders_without_warnings(self):
        self.assertIn("overlays/dev", kustomizations())
        self.assertIn("overlays/production", kustomizations())
        for name, directory in kustomizations().items():
            out = render(name, directory)
            with self.subTest(kustomization=name):
                self.assertEqual(out.returncode, 0, "`%s %s` failed:\n%s"
                                 % (" ".join(self.tool), directory, out.stderr))
                self.assertNotIn("arning", out.stderr,
                                 "%s renders with warnings:\n%s"
                                 % (name, out.stderr))
                self.assertTrue(Rendered(name, out.stdout).objects,
                                "%s renders no object" % name)

    def test_objects_live_in_the_restricted_namespace(self):
        for r in self.each():
            namespaces = r.of_kind("Namespace")
            self.assertEqual(len(namespaces), 1,
                             "%s: expected one Namespace" % r.name)
            ns = namespaces[0]
            self.assertEqual(ns["metadata"].get("labels", {}).get(
                "pod-security.kubernetes.io/enforce"), "restricted",
                "%s: the namespace must enforce Pod Security 'restricted'"
                % r.name)
            for o in r.objects:
                if o["kind"] in CLUSTER_SCOPED:
                    continue
                self.assertEqual(o["metadata"].get("namespace"),
                                 ns["metadata"]["name"],
                                 "%s: %s/%s is outside namespace %s"
                                 % (r.name, o["kind"], o["metadata"]["name"],
                                    ns["metadata"]["name"]))

    # --- every workload

    def test_every_container_has_probes_and_resources(self):
        for r in self.each():
            self.assertTrue(r.workloads(), "%s: no workload" % r.name)
            for w in r.workloads():
                for c in containers(w):
                    where = "%s: %s/%s container %s" % (
                        r.name, w["kind"], w["metadata"]["name"], c["name"])
                    for probe in ("readinessProbe", "livenessProbe"):
                        self.assertIn(probe, c, "%s has no %s" % (where, probe))
                    res = c.get("resources", {})
                    for kind, key in (("requests", "cpu"),
                                      ("requests", "memory"),
                                      ("limits", "memory")):
                        self.assertIn(key, res.get(kind, {}),
                                      "%s has no resources.%s.%s"
                                      % (where, kind, key))

    def test_every_pod_runs_restricted(self):
        for r in self.each():
            for w in r.workloads():
                spec = pod_spec(w)
                pod_sc = spec.get("securityContext", {})
                for c in containers(w):
                    where = "%s: %s/%s container %s" % (
                        r.name, w["kind"], w["metadata"]["name"], c["name"])
                    sc = c.get("securityContext", {})
                    self.assertTrue(sc.get("runAsNonRoot",
                                           pod_sc.get("runAsNonRoot")),
                                    "%s: runAsNonRoot must be true" % where)
                    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
                    self.assertNotEqual(uid, 0, "%s runs as root" % where)
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True,
                                  "%s: readOnlyRootFilesystem must be true"
                                  % where)
                    self.assertIs(sc.get("allowPrivilegeEscalation"), False,
                                  "%s: allowPrivilegeEscalation must be false"
                                  % where)
                    self.assertIn("ALL", sc.get("capabilities", {}).get(
                        "drop", []), "%s: capabilities must drop ALL" % where)
                    self.assertFalse(sc.get("capabilities", {}).get("add"),
                                     "%s adds capabilities" % where)
                    self.assertFalse(sc.get("privileged"),
                                     "%s is privileged" % where)
                    seccomp = sc.get("seccompProfile",
                                     pod_sc.get("seccompProfile", {}))
                    self.assertEqual(seccomp.get("type"), "RuntimeDefault",
                                     "%s: seccompProfile must be "
                                     "RuntimeDefault" % where)

    def test_read_only_root_has_an_empty_dir_for_scratch(self):
        for r in self.each():
            for w in r.workloads():
                for c in containers(w):
                    mount, volume = mount_for(w, c, "/tmp")
                    self.assertTrue(volume and "emptyDir" in volume,
                                    "%s: %s/%s container %s needs an emptyDir "
                                    "on /tmp (its root file system is "
                                    "read-only)" % (r.name, w["kind"],
                                                    w["metadata"]["name"],
                                                    c["name"]))

    # --- the controller

    def controller(self, r):
        w = r.component("controller")
        self.assertIsNotNone(w, "%s: no workload runs shoal-controller"
                             % r.name)
        c = next(c for c in containers(w)
                 if invocations(command_line(c)))
        return w, c

    def worker(self, r):
        w = r.component("worker")
        self.assertIsNotNone(w, "%s: no workload runs shoal-worker" % r.name)
        c = next(c for c in containers(w)
                 if invocations(command_line(c)))
        return w, c

    def test_controller_is_one_replica_recreated(self):
        for r in self.each():
            w, _ = self.controller(r)
            self.assertEqual(w["kind"], "Deployment", "%s: the controller "
                             "should be a Deployment" % r.name)
            self.assertEqual(w["spec"].get("replicas"), 1,
                             "%s: the controller must have exactly 1 replica"
                             % r.name)
            self.assertEqual(w["spec"].get("strategy", {}).get("type"),
                             "Recreate", "%s: the controller's strategy must "
                             "be Recreate (two controllers must never share "
                             "the state)" % r.name)
            hpas = [h for h in r.of_kind("HorizontalPodAutoscaler")
                    if h["spec"]["scaleTargetRef"]["name"]
                    == w["metadata"]["name"]]
            self.assertFalse(hpas, "%s: the controller cannot be autoscaled"
                             % r.name)

    def http_port(self, container, port):
        if isinstance(port, int):
            return port
        for p in container.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        self.fail("container %s has no port named %s" % (container["name"],
                                                         port))

    def test_controller_probes_readyz_and_healthz(self):
        for r in self.each():
            _, c = self.controller(r)
            listen = option(command_line(c), "--http") or env_value(
                c, "SHOAL_HTTP") or "127.0.0.1:8080"
            self.assertFalse(listen.startswith("127.") or
                             listen.startswith("localhost"),
                             "%s: the controller listens on %s, which the "
                             "kubelet cannot reach" % (r.name, listen))
            port = int(listen.rsplit(":", 1)[1])
            for probe, path in (("readinessProbe", "/readyz"),
                                ("livenessProbe", "/healthz")):
                get = c.get(probe, {}).get("httpGet")
                self.assertTrue(get, "%s: the controller's %s must be an "
                                "httpGet" % (r.name, probe))
                self.assertEqual(get.get("path"), path,
                                 "%s: the controller's %s must GET %s"
                                 % (r.name, probe, path))
                self.assertEqual(self.http_port(c, get["port"]), port,
                                 "%s: the controller's %s must use port %d"
                                 % (r.name, probe, port))

    def test_controller_service_exposes_http_and_zeromq(self):
        for r in self.each():
            w, c = self.controller(r)
            argv = command_line(c)
            http = int((option(argv, "--http") or "x:8080").rsplit(":", 1)[1])
            zmq = int((option(argv, "--bind") or "x:5555").rsplit(":", 1)[1])
            labels = w["spec"]["template"]["metadata"]["labels"]
            services = [s for s in r.of_kind("Service")
                        if s["spec"].get("selector")
                        and all(labels.get(k) == v for k, v in
                                s["spec"]["selector"].items())]
            self.assertTrue(services, "%s: no Service selects the "
                            "controller's pods" % r.name)
            targets = {self.http_port(c, p.get("targetPort", p["port"]))
                       for s in services for p in s["spec"]["ports"]}
            self.assertIn(http, targets, "%s: no Service port for HTTP (%d)"
                          % (r.name, http))
            self.assertIn(zmq, targets, "%s: no Service port for ZeroMQ (%d)"
                          % (r.name, zmq))

    def claim(self, r, volume):
        self.assertTrue(volume and "persistentVolumeClaim" in volume,
                        "%s: expected a PersistentVolumeClaim volume, got %s"
                        % (r.name, volume))
        name = volume["persistentVolumeClaim"]["claimName"]
        pvc = r.get("PersistentVolumeClaim", name)
        self.assertIsNotNone(pvc, "%s: PersistentVolumeClaim %s is not in "
                             "the rendered objects" % (r.name, name))
        return pvc

    def test_data_volume_is_read_write_many_and_state_read_write_once(self):
        for r in self.each():
            cw, cc = self.controller(r)
            ww, wc = self.worker(r)
            data = option(command_line(cc), "--data-dir") or env_value(
                cc, "SHOAL_DATA_DIR")
            state = option(command_line(cc), "--state-dir") or env_value(
                cc, "SHOAL_STATE_DIR")
            self.assertTrue(data and state, "%s: give the controller "
                            "--data-dir and --state-dir" % r.name)
            data_pvc = self.claim(r, mount_for(cw, cc, data)[1])
            self.assertIn("ReadWriteMany", data_pvc["spec"]["accessModes"],
                          "%s: the data volume (%s) must be ReadWriteMany: "
                          "the controller and every worker mount it"
                          % (r.name, data_pvc["metadata"]["name"]))
            state_pvc = self.claim(r, mount_for(cw, cc, state)[1])
            self.assertNotEqual(state_pvc["metadata"]["name"],
                                data_pvc["metadata"]["name"],
                                "%s: the state must not be on the shared "
                                "volume" % r.name)
            self.assertEqual(state_pvc["spec"]["accessModes"],
                             ["ReadWriteOnce"], "%s: the state volume must be "
                             "ReadWriteOnce (SQLite, a local disk)" % r.name)
            wdata = option(command_line(wc), "--data-dir") or env_value(
                wc, "SHOAL_DATA_DIR")
            worker_pvc = self.claim(r, mount_for(ww, wc, wdata)[1])
            self.assertEqual(worker_pvc["metadata"]["name"],
                             data_pvc["metadata"]["name"],
                             "%s: workers must mount the controller's data "
                             "volume" % r.name)

    def test_definitions_come_from_a_config_map_that_passes_check(self):
        for r in self.each():
            w, c = self.controller(r)
            path = option(command_line(c), "--definitions") or env_value(
                c, "SHOAL_DEFINITIONS")
            self.assertTrue(path, "%s: the controller has no --definitions"
                            % r.name)
            mount, volume = mount_for(w, c, path)
            self.assertTrue(volume and "configMap" in volume,
                            "%s: %s is not on a ConfigMap volume"
                            % (r.name, path))
            cm = r.get("ConfigMap", volume["configMap"]["name"])
            self.assertIsNotNone(cm, "%s: ConfigMap %s is missing"
                                 % (r.name, volume["configMap"]["name"]))
            key = path[len(mount["mountPath"].rstrip("/")) + 1:]
            self.assertIn(key, cm.get("data", {}), "%s: ConfigMap %s has no "
                          "key %s" % (r.name, cm["metadata"]["name"], key))
            if not os.access(binary("shoal-controller"), os.X_OK):
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                f.write(cm["data"][key])
                f.flush()
                out = subprocess.run([binary("shoal-controller"), "--check",
                                      "--definitions", f.name],
                                     capture_output=True, text=True,
                                     timeout=30)
            self.assertEqual(out.returncode, 0, "%s: the definitions in "
                             "ConfigMap %s fail --check: %s"
                             % (r.name, cm["metadata"]["name"], out.stderr))

    # --- the workers

    def test_worker_grace_period_outlasts_the_drain(self):
        for r in self.each():
            w, c = self.worker(r)
            drain = int(option(command_line(c), "--drain-timeout")
                        or env_value(c, "SHOAL_DRAIN_TIMEOUT")
                        or DRAIN_DEFAULT_S)
            grace = pod_spec(w).get("terminationGracePeriodSeconds", 30)
            self.assertGreater(grace, drain + BYE_MARGIN_S,
                               "%s: the workers' terminationGracePeriodSeconds "
                               "(%s) must exceed their drain (%d s) by more "
                               "than %d s" % (r.name, grace, drain,
                                              BYE_MARGIN_S))

    def test_worker_probes_run_the_healthcheck(self):
        for r in self.each():
            w, c = self.worker(r)
            health = option(command_line(c), "--health-file") or env_value(
                c, "SHOAL_HEALTH_FILE")
            self.assertTrue(health, "%s: the worker needs --health-file for "
                            "its probes" % r.name)
            _, volume = mount_for(w, c, health)
            self.assertTrue(volume and "emptyDir" in volume,
                            "%s: the health file %s must be on a writable "
                            "emptyDir" % (r.name, health))
            for probe in ("readinessProbe", "livenessProbe"):
                command = c.get(probe, {}).get("exec", {}).get("command", [])
                self.assertTrue(command, "%s: the worker's %s must be an exec "
                                "probe" % (r.name, probe))
                calls = invocations(command)
                self.assertTrue(calls and calls[0][0] == "shoal-worker"
                                and "--healthcheck" in calls[0][1],
                                "%s: the worker's %s must run shoal-worker "
                                "--healthcheck, not %s"
                                % (r.name, probe, command))
                self.assertIn(option(calls[0][1], "--health-file") or health,
                              (health,), "%s: the %s reads another health "
                              "file than the worker writes" % (r.name, probe))

    def test_worker_disruption_budget(self):
        for r in self.each():
            w, _ = self.worker(r)
            labels = w["spec"]["template"]["metadata"]["labels"]
            pdbs = [p for p in r.of_kind("PodDisruptionBudget")
                    if labels_match(p["spec"].get("selector"), labels)]
            self.assertTrue(pdbs, "%s: no PodDisruptionBudget selects the "
                            "workers" % r.name)
            spec = pdbs[0]["spec"]
            self.assertTrue("maxUnavailable" in spec or "minAvailable" in spec,
                            "%s: the PodDisruptionBudget sets no limit"
                            % r.name)

    def test_workers_connect_to_the_controller_service(self):
        for r in self.each():
            _, c = self.worker(r)
            endpoint = option(command_line(c), "--connect") or env_value(
                c, "SHOAL_CONNECT")
            m = re.match(r"tcp://([^:/]+):(\d+)$", endpoint or "")
            self.assertTrue(m, "%s: the worker's --connect %r is not "
                            "tcp://SERVICE:PORT" % (r.name, endpoint))
            service = r.get("Service", m.group(1).split(".")[0])
            self.assertIsNotNone(service, "%s: workers connect to %s, which "
                                 "is no Service here" % (r.name, m.group(1)))
            self.assertIn(int(m.group(2)),
                          [p["port"] for p in service["spec"]["ports"]],
                          "%s: Service %s has no port %s"
                          % (r.name, m.group(1), m.group(2)))

    def test_transport_security_is_explicit_and_consistent(self):
        for r in self.each():
            cw, cc = self.controller(r)
            ww, wc = self.worker(r)
            cargv, wargv = command_line(cc), command_line(wc)
            cplain, wplain = "--plaintext" in cargv, "--plaintext" in wargv
            self.assertEqual(cplain, wplain, "%s: --plaintext must be given "
                             "to both the controller and the workers, or to "
                             "neither" % r.name)
            if cplain:
                continue
            for w, c, argv, needed in (
                    (cw, cc, cargv, ("--curve-secret", "--curve-clients")),
                    (ww, wc, wargv, ("--curve-secret", "--curve-server"))):
                for flag in needed:
                    var = "SHOAL_" + flag[2:].upper().replace("-", "_")
                    path = option(argv, flag) or env_value(c, var)
                    self.assertTrue(path, "%s: without --plaintext, %s needs "
                                    "%s (or %s)" % (r.name, c["name"], flag,
                                                    var))
                    _, volume = mount_for(w, c, path)
                    self.assertTrue(volume and ("secret" in volume
                                                or "projected" in volume),
                                    "%s: %s's %s (%s) must come from a "
                                    "Secret volume" % (r.name, c["name"],
                                                       flag, path))

    def test_autoscalers_scale_workers_on_queue_depth(self):
        found = False
        for r in self.each():
            for h in r.of_kind("HorizontalPodAutoscaler"):
                found = True
                w, _ = self.worker(r)
                self.assertEqual(h["spec"]["scaleTargetRef"]["name"],
                                 w["metadata"]["name"],
                                 "%s: the autoscaler must target the workers"
                                 % r.name)
                metrics = [m.get(m["type"].lower(), {}).get("metric", {})
                           .get("name") for m in h["spec"]["metrics"]]
                self.assertIn("shoal_queue_depth", metrics,
                              "%s: the autoscaler should follow "
                              "shoal_queue_depth" % r.name)
                self.assertNotIn("replicas", w["spec"],
                                 "%s: with an autoscaler the worker "
                                 "Deployment must not fix replicas" % r.name)
        self.assertTrue(found, "no overlay has the optional worker autoscaler")


class KubernetesFilesTest(unittest.TestCase):
    def test_base_definitions_are_the_example(self):
        self.assertEqual(
            read(os.path.join(KUBERNETES, "base", "definitions.yaml")),
            read(os.path.join(SOURCE_DIR, "example", "task_job_config.yaml")),
            "deploy/kubernetes/base/definitions.yaml differs from "
            "example/task_job_config.yaml: copy it again")


# ---- Docker -----------------------------------------------------------

def dockerfile_instructions(path):
    """[(INSTRUCTION, arguments)] with continuations joined."""
    out, current = [], ""
    for raw in read(path).splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def dockerfile_stages(instructions):
    stages = []
    for word, rest in instructions:
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def exec_form(rest):
    """The JSON array of an exec-form instruction, or None."""
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def apt_packages(stage):
    packages = []
    for word, rest in stage:
        if word != "RUN":
            continue
        for m in re.finditer(r"apt-get install((?:\s+[^&|;]+)+)", rest):
            packages += [p for p in m.group(1).split() if not p.startswith("-")]
    return packages


class DockerfileTest(unittest.TestCase):
    """deploy/docker/Dockerfile, read by a small parser."""

    path = os.path.join(DOCKER, "Dockerfile")

    def setUp(self):
        self.instructions = dockerfile_instructions(self.path)
        self.stages = dockerfile_stages(self.instructions)
        self.final = self.stages[-1]

    def last(self, word, stage=None):
        found = [rest for w, rest in (stage or self.final) if w == word]
        return found[-1] if found else None

    def test_multi_stage_on_bookworm_slim(self):
        self.assertGreaterEqual(len(self.stages), 2,
                                "the Dockerfile must be multi-stage")
        for stage in self.stages:
            image = stage[0][1].split()[0]
            self.assertEqual(image, "debian:bookworm-slim",
                             "every stage must be FROM debian:bookworm-slim, "
                             "not %s" % image)
        copies = [rest for w, rest in self.final if w == "COPY"
                  and rest.startswith("--from=")]
        self.assertTrue(copies, "the runtime stage copies nothing from the "
                        "build stage")

    def test_runtime_has_the_libraries_and_no_toolchain(self):
        packages = apt_packages(self.final)
        for needed in ("libzmq5", "libczmq4", "libyaml-0-2", "libjansson4",
                       "libcivetweb1", "libsqlite3-0", "python3", "wget"):
            self.assertIn(needed, packages,
                          "the runtime stage does not install %s" % needed)
        heavy = [p for p in packages if p.endswith("-dev")
                 or p in ("build-essential", "cmake", "gcc", "pkg-config")]
        self.assertFalse(heavy, "the runtime stage installs build tools: %s"
                         % heavy)
        build = apt_packages(self.stages[0])
        self.assertIn("cmake", build, "the build stage does not install cmake")

    def test_build_stage_installs_what_cmake_requires(self):
        """Each library CMakeLists.txt requires comes from a package the
        build stage installs (looked up on this machine with dpkg -S)."""
        if not (shutil.which("dpkg") and shutil.which("pkg-config")):
            self.skipTest("dpkg or pkg-config is missing: cannot map "
                          "CMakeLists.txt's libraries to packages")
        cmake = re.sub(r"#[^\n]*", "", read(os.path.join(SOURCE_DIR,
                                                         "CMakeLists.txt")))
        files = []
        for m in re.finditer(r"pkg_check_modules\s*\(\s*\w+((?:\s+[^\s)]+)+)"
                             r"\s*\)", cmake):
            words = m.group(1).split()
            if "REQUIRED" not in words:
                continue
            for module in words:
                if module in ("REQUIRED", "IMPORTED_TARGET", "QUIET",
                              "NO_CMAKE_PATH", "NO_CMAKE_ENVIRONMENT_PATH",
                              "GLOBAL"):
                    continue
                module = re.split(r"[<>=]", module)[0]
                out = subprocess.run(["pkg-config", "--path", module],
                                     capture_output=True, text=True)
                if out.returncode == 0:
                    files.append((module, out.stdout.strip()))
        for m in re.finditer(r"find_path\s*\(\s*\w+\s+(\S+)[^)]*REQUIRED",
                             cmake):
            found = glob.glob("/usr/include/" + m.group(1)) + glob.glob(
                "/usr/include/*/" + m.group(1))
            if found:
                files.append((m.group(1), found[0]))
        for m in re.finditer(r"find_library\s*\(\s*\w+\s+(\S+)[^)]*REQUIRED",
                             cmake):
            found = glob.glob("/usr/lib/*/lib%s.so" % m.group(1)) + glob.glob(
                "/usr/lib/lib%s.so" % m.group(1))
            if found:
                files.append((m.group(1), found[0]))
        self.assertTrue(files, "found none of CMakeLists.txt's libraries")
        build = set(apt_packages(self.stages[0]))
        for what, path in files:
            real = os.path.realpath(path)
            owners = set()
            for candidate in {path, real, re.sub(r"^/usr", "", real)}:
                out = subprocess.run(["dpkg", "-S", candidate],
                                     capture_output=True, text=True)
                owners |= {o.strip().split(":")[0] for line in
                           out.stdout.splitlines()
                           for o in line.rsplit(": ", 1)[0].split(",")}
            if not owners:
                continue
            self.assertTrue(owners & build, "CMakeLists.txt requires %s (%s, "
                            "package %s), which the Dockerfile's build stage "
                            "does not install" % (what, path,
                                                  " or ".join(sorted(owners))))

    def test_runs_as_a_numeric_non_root_user(self):
        user = self.last("USER")
        self.assertIsNotNone(user, "the runtime stage has no USER")
        uid, _, gid = user.partition(":")
        self.assertTrue(uid.isdigit() and (not gid or gid.isdigit()),
                        "USER must be numeric (runAsNonRoot checks it), not %s"
                        % user)
        self.assertNotEqual(int(uid), 0, "USER must not be root")

    def test_healthcheck_is_exec_form_with_a_healthcheck_mode(self):
        rest = self.last("HEALTHCHECK")
        self.assertIsNotNone(rest, "the runtime stage has no HEALTHCHECK")
        m = re.search(r"\bCMD\s+(.*)$", rest)
        self.assertTrue(m, "HEALTHCHECK has no CMD: %s" % rest)
        argv = exec_form(m.group(1))
        self.assertIsNotNone(argv, "HEALTHCHECK CMD must be in exec form "
                             "(a JSON array), not %s" % m.group(1))
        calls = invocations(argv)
        self.assertTrue(calls and "--healthcheck" in calls[0][1],
                        "HEALTHCHECK must run a shoal binary's --healthcheck, "
                        "not %s" % argv)

    def test_an_init_forwards_signals_and_reaps(self):
        entrypoint = exec_form(self.last("ENTRYPOINT") or "")
        self.assertTrue(entrypoint, "ENTRYPOINT must be in exec form")
        self.assertEqual(os.path.basename(entrypoint[0]), "tini",
                         "PID 1 should be tini (signals, orphans), not %s"
                         % entrypoint[0])
        self.assertIn("tini", apt_packages(self.final))
        self.assertIsNotNone(exec_form(self.last("CMD") or ""),
                             "CMD must be in exec form")

    def test_build_context_has_what_the_build_needs(self):
        ignore = read(os.path.join(DOCKER, "Dockerfile.dockerignore"))
        allowed = {l[1:].strip().rstrip("/") for l in ignore.splitlines()
                   if l.startswith("!")}
        sources = []
        for word, rest in self.instructions:
            if word != "COPY" or rest.startswith("--from="):
                continue
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += parts[:-1]
        self.assertTrue(sources)
        for src in sources:
            src = src.rstrip("/")
            self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, src)),
                            "COPY %s: no such path in the repository" % src)
            self.assertTrue(src in allowed or src.split("/")[0] in allowed,
                            "COPY %s is excluded by Dockerfile.dockerignore"
                            % src)
        if not shutil.which("cmake"):
            self.skipTest("cmake is not installed: cannot configure the "
                          "build stage's sources")
        build = [rest for w, rest in self.stages[0] if w == "COPY"]
        with tempfile.TemporaryDirectory() as tmp:
            for rest in build:
                parts = [p for p in rest.split() if not p.startswith("--")]
                for src in parts[:-1]:
                    src = os.path.join(SOURCE_DIR, src.rstrip("/"))
                    dst = os.path.join(tmp, os.path.basename(src))
                    if os.path.isdir(src):
                        shutil.copytree(src, dst)
                    else:
                        shutil.copy(src, dst)
            run = [r for w, r in self.stages[0] if w == "RUN" and "cmake -S" in r]
            self.assertTrue(run, "the build stage runs no cmake")
            configure = re.search(r"cmake -S[^&]*", run[0]).group(0).split()
            out = subprocess.run(configure, cwd=tmp, capture_output=True,
                                 text=True, timeout=300)
            self.assertEqual(out.returncode, 0, "the build stage's sources do "
                             "not configure (%s):\n%s"
                             % (" ".join(configure), out.stderr[-2000:]))


class ComposeTest(unittest.TestCase):
    """deploy/docker/compose.yaml (and the CURVE override)."""

    def setUp(self):
        need_yaml(self)
        self.text = read(os.path.join(DOCKER, "compose.yaml"))
        self.compose = yaml.safe_load(self.text)
        self.services = self.compose["services"]
        self.curve = yaml.safe_load(read(os.path.join(DOCKER,
                                                      "compose.curve.yaml")))

    def running(self, binary_name, services=None):
        services = services or self.services
        found = [(name, s) for name, s in services.items()
                 if any(b == binary_name for b, _ in
                        invocations([str(a) for a in s.get("command", [])]))]
        self.assertEqual(len(found), 1, "expected one service running %s"
                         % binary_name)
        return found[0]

    def argv(self, service):
        command = service.get("command", [])
        self.assertIsInstance(command, list, "write commands as lists (exec "
                              "form): %s" % command)
        return [str(a) for a in command]

    def test_services_parse(self):
        self.running("shoal-controller")
        self.running("shoal-worker")
        self.assertTrue(any("file_server.py" in " ".join(self.argv(s))
                            for s in self.services.values()),
                        "no service runs the example's file server")

    def test_no_fixed_names_or_worker_ports(self):
        for name, s in self.services.items():
            self.assertFalse("container_name" in s, "service %s has a "
                             "container_name: --scale cannot work" % name)
        name, worker = self.running("shoal-worker")
        for port in worker.get("ports", []):
            self.assertNotIn(":", str(port), "the worker publishes a fixed "
                             "host port (%s): --scale cannot work" % port)
        self.assertNotIn("hostname", worker)

    def test_every_service_has_an_exec_healthcheck(self):
        for name, s in self.services.items():
            check = s.get("healthcheck", {})
            test = check.get("test")
            self.assertFalse(check.get("disable"), "service %s disables its "
                             "healthcheck" % name)
            self.assertIsInstance(test, list, "service %s needs a healthcheck "
                                  "in exec form" % name)
            self.assertEqual(test[0], "CMD", "service %s: healthcheck test "
                             "must start with CMD (exec form)" % name)
        _, controller = self.running("shoal-controller")
        calls = invocations(controller["healthcheck"]["test"])
        self.assertTrue(calls and calls[0][0] == "shoal-controller"
                        and "--healthcheck" in calls[0][1],
                        "the controller's healthcheck must be "
                        "shoal-controller --healthcheck")
        _, worker = self.running("shoal-worker")
        calls = invocations(worker["healthcheck"]["test"])
        self.assertTrue(calls and calls[0][0] == "shoal-worker"
                        and "--healthcheck" in calls[0][1],
                        "the worker's healthcheck must be shoal-worker "
                        "--healthcheck")
        self.assertEqual(option(calls[0][1], "--health-file"),
                         option(self.argv(worker), "--health-file"),
                         "the worker's healthcheck reads another file than "
                         "its --health-file")
        self.assertTrue(option(self.argv(worker), "--health-file"),
                        "the worker needs --health-file")

    def test_workers_wait_for_a_healthy_controller(self):
        cname, _ = self.running("shoal-controller")
        _, worker = self.running("shoal-worker")
        depends = worker.get("depends_on", {})
        self.assertIsInstance(depends, dict, "depends_on needs the long form "
                              "with a condition")
        self.assertEqual(depends.get(cname, {}).get("condition"),
                         "service_healthy", "workers must depend on the "
                         "controller with condition: service_healthy")

    def test_named_volumes_for_data_and_state(self):
        volumes = self.compose.get("volumes", {})

        def volume_at(service, path):
            for v in service.get("volumes", []):
                source, _, rest = str(v).partition(":")
                if rest.split(":")[0].rstrip("/") == path.rstrip("/"):
                    return source
            return None
        _, controller = self.running("shoal-controller")
        _, worker = self.running("shoal-worker")
        cdata = volume_at(controller, option(self.argv(controller),
                                             "--data-dir"))
        wdata = volume_at(worker, option(self.argv(worker), "--data-dir"))
        self.assertIn(cdata, volumes, "the controller's --data-dir must be a "
                      "named volume")
        self.assertEqual(cdata, wdata, "the workers must mount the "
                         "controller's data volume")
        state = volume_at(controller, option(self.argv(controller),
                                             "--state-dir"))
        self.assertIn(state, volumes, "the controller's --state-dir must be "
                      "a named volume")
        self.assertNotEqual(state, cdata, "the state must not be on the "
                            "shared volume")

    def test_plaintext_is_explicit_and_explained(self):
        for binary_name in ("shoal-controller", "shoal-worker"):
            _, s = self.running(binary_name)
            self.assertIn("--plaintext", self.argv(s), "%s needs an explicit "
                          "--plaintext on the compose network" % binary_name)
        comments = "\n".join(l for l in self.text.splitlines()
                             if l.lstrip().startswith("#"))
        self.assertIn("CURVE", comments, "say in a comment how to switch to "
                      "CURVE")
        self.assertIn("compose.curve.yaml", comments)

    def test_workers_get_time_to_drain(self):
        _, worker = self.running("shoal-worker")
        drain = int(option(self.argv(worker), "--drain-timeout")
                    or worker.get("environment", {}).get("SHOAL_DRAIN_TIMEOUT")
                    or DRAIN_DEFAULT_S)
        grace = seconds(worker.get("stop_grace_period", "10s"))
        self.assertGreater(grace, drain + BYE_MARGIN_S,
                           "the worker's stop_grace_period (%ss) must exceed "
                           "its drain (%d s)" % (grace, drain))

    def test_workers_reach_the_file_server(self):
        _, worker = self.running("shoal-worker")
        endpoint = worker.get("environment", {}).get("REST_ENDPOINT", "")
        m = re.match(r"http://([^:/]+):(\d+)", endpoint)
        self.assertTrue(m, "the worker's REST_ENDPOINT %r is not "
                        "http://SERVICE:PORT" % endpoint)
        files = self.services.get(m.group(1))
        self.assertIsNotNone(files, "REST_ENDPOINT names no service")
        argv = self.argv(files)
        self.assertEqual(option(argv, "--port"), m.group(2))
        self.assertEqual(option(argv, "--bind"), "0.0.0.0",
                         "the file server must listen beyond loopback")

    def test_curve_override_replaces_plaintext(self):
        merged = {name: dict(s) for name, s in self.services.items()}
        for name, s in self.curve["services"].items():
            merged.setdefault(name, {}).update(s)
        keygen = [n for n, s in self.curve["services"].items()
                  if "curve-keys.sh" in " ".join(self.argv(s))]
        self.assertTrue(keygen, "compose.curve.yaml: no service runs "
                        "curve-keys.sh to make the keys")
        self.assertIn("shoal-keygen",
                      read(os.path.join(DOCKER, "curve-keys.sh")))
        for binary_name, flags in (
                ("shoal-controller", ("--curve-secret", "--curve-clients")),
                ("shoal-worker", ("--curve-secret", "--curve-server"))):
            name, s = self.running(binary_name, merged)
            argv = self.argv(s)
            self.assertNotIn("--plaintext", argv, "compose.curve.yaml: %s "
                             "still has --plaintext" % name)
            mounts = [str(v).split(":")[1] for v in
                      self.curve["services"][name].get("volumes", [])]
            for flag in flags:
                path = option(argv, flag)
                self.assertTrue(path, "compose.curve.yaml: %s needs %s"
                                % (name, flag))
                self.assertTrue(any(path.startswith(m.rstrip("/") + "/")
                                    for m in mounts),
                                "compose.curve.yaml: %s %s %s is on no "
                                "volume of the override" % (name, flag, path))
        cname, controller = self.running("shoal-controller", merged)
        self.assertEqual(controller.get("depends_on", {}).get(keygen[0], {})
                         .get("condition"), "service_completed_successfully",
                         "compose.curve.yaml: the controller must wait for "
                         "the keys")


# ---- schemas: Kubernetes (kubernetes-models) and Compose (compose-spec) ---

SCHEMAS = os.path.join(SOURCE_DIR, "tests", "deploy-schemas")
SCHEMA_PACKAGES = ("kubernetes-models", "ajv", "dclint")


def schema_validator_missing():
    """Why tests/deploy-schemas/validate.mjs cannot run, or None."""
    if not shutil.which("node"):
        return "node is not installed (needed for tests/deploy-schemas)"
    for package in SCHEMA_PACKAGES:
        if not os.path.isdir(os.path.join(SCHEMAS, "node_modules", package)):
            return ("tests/deploy-schemas/node_modules/%s is missing: run "
                    "`npm ci` in tests/deploy-schemas (scripts/test.sh does)"
                    % package)
    return None


def validate_documents(mode, documents):
    """Runs validate.mjs `mode` on [(source, object)]: (exit status, report
    or None, what it printed on stderr)."""
    body = json.dumps({"documents": [{"source": src, "object": obj}
                                     for src, obj in documents]},
                      default=str)
    out = subprocess.run(["node", os.path.join(SCHEMAS, "validate.mjs"), mode],
                         input=body, capture_output=True, text=True,
                         timeout=120, cwd=SCHEMAS)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        report = None
    return out.returncode, report, out.stderr


def schema_errors(report):
    return "\n".join("%s: %s/%s:\n  %s" % (e["source"], e["kind"], e["name"],
                                          "\n  ".join(e["errors"]))
                     for e in report["errors"])


class SchemaTest(unittest.TestCase):
    """Every object `kubectl kustomize` renders validates against the
    Kubernetes schemas (kubernetes-models from npm, the API's OpenAPI
    schemas compiled to validators); the compose files validate against the
    Compose specification's JSON schema (as shipped in dclint from npm).
    Without node or `npm ci` in tests/deploy-schemas these skip, or fail
    when SHOAL_REQUIRE_TOOLS=1 (scripts/test.sh)."""

    def setUp(self):
        need_yaml(self)
        why = schema_validator_missing()
        if why and os.environ.get("SHOAL_REQUIRE_TOOLS") == "1":
            self.fail(why)
        elif why:
            self.skipTest(why)

    def rendered_documents(self):
        tool, why_not = kustomize_command()
        if tool is None:
            self.skipTest(why_not)
        documents = []
        for name, directory in kustomizations().items():
            out = render(name, directory)
            self.assertEqual(out.returncode, 0, "%s does not render:\n%s"
                             % (name, out.stderr))
            documents += [(name, o) for o in Rendered(name, out.stdout).objects]
        return documents

    def assert_valid(self, mode, documents):
        code, report, stderr = validate_documents(mode, documents)
        self.assertIsNotNone(report, "validate.mjs %s printed no report:\n%s"
                             % (mode, stderr))
        self.assertEqual(report["checked"], len(documents))
        self.assertEqual((code, report["errors"]), (0, []),
                         "schema errors:\n%s" % schema_errors(report))

    def assert_invalid(self, mode, documents, *expected):
        code, report, stderr = validate_documents(mode, documents)
        self.assertEqual(code, 1, "validate.mjs %s accepted a broken "
                         "document:\n%s" % (mode, stderr))
        said = schema_errors(report)
        for text in expected:
            self.assertIn(text, said)

    def test_every_rendered_object_validates_against_kubernetes_schemas(self):
        documents = self.rendered_documents()
        kinds = {o["kind"] for _, o in documents}
        for kind in ("Deployment", "Service", "PersistentVolumeClaim",
                     "ConfigMap", "PodDisruptionBudget", "Namespace",
                     "HorizontalPodAutoscaler"):
            self.assertIn(kind, kinds)
        self.assert_valid("kubernetes", documents)

    def test_kubernetes_validation_catches_broken_objects(self):
        documents = self.rendered_documents()
        worker = copy.deepcopy(next(o for _, o in documents
                                    if o["kind"] == "Deployment"))
        worker["spec"]["replicas"] = "three"
        unknown = {"apiVersion": "apps/v1", "kind": "Deploymnet",
                   "metadata": {"name": "typo"}}
        self.assert_invalid("kubernetes", [("broken", worker),
                                           ("broken", unknown)],
                            "/spec/replicas must be integer",
                            "no Kubernetes model for apiVersion")

    def compose_documents(self):
        return [(os.path.relpath(path, SOURCE_DIR),
                 yaml.safe_load(read(path)))
                for path in sorted(glob.glob(os.path.join(DOCKER,
                                                          "compose*.yaml")))]

    def test_compose_files_validate_against_the_compose_schema(self):
        documents = self.compose_documents()
        self.assertIn("deploy/docker/compose.yaml",
                      [src for src, _ in documents])
        self.assert_valid("compose", documents)

    def test_compose_validation_catches_broken_files(self):
        source, compose = self.compose_documents()[0]
        broken = copy.deepcopy(compose)
        service = next(iter(broken["services"].values()))
        service["restart_policy"] = "always"    # not a service key
        service["stop_grace_period"] = ["30s"]  # a string, not a list
        self.assert_invalid("compose", [(source, broken)],
                            "restart_policy", "stop_grace_period")


# ---- systemd ----------------------------------------------------------

def unit_settings(path):
    """{(section, key): [values]} of a unit file."""
    settings, section = {}, None
    for raw in read(path).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def env_file(path):
    values = {}
    for raw in read(path).splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


UNITS = {
    "shoal-controller.service": ("/etc/shoal/controller.env", "controller.env"),
    "shoal-worker@.service": ("/etc/shoal/worker-%i.env", "worker.env"),
}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet": "",
}


class SystemdTest(unittest.TestCase):
    """deploy/systemd: the units and their environment files."""

    def unit(self, name):
        return unit_settings(os.path.join(SYSTEMD, name))

    def value(self, settings, key, section="Service"):
        values = settings.get((section, key))
        return values[-1] if values else None

    def test_units_pass_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (Debian package "
                          "systemd)")
        missing = [b for b in BINARIES if not os.access(binary(b), os.X_OK)]
        if missing:
            self.skipTest("not built: %s (verify needs the executables)"
                          % ", ".join(missing))
        with tempfile.TemporaryDirectory() as tmp:
            for name in UNITS:
                text = read(os.path.join(SYSTEMD, name))
                for b in BINARIES:
                    text = text.replace("/usr/local/bin/" + b, binary(b))
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            for name in UNITS:
                target = name.replace("@.", "@test.")
                with self.subTest(unit=target):
                    out = subprocess.run(
                        ["systemd-analyze", "verify", "--man=no",
                         os.path.join(tmp, target)],
                        capture_output=True, text=True, timeout=60, cwd=tmp)
                    report = (out.stdout + out.stderr).strip()
                    self.assertEqual(out.returncode, 0, "systemd-analyze "
                                     "verify %s failed:\n%s" % (name, report))
                    self.assertEqual(report, "", "systemd-analyze verify %s "
                                     "warns:\n%s" % (name, report))

    def test_units_are_exposed_little(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (Debian package "
                          "systemd)")
        with tempfile.TemporaryDirectory() as tmp:
            for name in UNITS:
                shutil.copy(os.path.join(SYSTEMD, name), tmp)
            for name in UNITS:
                target = name.replace("@.", "@test.")
                with self.subTest(unit=target):
                    out = subprocess.run(
                        ["systemd-analyze", "security", "--offline=yes",
                         "--no-pager", "--threshold=25",
                         os.path.join(tmp, target)],
                        capture_output=True, text=True, timeout=60, cwd=tmp)
                    if "--offline" in out.stderr and out.returncode:
                        self.skipTest("this systemd-analyze has no "
                                      "--offline security check")
                    self.assertEqual(out.returncode, 0, "%s is exposed more "
                                     "than 2.5 (systemd-analyze security):\n%s"
                                     % (name, out.stdout[-3000:] + out.stderr))

    def test_units_run_as_shoal_with_their_environment_files(self):
        for name, (envfile, example) in UNITS.items():
            s = self.unit(name)
            with self.subTest(unit=name):
                self.assertEqual(self.value(s, "User"), "shoal")
                self.assertEqual(self.value(s, "DynamicUser"), "no")
                self.assertIn(envfile, s.get(("Service", "EnvironmentFile"),
                                             []), "%s must read %s"
                              % (name, envfile))
                self.assertTrue(os.path.exists(os.path.join(SYSTEMD, example)),
                                "no example for %s" % envfile)

    def test_units_are_hardened(self):
        for name in UNITS:
            s = self.unit(name)
            for key, want in HARDENING.items():
                with self.subTest(unit=name, setting=key):
                    self.assertEqual(self.value(s, key), want,
                                     "%s: set %s=%s" % (name, key, want))

    def test_data_and_state_dirs_are_writable(self):
        for name, (_, example) in UNITS.items():
            s = self.unit(name)
            env = env_file(os.path.join(SYSTEMD, example))
            writable = " ".join(s.get(("Service", "ReadWritePaths"), [])).split()
            writable += ["/var/lib/" + d for d in " ".join(
                s.get(("Service", "StateDirectory"), [])).split()]
            for var in ("SHOAL_DATA_DIR", "SHOAL_STATE_DIR"):
                path = env.get(var)
                if not path:
                    continue
                with self.subTest(unit=name, variable=var):
                    self.assertTrue(any(path == w.lstrip("-") or path.startswith(
                        w.lstrip("-").rstrip("/") + "/") for w in writable),
                                    "%s: %s=%s is not in ReadWritePaths (%s)"
                                    % (name, var, path, writable))

    def test_stop_outlasts_the_worker_drain(self):
        worker = self.unit("shoal-worker@.service")
        env = env_file(os.path.join(SYSTEMD, "worker.env"))
        drain = int(env.get("SHOAL_DRAIN_TIMEOUT") or DRAIN_DEFAULT_S)
        self.assertEqual(self.value(worker, "KillMode"), "mixed",
                         "the worker needs KillMode=mixed: SIGTERM to it "
                         "alone, so it can drain its tasks")
        stop = seconds(self.value(worker, "TimeoutStopSec") or "90s")
        self.assertGreater(stop, drain + BYE_MARGIN_S,
                           "the worker's TimeoutStopSec (%ss) must exceed its "
                           "drain (%d s)" % (stop, drain))
        controller = self.unit("shoal-controller.service")
        self.assertTrue(self.value(controller, "TimeoutStopSec"))


# ---- shell scripts ----------------------------------------------------

def shell_scripts():
    found = []
    for top in ("scripts", "deploy"):
        for dirpath, _, files in os.walk(os.path.join(SOURCE_DIR, top)):
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                if f.endswith((".sh", ".bash")):
                    found.append(path)
                    continue
                try:
                    with open(path, "rb") as fh:
                        first = fh.readline()
                except OSError:
                    continue
                if re.match(rb"#!\s*/(usr/)?bin/(env\s+)?(ba|da)?sh\b", first):
                    found.append(path)
    return sorted(found)


class ShellcheckTest(unittest.TestCase):
    def test_shellcheck_passes_on_every_script(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck is not installed (Debian package "
                          "shellcheck)")
        scripts = shell_scripts()
        self.assertTrue(scripts)
        out = subprocess.run(["shellcheck", "--external-sources",
                              "--source-path=SCRIPTDIR"] + scripts,
                             capture_output=True, text=True, timeout=120,
                             cwd=SOURCE_DIR)
        self.assertEqual(out.returncode, 0, "shellcheck:\n%s" % out.stdout)


# ---- flags and variables ----------------------------------------------

def deploy_command_lines():
    """[(where, binary, args)] for every shoal invocation in deploy/."""
    found = []

    def add(where, argv):
        for b, args in invocations([str(a) for a in argv]):
            found.append((where, b, args))

    for word, rest in dockerfile_instructions(os.path.join(DOCKER,
                                                           "Dockerfile")):
        m = re.search(r"\[.*\]$", rest)
        if m and exec_form(m.group(0)):
            add("Dockerfile " + word, exec_form(m.group(0)))
    if yaml is not None:
        for f in ("compose.yaml", "compose.curve.yaml"):
            doc = yaml.safe_load(read(os.path.join(DOCKER, f)))
            for name, s in doc["services"].items():
                add("%s %s" % (f, name), s.get("command", []))
                add("%s %s healthcheck" % (f, name),
                    s.get("healthcheck", {}).get("test", []))
        if kustomize_command()[0]:
            for kname, d in kustomizations().items():
                out = render(kname, d)
                if out.returncode:
                    continue
                for w in Rendered(kname, out.stdout).workloads():
                    for c in containers(w):
                        where = "%s %s" % (kname, w["metadata"]["name"])
                        add(where, command_line(c))
                        for probe in ("startupProbe", "readinessProbe",
                                      "livenessProbe"):
                            add(where + " " + probe, c.get(probe, {})
                                .get("exec", {}).get("command", []))
    for name in UNITS:
        for key, values in unit_settings(os.path.join(SYSTEMD, name)).items():
            if key[1].startswith("Exec"):
                for v in values:
                    argv = [os.path.basename(a) if a.startswith("/") else a
                            for a in shlex.split(v)]
                    add(name + " " + key[1], argv)
    for path in shell_scripts():
        if path.startswith(DEPLOY):
            for b, args in invocations_in_shell(read(path)):
                found.append((os.path.relpath(path, SOURCE_DIR), b, args))
    for path in glob.glob(os.path.join(DEPLOY, "**", "*.md"), recursive=True):
        for block in markdown_code_blocks(read(path)):
            for b, args in invocations_in_shell(block):
                found.append((os.path.relpath(path, SOURCE_DIR), b, args))
    return found


VARIABLE_RES = (
    re.compile(r"-\s+name:\s+(SHOAL_[A-Z0-9_]+)\s*$", re.M),  # YAML env list
    re.compile(r"^\s+(SHOAL_[A-Z0-9_]+):", re.M),             # YAML mapping
    re.compile(r"(?:^|[\s\"'])(SHOAL_[A-Z0-9_]+)=", re.M),      # env files, ENV
)


def deploy_variables():
    """[(where, SHOAL_ variable)] set anywhere in deploy/."""
    found = []
    paths = [p for p in glob.glob(os.path.join(DEPLOY, "**", "*"),
                                  recursive=True) if os.path.isfile(p)]
    for path in paths:
        text = read(path)
        for pattern in VARIABLE_RES:
            for m in pattern.finditer(text):
                found.append((os.path.relpath(path, SOURCE_DIR), m.group(1)))
    return found


class FlagsTest(unittest.TestCase):
    """Every flag and variable deploy/ gives the binaries exists."""

    def setUp(self):
        self.help = {b: help_text(b) for b in BINARIES}
        missing = [b for b, h in self.help.items() if h is None]
        if missing:
            self.skipTest("not built: %s (in %s)" % (", ".join(missing),
                                                     BUILD_DIR))

    def test_every_flag_exists(self):
        lines = deploy_command_lines()
        self.assertGreater(len(lines), 10, "found too few command lines")
        for where, b, args in lines:
            known = flags_of(self.help[b])
            for arg in args:
                if not arg.startswith("--"):
                    continue
                flag = arg.split("=", 1)[0]
                self.assertIn(flag, known, "%s: %s has no option %s"
                              % (where, b, flag))

    def test_every_variable_exists(self):
        known = set()
        for h in self.help.values():
            known |= set(re.findall(r"SHOAL_[A-Z0-9_]+", h))
        # Read by the systemd units themselves, for flags without a variable.
        for name in UNITS:
            for v in unit_settings(os.path.join(SYSTEMD, name)).get(
                    ("Service", "ExecStart"), []):
                known |= set(re.findall(r"\$\{?(SHOAL_[A-Z0-9_]+)", v))
        used = deploy_variables()
        self.assertTrue(used)
        for where, var in used:
            self.assertIn(var, known, "%s sets %s, which no shoal binary "
                          "reads (see --help)" % (where, var))


if __name__ == "__main__":
    unittest.main(verbosity=2)
