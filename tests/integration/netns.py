"""Network namespaces for the integration tests: a small network of
namespaces joined by veth pairs, processes started in them, and HTTP from
one of them.

Each node gets a namespace with an address on 10.77.0.0/24; veth pairs
join them to a bridge in a hub namespace (or, without bridge support, to a
router namespace, one /24 per node). These addresses exist only inside the
namespaces a test creates; nothing routes beyond them. Namespace names
carry the pid and a random tag, so parallel runs never meet, and every
namespace is deleted when its test ends, whatever happened (deleting a
namespace deletes its veth ends and their peers).

Needs root and iproute2: missing_prerequisite() says why not.
"""
import ctypes
import http.client
import json
import os
import shutil
import socket
import subprocess

from harness import CONTROLLER, WORKER, Cluster, exchange, wait_for

WAIT = 60
HTTP_PORT = 8080
ZMQ_PORT = 5555

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def socket_in(namespace):
    """A TCP socket that belongs to network namespace `namespace`: this
    thread enters it only for the socket() call and then comes back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/run/netns/" + namespace, os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


class NsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, namespace, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.namespace = namespace

    def connect(self):
        sock = socket_in(self.namespace)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def lists_option(binary, option):
    """True when `binary --help` lists `option`."""
    try:
        out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30).stdout
    except OSError:
        return False
    return option.encode() in out


def plaintext(binary):
    """The flag that lets `binary` speak plain ZeroMQ beyond loopback, for
    the versions that ask for it: these namespaces are a trusted network."""
    return ["--plaintext"] if lists_option(binary, "--plaintext") else []


def missing_prerequisite():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2 ('ip' is not on PATH)"
    return None


class Network:
    """The namespaces of one test and the links between them."""

    def __init__(self, test, roles):
        self.test = test
        self.tag = "%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.addr = {}
        self.gateway = {}
        hub = self.add_namespace("hub")
        try:
            self.ip("-n", hub, "link", "add", "br0", "type", "bridge")
            self.bridge = True
        except AssertionError:
            self.bridge = False
        if self.bridge:
            self.ip("-n", hub, "link", "set", "br0", "up")
        else:
            self.run("ip", "netns", "exec", hub, "sysctl", "-qw",
                     "net.ipv4.ip_forward=1")
        for i, role in enumerate(roles, 1):
            ns = self.add_namespace(role)
            port = "p%d" % i
            self.ip("-n", hub, "link", "add", port, "type", "veth", "peer",
                    "name", "eth0", "netns", ns)
            if self.bridge:
                self.ip("-n", hub, "link", "set", port, "master", "br0")
                self.addr[role] = "10.77.0.%d" % (10 + i)
            else:
                self.ip("-n", hub, "addr", "add", "10.77.%d.1/24" % i,
                        "dev", port)
                self.addr[role] = "10.77.%d.2" % i
                self.gateway[role] = "10.77.%d.1" % i
            self.ip("-n", hub, "link", "set", port, "up")
            self.ip("-n", ns, "addr", "add", self.addr[role] + "/24",
                    "dev", "eth0")
            self.link_up(role)

    def name(self, role):
        return "shoal-%s-%s" % (self.tag, role)

    def run(self, *argv):
        proc = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=30)
        if proc.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (
                " ".join(argv), proc.returncode,
                proc.stdout.decode(errors="replace").strip()))
        return proc.stdout.decode(errors="replace")

    def ip(self, *args):
        return self.run("ip", *args)

    def add_namespace(self, role):
        ns = self.name(role)
        self.ip("netns", "add", ns)
        self.test.addCleanup(self._delete_namespace, ns)
        self.ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _delete_namespace(self, ns):
        subprocess.run(["ip", "netns", "delete", ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def link_down(self, role):
        self.ip("-n", self.name(role), "link", "set", "eth0", "down")

    def link_up(self, role):
        ns = self.name(role)
        self.ip("-n", ns, "link", "set", "eth0", "up")
        if role in self.gateway:
            # Taking a link down drops the routes through it.
            self.ip("-n", ns, "route", "replace", "default", "via",
                    self.gateway[role])


class NetCluster(Cluster):
    """harness.Cluster with each process in its own namespace."""

    def __init__(self, definitions, net):
        super().__init__(definitions)
        self.net = net
        self.ctl_addr = net.addr["ctl"]
        self.http_port = HTTP_PORT
        self.zmq_port = ZMQ_PORT

    def start_controller(self, extra=()):
        self.controller = self._spawn("controller", [
            "ip", "netns", "exec", self.net.name("ctl"), CONTROLLER,
            "--definitions", self.defs_path, "--data-dir", self.data_dir,
            "--http", "%s:%d" % (self.ctl_addr, HTTP_PORT),
            "--bind", "tcp://%s:%d" % (self.ctl_addr, ZMQ_PORT),
            "--log-level", "debug", *plaintext(CONTROLLER), *extra])
        wait_for(self._ready, timeout=WAIT, what="controller /readyz")
        return self.controller

    def start_worker(self, name, slots=2, env=None, wait=True, extra=()):
        proc = self._spawn(name, [
            "ip", "netns", "exec", self.net.name(name), WORKER,
            "--connect", "tcp://%s:%d" % (self.ctl_addr, ZMQ_PORT),
            "--data-dir", self.data_dir, "--slots", str(slots),
            "--name", name, "--log-level", "debug", *plaintext(WORKER),
            *extra], env=env)
        self.workers[name] = proc
        if wait:
            wait_for(lambda: name in self.worker_names(), timeout=WAIT,
                     what="worker %s to join" % name)
        return proc

    def request(self, method, path, body=None, headers=None, raw=None):
        conn = NsHTTPConnection(self.net.name("cli"), self.ctl_addr,
                                HTTP_PORT, timeout=30)
        return exchange(conn, method, path, body, headers, raw)
