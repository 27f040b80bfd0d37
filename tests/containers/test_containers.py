"""deploy/docker for real, with Podman: the image builds, and the compose
file runs the example job across a controller and three worker containers.

This machine has no Docker engine and no registry, so the test
- makes the `debian:bookworm-slim` base itself: `debootstrap
  --variant=minbase bookworm` from the Debian mirror the machine's apt
  sources name, with the same mirror in the image's apt sources (the
  Dockerfile apt-installs inside), imported with `podman import`;
- builds deploy/docker/Dockerfile with `podman build --pull=never`;
- runs deploy/docker/compose.yaml with Debian's docker-compose (1.29)
  against `podman system service` on a unix socket of its own, with
  `--scale worker=3`, submits the example job to the controller's published
  port on 127.0.0.1, and checks that it succeeds through the shared named
  volume (the downloaded files are the file server's), that the three
  workers connected, and that every container reports healthy; then the
  same again with the CURVE override (compose.curve.yaml) added;
- tears everything down, failed or not: `docker-compose down -v`, the
  Podman service (by PID), and what netavark added to the host (iptables
  chains, ip_forward, /run/containers) when it was not there before.

Podman's settings live in files this test writes (CONTAINERS_CONF,
CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF); nothing in /etc is
read or changed. Podman's storage (the base image and the build's layer
cache) and the debootstrap tarball are kept in SHOAL_CONTAINER_CACHE
(default: <build dir>/containers), so a second run neither debootstraps
nor apt-installs again; delete that directory to start cold.

Podman 4.3 without systemd never runs health checks on its own (it
schedules them with systemd timers), so while the containers run the test
runs `podman healthcheck run` on each every two seconds; that is what lets
`depends_on: condition: service_healthy` release the workers.

Needs root (rootful Podman, debootstrap). Skipped, saying why, when not
root or when SHOAL_SKIP_CONTAINERS=1; anything else missing or broken
fails the test.
"""
import base64
import fcntl
import glob
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get(
    "SHOAL_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("SHOAL_BUILD_DIR",
                           os.path.join(SOURCE_DIR, "build"))
DOCKER = os.path.join(SOURCE_DIR, "deploy", "docker")
CACHE = os.environ.get("SHOAL_CONTAINER_CACHE",
                       os.path.join(BUILD_DIR, "containers"))

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"   # FROM in the Dockerfile
IMAGE = "shoal:0.1.0"                                   # image: in compose.yaml
SUITE = "bookworm"
SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
WORKERS = 3
# (name, compose files): plain text between controller and workers, then
# the same with the CURVE override (keys made by its keygen service).
VARIANTS = (("plain", ["compose.yaml"]),
            ("curve", ["compose.yaml", "compose.curve.yaml"]))
UID = 10001                                             # USER in the Dockerfile

# The whole test's time, and so the longest any one step may take; ctest's
# TIMEOUT for this test is larger, so a stuck step fails with the cleanup
# still to come.
BUDGET_S = int(os.environ.get("SHOAL_CONTAINER_BUDGET", "2100"))
STORAGE_LIMIT = 8 << 30     # a cache grown past this starts again cold

# (program, Debian package): scripts/deps.sh installs them.
TOOLS = (("podman", "podman"), ("runc", "runc"),
         ("docker-compose", "docker-compose"),
         ("debootstrap", "debootstrap"), ("iptables", "iptables"))
NETAVARK = ("/usr/lib/podman/netavark", "netavark")
AARDVARK = ("/usr/lib/podman/aardvark-dns", "aardvark-dns")

# Host state netavark creates for a bridge network with a published port;
# put back as found (see SystemState).
IPTABLES_TABLES = ("filter", "nat", "mangle")
# Directories rootful Podman makes outside its configured paths, and what
# they may hold to be removed when the test made them: netavark's run
# directory, runc's state, network namespaces, and c/image's blob info
# cache (its place for root is fixed: /var/lib/containers/cache).
HOST_DIRS = {"/run/containers": {"networks"}, "/run/runc": set(),
             "/run/netns": set(), "/var/lib/containers": {"cache"}}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def tail(path, lines=60):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


class Deadline:
    """The time left of the test's budget."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, cap=None):
        left = self.end - time.monotonic()
        if left <= 0:
            raise AssertionError("the test's time budget (%d s, "
                                 "SHOAL_CONTAINER_BUDGET) is used up" % BUDGET_S)
        return min(left, cap) if cap else left


# ---- the machine's Debian mirror ------------------------------------------

def s_deb822_stanzas(text):
    """[{field: value}] of a deb822 file (continuation lines dropped)."""
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields = {}
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#") \
                    or line[0] in " \t":
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def debian_sources():
    """[(uri, suite)]: the machine's apt entries for Debian 12's main
    component (bookworm, -updates, -security), in the order apt reads them."""
    found = []
    paths = ["/etc/apt/sources.list"] + sorted(
        glob.glob("/etc/apt/sources.list.d/*.list")) + sorted(
        glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for st in s_deb822_stanzas(text):
                if st.get("enabled", "yes").lower() == "no" \
                        or "deb" not in st.get("types", "").split() \
                        or "main" not in st.get("components", "").split():
                    continue
                for uri in st.get("uris", "").split():
                    for suite in st.get("suites", "").split():
                        found.append((uri.rstrip("/"), suite))
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            line = re.sub(r"\[[^\]]*\]", " ", line)   # [arch=... signed-by=...]
            words = line.split()
            if len(words) >= 4 and words[0] == "deb" and "main" in words[3:]:
                found.append((words[1].rstrip("/"), words[2]))
    seen, entries = set(), []
    for entry in found:
        if entry[1] in SUITES and entry not in seen:
            seen.add(entry)
            entries.append(entry)
    return entries


def apt_sources_file(entries):
    """The base image's /etc/apt/sources.list.d/debian.sources."""
    return "".join("Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n"
                   "Signed-By: %s\n\n" % (uri, suite, KEYRING)
                   for uri, suite in entries)


# ---- processes and mounts ---------------------------------------------------

def run(argv, env=None, timeout=120, check=True, log_path=None, what=None):
    """Runs argv; output to log_path (appended) or returned. Fails the test
    with the output's tail when check and the exit status is not 0."""
    if log_path:
        with open(log_path, "a") as out:
            out.write("\n$ %s\n" % " ".join(shlex.quote(a) for a in argv))
            out.flush()
            try:
                proc = subprocess.run(argv, env=env, stdout=out,
                                      stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL,
                                      timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError("%s: no end after %.0f s; log %s:\n%s"
                                     % (what or argv[0], timeout, log_path,
                                        tail(log_path)))
        text = None
    else:
        try:
            proc = subprocess.run(argv, env=env, capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s: no end after %.0f s"
                                 % (" ".join(argv), timeout))
        text = proc.stdout
    if check and proc.returncode != 0:
        detail = tail(log_path) if log_path else \
            (proc.stdout + proc.stderr)[-4000:]
        raise AssertionError("%s failed (exit %d):\n%s"
                             % (what or " ".join(argv), proc.returncode,
                                detail))
    return text if text is not None else proc.returncode


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    path = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_tree(path):
    """rm -rf that first unmounts what is mounted inside (debootstrap
    mounts /proc and /sys in its target while it works)."""
    for point in mounts_under(path):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if mounts_under(path):
        raise AssertionError("cannot unmount %s" % mounts_under(path))
    shutil.rmtree(path, ignore_errors=True)


def processes_mentioning(text):
    """PIDs of processes (not this one) whose command line contains text."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry))
    return pids


def stop_pid(pid, grace=15.0):
    """SIGTERM, then SIGKILL after grace seconds; reaps it if it is ours."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


# REST calls to the controller go straight to 127.0.0.1, never through a
# proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(what, predicate, deadline, cap, interval=1.0, alive=None):
    end = time.monotonic() + deadline.left(cap)
    last = None
    while True:
        if alive:
            alive()
        try:
            last = predicate()
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s (last: %r)"
                                 % (what, last))
        time.sleep(interval)


# ---- host state netavark changes -------------------------------------------

class SystemState:
    """What rootful Podman and netavark add to the host and leave there
    after the containers are gone: iptables chains NETAVARK* (and the
    rules jumping to them), net.ipv4.ip_forward=1, and the HOST_DIRS.
    Recorded before the test; restore() takes away only what was not
    there then.

    The record is kept in a file until restore() is done, so that a run
    killed before its cleanup (ctest's timeout) leaves the next run the
    state from before it, not what it left behind."""

    IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"

    def __init__(self, record):
        self.record = record
        try:
            with open(record) as f:
                saved = json.load(f)
            self.chains, self.ip_forward, self.dirs = (
                saved["chains"], saved["ip_forward"], saved["dirs"])
            log("host state recorded by an interrupted run: %s" % saved)
            return
        except (OSError, ValueError, KeyError):
            pass
        self.chains = self.netavark_chains()
        with open(self.IP_FORWARD) as f:
            self.ip_forward = f.read().strip()
        self.dirs = {d: os.path.exists(d) for d in HOST_DIRS}
        with open(record + ".part", "w") as f:
            json.dump({"chains": self.chains, "ip_forward": self.ip_forward,
                       "dirs": self.dirs}, f)
        os.replace(record + ".part", record)

    @staticmethod
    def iptables(table, *args):
        return subprocess.run(["iptables", "-w", "-t", table] + list(args),
                              capture_output=True, text=True, timeout=30)

    def netavark_chains(self):
        chains = {}
        for table in IPTABLES_TABLES:
            out = self.iptables(table, "-S").stdout
            chains[table] = [l.split()[1] for l in out.splitlines()
                             if l.startswith("-N NETAVARK")]
        return chains

    def restore(self):
        done = []
        for table in IPTABLES_TABLES:
            if self.chains.get(table):
                continue        # netavark was in use before: not ours to undo
            out = self.iptables(table, "-S").stdout.splitlines()
            ours = [l.split()[1] for l in out if l.startswith("-N NETAVARK")]
            if not ours:
                continue
            for line in out:   # jumps from the built-in chains
                words = shlex.split(line)
                if words[0] == "-A" and not words[1].startswith("NETAVARK") \
                        and any(w.startswith("NETAVARK") for w in words):
                    self.iptables(table, "-D", *words[1:])
            for chain in ours:
                self.iptables(table, "-F", chain)
            for chain in ours:
                self.iptables(table, "-X", chain)
            done.append("%s: %s" % (table, " ".join(ours)))
        with open(self.IP_FORWARD) as f:
            now = f.read().strip()
        if now != self.ip_forward:
            with open(self.IP_FORWARD, "w") as f:
                f.write(self.ip_forward)
            done.append("net.ipv4.ip_forward=%s" % self.ip_forward)
        for d, existed in self.dirs.items():
            if existed or not os.path.isdir(d):
                continue
            if d == "/run/containers":
                # netavark stops aardvark-dns with the last network; if it
                # did not, it is ours (nothing used netavark before).
                for pid in processes_mentioning(d + "/networks/aardvark-dns"):
                    stop_pid(pid, grace=5)
                    done.append("stopped aardvark-dns (pid %d)" % pid)
            if set(os.listdir(d)) <= HOST_DIRS.get(d, set()):
                shutil.rmtree(d, ignore_errors=True)
            if not os.path.exists(d):
                done.append("rm %s" % d)
        if done:
            log("host state put back: " + "; ".join(done))
        os.unlink(self.record)


# ---- the test -----------------------------------------------------------------

def missing_prerequisite():
    if os.environ.get("SHOAL_SKIP_CONTAINERS") == "1":
        return "SHOAL_SKIP_CONTAINERS=1"
    if os.geteuid() != 0:
        return "needs root (rootful Podman, debootstrap); run as root or " \
               "set SHOAL_SKIP_CONTAINERS=1 to skip it on purpose"
    return None


class ComposeWithPodmanTest(unittest.TestCase):
    """The image from deploy/docker/Dockerfile, run by compose.yaml."""

    def setUp(self):
        why = missing_prerequisite()
        if why:
            print("test_containers: skipped: %s" % why, file=sys.stderr)
            self.skipTest(why)
        missing = [pkg for prog, pkg in TOOLS if not shutil.which(prog)]
        missing += [pkg for path, pkg in (NETAVARK, AARDVARK)
                    if not os.access(path, os.X_OK)]
        self.assertFalse(missing, "missing Debian packages: %s (scripts/"
                         "deps.sh installs them)" % " ".join(missing))
        self.deadline = Deadline(BUDGET_S)
        self.timings = []
        os.makedirs(CACHE, exist_ok=True)
        # One run per cache, and one per machine: two runs at once would
        # share netavark's host state (subnets, iptables chains) and each
        # take away the other's.
        for path in (os.path.join(CACHE, "lock"),
                     os.path.join(tempfile.gettempdir(),
                                  "shoal-containers.lock")):
            lock = open(path, "w")
            self.addCleanup(lock.close)
            wait_for("the lock %s (another run of this test)" % path,
                     lambda: self.try_lock(lock), self.deadline, 900)
        self.tmp = tempfile.mkdtemp(prefix="shoal-containers-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.env = self.podman_env()
        self.service = None
        self.cleaning = False
        self.system = SystemState(os.path.join(CACHE, "host-state.json"))
        self.addCleanup(self.system.restore)

    @staticmethod
    def try_lock(lock):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def step(self, what, fn, *args):
        log(what + " ...")
        t0 = time.monotonic()
        result = fn(*args)
        took = time.monotonic() - t0
        self.timings.append((what, took))
        log("%s: %.1f s" % (what, took))
        return result

    # -- Podman's configuration, all in files of this test --------------------

    def podman_env(self):
        storage = os.path.join(CACHE, "storage")
        if os.path.isdir(storage):
            size = int(subprocess.run(["du", "-sb", storage],
                                      capture_output=True, text=True)
                       .stdout.split()[0] or 0)
            if size > STORAGE_LIMIT:
                log("%s holds %d MB: starting again cold" % (storage,
                                                             size >> 20))
                self.forget_storage()
        for d in ("storage", "run", "tmp", "networks"):
            os.makedirs(os.path.join(CACHE, d), exist_ok=True)
        conf = os.path.join(self.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write("""\
# Written by tests/containers/test_containers.py.
[containers]
# The kernel's limits are too low for some of the example's tools.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "{cache}/networks"

[engine]
# crun fails on this kernel's hybrid cgroup hierarchy; runc works.
runtime = "runc"
# No systemd here.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{tmp}/events.log"
tmp_dir = "{cache}/tmp"
""".format(cache=CACHE, tmp=self.tmp))
        storage_conf = os.path.join(self.tmp, "storage.conf")
        with open(storage_conf, "w") as f:
            f.write('[storage]\ndriver = "%s"\ngraphroot = "%s/storage"\n'
                    'runroot = "%s/run"\n' % (self.storage_driver(), CACHE,
                                              CACHE))
        registries = os.path.join(self.tmp, "registries.conf")
        with open(registries, "w") as f:
            f.write("# No registries: every image is local.\n"
                    "unqualified-search-registries = []\n")
        env = dict(os.environ)
        for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "COMPOSE_FILE",
                    "COMPOSE_PROJECT_NAME", "CONTAINER_HOST"):
            env.pop(var, None)
        env.update(CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage_conf,
                   CONTAINERS_REGISTRIES_CONF=registries)
        return env

    def storage_driver(self):
        """overlay where the kernel has it for this filesystem, else vfs.
        The choice is kept with the storage: a driver cannot change under
        existing layers."""
        marker = os.path.join(CACHE, "storage-driver")
        try:
            with open(marker) as f:
                return f.read().strip()
        except OSError:
            pass
        driver = "vfs"
        probe = tempfile.mkdtemp(dir=CACHE, prefix="overlay-probe-")
        try:
            for d in ("lower", "upper", "work", "merged"):
                os.mkdir(os.path.join(probe, d))
            opts = "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work" \
                .format(probe)
            if subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts,
                               os.path.join(probe, "merged")],
                              capture_output=True).returncode == 0:
                subprocess.run(["umount", os.path.join(probe, "merged")])
                driver = "overlay"
        finally:
            remove_tree(probe)
        with open(marker, "w") as f:
            f.write(driver + "\n")
        log("storage driver: %s" % driver)
        return driver

    def forget_storage(self):
        storage = os.path.join(CACHE, "storage")
        for path in (storage, os.path.join(CACHE, "run")):
            if os.path.isdir(path):
                remove_tree(path)
        for name in ("storage-driver", "base-imported"):
            try:
                os.unlink(os.path.join(CACHE, name))
            except FileNotFoundError:
                pass

    def timeout(self, cap):
        """A step's time limit: what is left of the budget, except in the
        cleanup, which always gets its full cap."""
        return cap if self.cleaning else self.deadline.left(cap)

    def podman(self, *args, cap=120, check=True, log_path=None, what=None):
        return run(["podman"] + list(args), env=self.env,
                   timeout=self.timeout(cap), check=check,
                   log_path=log_path, what=what)

    # -- leftovers of an interrupted run --------------------------------------

    def clear_leftovers(self):
        """An earlier run killed before its cleanup (ctest's timeout) may
        have left its Podman service, containers, volumes or networks in
        this cache's storage: remove them first."""
        pid_file = os.path.join(CACHE, "service.pid")
        try:
            with open(pid_file) as f:
                pid = int(f.read())
            # The pid file is this cache's; the command makes sure the
            # PID was not reused since.
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
            if b"system" in cmd and b"service" in cmd \
                    and os.path.basename(cmd[0]) == b"podman":
                log("stopping the Podman service of an earlier run (pid %d)"
                    % pid)
                stop_pid(pid)
        except (OSError, ValueError):
            pass
        left = self.podman("ps", "-aq").split()
        if left:
            log("removing %d containers left by an earlier run" % len(left))
            self.podman("rm", "-f", "-t", "5", *left, cap=180)
        self.podman("pod", "rm", "-af")
        self.podman("volume", "prune", "-f")
        self.podman("network", "prune", "-f")

    # -- the base image ---------------------------------------------------------

    def base_tarball(self):
        """The minbase rootfs of bookworm as a tar, made once per mirror
        and debootstrap version."""
        entries = debian_sources()
        mirror = [uri for uri, suite in entries if suite == SUITE]
        self.assertTrue(mirror, "the machine's apt sources (/etc/apt/"
                        "sources.list, sources.list.d) name no Debian %s "
                        "mirror for debootstrap" % SUITE)
        version = run(["dpkg-query", "-W", "-f", "${Version}", "debootstrap"])
        arch = run(["dpkg", "--print-architecture"]).strip()
        key = hashlib.sha256(json.dumps([entries, version, arch]).encode()) \
            .hexdigest()[:16]
        base_dir = os.path.join(CACHE, "base")
        os.makedirs(base_dir, exist_ok=True)
        tarball = os.path.join(base_dir, "%s-minbase-%s.tar" % (SUITE, key))
        if os.path.exists(tarball):
            log("base rootfs: cached %s" % tarball)
            return tarball, key
        for old in glob.glob(os.path.join(base_dir, "*")):
            remove_tree(old) if os.path.isdir(old) else os.unlink(old)
        rootfs = os.path.join(base_dir, "rootfs")
        log_path = os.path.join(self.tmp, "debootstrap.log")
        try:
            run(["debootstrap", "--variant=minbase", "--arch", arch, SUITE,
                 rootfs, mirror[0]], timeout=self.deadline.left(900),
                log_path=log_path, what="debootstrap %s from %s"
                % (SUITE, mirror[0]))
            # Like the official slim image: apt sources in deb822 form with
            # the updates and security suites, no package lists or .debs.
            listing = os.path.join(rootfs, "etc/apt/sources.list")
            if os.path.exists(listing):
                os.unlink(listing)
            with open(os.path.join(rootfs, "etc/apt/sources.list.d/"
                                   "debian.sources"), "w") as f:
                f.write(apt_sources_file(entries))
            for pattern in ("var/cache/apt/archives/*.deb",
                            "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
                for path in glob.glob(os.path.join(rootfs, pattern)):
                    if os.path.isfile(path):
                        os.unlink(path)
            self.assertFalse(mounts_under(rootfs), "debootstrap left mounts "
                             "in %s" % rootfs)
            run(["tar", "-C", rootfs, "--numeric-owner", "-cf",
                 tarball + ".part", "."], timeout=self.deadline.left(300))
            os.replace(tarball + ".part", tarball)
        finally:
            remove_tree(rootfs)
            if os.path.exists(tarball + ".part"):
                os.unlink(tarball + ".part")
        return tarball, key

    def import_base(self, tarball, key):
        """podman import, unless this storage has that tarball's image
        already under the name (a new import would be a new image and
        void the build's layer cache)."""
        marker = os.path.join(CACHE, "base-imported")
        have = self.podman("image", "inspect", "--format", "{{.Id}}",
                           BASE_IMAGE, check=False)
        try:
            with open(marker) as f:
                want_key, want_id = f.read().split()
        except (OSError, ValueError):
            want_key = want_id = None
        if have and have.strip() == want_id and want_key == key:
            log("base image: %s %s (imported before)" % (BASE_IMAGE,
                                                        want_id[:12]))
            return
        out = self.podman("import", "--change", 'CMD ["bash"]', tarball,
                          BASE_IMAGE, cap=300)
        image_id = self.podman("image", "inspect", "--format", "{{.Id}}",
                               BASE_IMAGE).strip()
        self.assertTrue(image_id, "podman import made no image: %s" % out)
        with open(marker, "w") as f:
            f.write("%s %s\n" % (key, image_id))

    # -- the image ----------------------------------------------------------------

    def build_image(self):
        log_path = os.path.join(self.tmp, "build.log")
        try:
            # --format docker keeps the HEALTHCHECK (the OCI format has none).
            self.podman("build", "--pull=never", "--format", "docker",
                        "--ignorefile", os.path.join(DOCKER,
                                                     "Dockerfile.dockerignore"),
                        "-f", os.path.join(DOCKER, "Dockerfile"), "-t", IMAGE,
                        SOURCE_DIR, cap=1500, log_path=log_path,
                        what="podman build deploy/docker/Dockerfile")
        finally:
            cached = tail(log_path, 100000).count("Using cache")
            log("image build: %d steps from the layer cache" % cached)
        config = json.loads(self.podman("image", "inspect", IMAGE))[0]
        cfg = config.get("Config", {})
        self.assertEqual(cfg.get("User"), "%d:%d" % (UID, UID))
        self.assertEqual(os.path.basename((cfg.get("Entrypoint") or [""])[0]),
                         "tini")
        health = config.get("Healthcheck") or cfg.get("Healthcheck") or {}
        self.assertEqual((health.get("Test") or [None])[0], "CMD",
                         "the image has no exec-form HEALTHCHECK: %r" % health)
        self.assertIn("--healthcheck", health["Test"])

    # -- the Podman service and compose -------------------------------------------

    def start_service(self):
        self.socket = os.path.join(self.tmp, "podman.sock")
        self.service_log = os.path.join(self.tmp, "podman-service.log")
        with open(self.service_log, "w") as out:
            self.service = subprocess.Popen(
                ["podman", "--log-level", "info", "system", "service",
                 "--time=0", "unix://" + self.socket], env=self.env,
                stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        with open(os.path.join(CACHE, "service.pid"), "w") as f:
            f.write("%d\n" % self.service.pid)
        self.addCleanup(self.stop_service)

        def ping():
            self.service_alive()
            conn = UnixHTTPConnection(self.socket, timeout=5)
            try:
                conn.request("GET", "/_ping")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        wait_for("the Podman service on %s" % self.socket, ping,
                 self.deadline, 60, interval=0.2)

    def service_alive(self):
        if self.service.poll() is not None:
            raise AssertionError("podman system service exited (%s):\n%s"
                                 % (self.service.returncode,
                                    tail(self.service_log)))

    def stop_service(self):
        if self.service is None:
            return
        stop_pid(self.service.pid)
        self.service = None
        try:
            os.unlink(os.path.join(CACHE, "service.pid"))
        except FileNotFoundError:
            pass

    def compose(self, *args, cap=300, check=True, log_path=None):
        env = dict(self.env, DOCKER_HOST="unix://" + self.socket,
                   HTTP_PORT=str(self.http_port), SHOAL_API_TOKEN="")
        files = []
        for name in self.compose_files:
            files += ["-f", os.path.join(DOCKER, name)]
        return run(["docker-compose", "--ansi", "never", "-p", self.project]
                   + files + list(args),
                   env=env, timeout=self.timeout(cap), check=check,
                   log_path=log_path or self.compose_log,
                   what="docker-compose " + " ".join(args))

    def containers(self, *filters):
        argv = ["ps", "-q", "--filter",
                "label=com.docker.compose.project=%s" % self.project]
        for f in filters:
            argv += ["--filter", f]
        return self.podman(*argv, cap=60).split()

    def health_ticker(self, stop):
        """What systemd timers do for Podman elsewhere: run each running
        container's health check every 2 s."""
        while not stop.wait(2.0):
            try:
                for cid in self.containers("status=running"):
                    run(["podman", "healthcheck", "run", cid], env=self.env,
                        timeout=30, check=False)
            except AssertionError:
                pass

    def container_health(self):
        """{running container: health status} (the CURVE override's
        keygen has exited by then)."""
        out = self.podman("ps", "--format", "{{.Names}} {{.ID}}",
                          "--filter", "label=com.docker.compose.project=%s"
                          % self.project)
        health = {}
        for line in out.splitlines():
            name, cid = line.split()
            state = json.loads(self.podman("inspect", cid))[0]["State"]
            health[name] = (state.get("Health") or state.get("Healthcheck")
                            or {}).get("Status") or state.get("Status")
        return health

    def teardown_compose(self, failed):
        if failed:
            self.compose("ps", check=False)
            self.compose("logs", "--no-color", "--tail", "40", check=False)
            print("--- docker-compose (ps, logs)\n" + tail(self.compose_log, 250)
                  + "\n--- podman system service\n"
                  + tail(self.service_log, 40), file=sys.stderr)
        problems = []
        try:
            self.compose("down", "-v", "--remove-orphans", "-t", "45",
                         cap=240, log_path=os.path.join(self.tmp, "down.log"))
        except AssertionError as e:
            problems.append(str(e))
        # Whatever compose left (it failed, or the time ran out).
        left = self.podman("ps", "-aq", cap=60, check=False).split()
        if left:
            problems.append("containers left after compose down: %s" % left)
            self.podman("rm", "-f", "-t", "5", *left, cap=180, check=False)
        for kind in ("volume", "network"):
            names = [n for n in self.podman(kind, "ls", "--format",
                                            "{{.Name}}", cap=60,
                                            check=False).split()
                     if n.startswith(self.project + "_")]
            if names:
                problems.append("%ss left after compose down: %s"
                                % (kind, names))
                self.podman(kind, "rm", "-f", *names, check=False)
        return problems

    # -- the test ---------------------------------------------------------------------

    def test_example_job_across_worker_containers(self):
        t0 = time.monotonic()
        problems = []
        try:
            self.step("clear leftovers of earlier runs", self.clear_leftovers)
            tarball, key = self.step("base rootfs (debootstrap "
                                     "--variant=minbase)", self.base_tarball)
            self.step("podman import %s" % BASE_IMAGE, self.import_base,
                      tarball, key)
            self.step("podman build deploy/docker/Dockerfile",
                      self.build_image)
            self.step("podman system service", self.start_service)
            for variant in VARIANTS:
                self.run_variant(*variant, problems=problems)
                self.assertFalse(problems, "cleanup: %s" % "; ".join(problems))
        finally:
            self.cleaning = True
            self.step("stop the Podman service", self.stop_service)
            left = processes_mentioning(os.path.join(CACHE, "storage"))
            if left:
                problems.append("processes left behind: %s" % left)
                for pid in left:
                    stop_pid(pid, grace=5)
            mounts = mounts_under(CACHE)
            if mounts:
                problems.append("mounts left behind: %s" % mounts)
            log("total %.1f s (%s)" % (
                time.monotonic() - t0, ", ".join(
                    "%s %.0f s" % (w.split(" (")[0], s)
                    for w, s in self.timings)))
        self.assertFalse(problems, "cleanup: %s" % "; ".join(problems))

    def run_variant(self, name, files, problems):
        """compose up with files, the example job, compose down -v."""
        self.cleaning = False
        self.compose_files = files
        self.project = "shoaltest%d%s" % (os.getpid(), name)
        self.http_port = free_port()
        self.compose_log = os.path.join(self.tmp, "compose-%s.log" % name)
        api = "http://127.0.0.1:%d" % self.http_port
        stop_ticker = threading.Event()
        ticker = threading.Thread(target=self.health_ticker,
                                  args=(stop_ticker,), daemon=True)
        ticker.start()
        failed = True
        try:
            self.step("%s: docker-compose up --scale worker=%d"
                      % (name, WORKERS), self.compose, "up", "-d",
                      "--no-build", "--scale", "worker=%d" % WORKERS)
            job = self.step("%s: example job" % name, self.run_example_job,
                            api)
            self.check_outputs(api, job)
            self.check_transport(files)
            failed = False
        finally:
            self.cleaning = True
            stop_ticker.set()
            ticker.join(timeout=60)
            problems += self.step("%s: docker-compose down -v" % name,
                                  self.teardown_compose, failed)

    def check_transport(self, files):
        """Controller and workers run with the transport the files ask for."""
        for service in ("controller", "worker"):
            cid = self.containers("label=com.docker.compose.service=%s"
                                  % service)[0]
            argv = json.loads(self.podman("inspect", cid))[0]["Args"]
            if "compose.curve.yaml" in files:
                self.assertIn("--curve-secret", argv)
                self.assertNotIn("--plaintext", argv)
            else:
                self.assertIn("--plaintext", argv)

    def run_example_job(self, api):
        alive = self.service_alive

        def workers():
            status, body = http_json("GET", api + "/api/v1/workers")
            ids = {w["id"] for w in body["workers"]} if status == 200 else ()
            return body["workers"] if len(ids) == WORKERS else None
        connected = wait_for("%d workers in GET /api/v1/workers" % WORKERS,
                             workers, self.deadline, 120, alive=alive)
        self.workers = {w["id"] for w in connected}
        hosts = {w["host"] for w in connected}
        self.assertEqual(len(hosts), WORKERS, "the workers do not run in %d "
                         "containers: %s" % (WORKERS, connected))
        log("workers connected: %s" % ", ".join(sorted(self.workers)))

        def all_healthy():
            health = self.container_health()
            return health if len(health) == WORKERS + 2 and all(
                h == "healthy" for h in health.values()) else None
        health = wait_for("every container healthy", all_healthy,
                          self.deadline, 120, interval=2, alive=alive)
        log("health: %s" % ", ".join("%s %s" % kv
                                     for kv in sorted(health.items())))
        controller = self.containers("label=com.docker.compose.service="
                                     "controller")
        self.assertEqual(len(controller), 1)
        pid1 = self.podman("exec", controller[0], "cat", "/proc/1/cmdline")
        self.assertEqual(os.path.basename(pid1.split("\0")[0]), "tini",
                         "PID 1 in the controller container is %r" % pid1)
        uid = self.podman("exec", controller[0], "id", "-u").strip()
        self.assertEqual(uid, str(UID))

        auth = "Basic " + base64.b64encode(b"demo:demo").decode()
        status, body = http_json("POST", api + "/api/v1/jobs",
                                 {"job": "request-data",
                                  "params": {"data_id": "demo"}},
                                 {"Authorization": auth})
        self.assertEqual(status, 201, "POST /api/v1/jobs: %s" % (body,))
        job_id = body["id"]
        log("job %s submitted" % job_id)

        def finished():
            status, body = http_json("GET", api + "/api/v1/jobs/" + job_id)
            if status == 200 and body["state"] in ("succeeded", "failed",
                                                   "canceled"):
                return body
            return None
        job = wait_for("job %s to end" % job_id, finished, self.deadline,
                       180, interval=0.5, alive=alive)
        status, tasks = http_json("GET", api + "/api/v1/jobs/%s/tasks"
                                  % job_id)
        self.assertEqual(status, 200)
        self.tasks = tasks["tasks"]
        for t in self.tasks:
            log("  task %s %-14s %-9s worker %s" % (
                t["id"], t["stage"], t["state"], t.get("worker")))
        self.assertEqual(job["state"], "succeeded", "job: %s" % job)
        return job

    def check_outputs(self, api, job):
        failed = [t for t in self.tasks if t["state"] != "succeeded"]
        self.assertFalse(failed, "tasks did not succeed: %s" % failed)
        ran_on = {t.get("worker") for t in self.tasks}
        self.assertTrue(ran_on <= self.workers, "tasks ran on workers that "
                        "are not connected: %s" % (ran_on - self.workers))
        log("tasks ran on %d of the %d workers" % (len(ran_on), WORKERS))
        # The shared volume, read on the host: what the workers wrote there.
        volume = "%s_shoal-data" % self.project
        mountpoint = self.podman("volume", "inspect", "--format",
                                 "{{.Mountpoint}}", volume).strip()
        jobdir = os.path.join(mountpoint, "jobs", job["id"])
        for name in ("export.json", "spawn.json"):
            self.assertTrue(os.path.isfile(os.path.join(jobdir, name)),
                            "%s is not in the shared volume (%s)"
                            % (name, jobdir))
        served = os.path.join(SOURCE_DIR, "example", "data", "files", "demo")
        names = sorted(os.listdir(served))
        self.assertTrue(names)
        downloads = os.path.join(jobdir, "downloads")
        self.assertEqual(sorted(os.listdir(downloads)), names)
        for name in names:
            with open(os.path.join(served, name), "rb") as a, \
                    open(os.path.join(downloads, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), "downloads/%s differs "
                                 "from the file server's" % name)
        for t in self.tasks:
            status, _ = http_json("GET", api + "/api/v1/jobs/%s/tasks/%s/log"
                                  % (job["id"], t["id"]))
            self.assertEqual(status, 200, "no log for task %s" % t["id"])


def s_terminated(signum, frame):
    # ctest's timeout or ^C: fail the test so that its cleanup runs.
    raise AssertionError("terminated by signal %d" % signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, s_terminated)
    signal.signal(signal.SIGHUP, s_terminated)
    unittest.main(verbosity=2)
