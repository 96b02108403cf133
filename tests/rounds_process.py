"""Starting and stopping a real `rounds` process for the Python-driven tests.

The binary comes from ROUNDS_BIN (default: .build/debug/rounds, built by `swift build`).
"""
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "Tests", "RoundsTests", "Fixtures", "hl7")


def binary():
    path = os.environ.get("ROUNDS_BIN", os.path.join(ROOT, ".build", "debug", "rounds"))
    assert os.path.exists(path), f"{path} not found: run `swift build` first"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rounds:
    """One `rounds serve` process on loopback ports, restartable on the same database."""

    def __init__(self, workdir=None, database_url=None, extra=()):
        self.workdir = workdir or tempfile.mkdtemp(prefix="rounds-py-")
        self.http_port = free_port()
        self.mllp_port = free_port()
        self.database_url = database_url
        self.extra = list(extra)
        self.proc = None
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.log_path = os.path.join(self.workdir, "server.log")

    def start(self, demo=True, timeout=90, mllp=True):
        args = [binary(), "serve", "--db", os.path.join(self.workdir, "rounds.sqlite"), "--port", str(self.http_port),
                "--mllp-host", "127.0.0.1", "--mllp-port", str(self.mllp_port), "--bcrypt-cost", "6",
                "--demo-feed-rate", "0", "--allow-destination", "127.0.0.1"] + (["--demo"] if demo else []) + self.extra
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200 and (not mllp or self._mllp_open()):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("rounds did not start:\n" + open(self.log_path).read()[-4000:])
            time.sleep(0.2)

    def _mllp_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.mllp_port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self):
        """SIGKILL: no shutdown, no flush — a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout=20):
        """SIGTERM, as a service manager stops it; returns the exit status (None: still running
        after `timeout`, then killed)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def remove(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Worker(Rounds):
    """One `rounds worker` (the runtime and the MLLP listener, no HTTP) on a shared PostgreSQL."""

    def start(self, demo=False, timeout=90, mllp=True):
        args = [binary(), "worker", "--mllp-host", "127.0.0.1", "--mllp-port", str(self.mllp_port),
                "--allow-destination", "127.0.0.1"] + self.extra
        env = dict(os.environ, DATABASE_URL=self.database_url)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while not (self._mllp_open() and "worker is running" in open(self.log_path).read()):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("rounds worker did not start:\n" + open(self.log_path).read()[-4000:])
            time.sleep(0.2)
        return self


def send_hl7_text(server, text):
    """Sends HL7 text (segments separated by CR) to a server's MLLP port; it must be accepted."""
    path = os.path.join(server.workdir, "message-%d.hl7" % time.time_ns())
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    out = subprocess.run([binary(), "send-hl7", "--port", str(server.mllp_port), path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


class WebSocket:
    """A minimal WebSocket client (RFC 6455: handshake, unmasked server frames, masked close),
    enough to watch `/api/v1/ws` as a signed-in session does."""

    def __init__(self, base, session, path="/api/v1/ws"):
        import base64
        host, port = base.replace("http://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        cookies = "; ".join(f"{c.name}={c.value}" for c in session.jar)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookies}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "connection closed during the WebSocket handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head.decode(errors="replace")

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "WebSocket closed"
            data += chunk
        return data

    def receive(self, timeout=30):
        """The next text message as JSON (pings and other frames skipped)."""
        self.sock.settimeout(timeout)
        while True:
            b1, b2 = self._exact(2)
            opcode, length = b1 & 0x0F, b2 & 0x7F
            if length == 126:
                length = int.from_bytes(self._exact(2), "big")
            elif length == 127:
                length = int.from_bytes(self._exact(8), "big")
            payload = self._exact(length)
            if opcode == 1:
                return json.loads(payload.decode())
            assert opcode != 8, "the server closed the WebSocket"

    def wait_for(self, predicate, timeout=60):
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            try:
                event = self.receive(timeout=max(0.1, deadline - time.time()))
            except socket.timeout:
                break
            seen.append(event)
            if predicate(event):
                return event
        raise AssertionError("no matching WebSocket event; got %r" % [e.get("type") for e in seen])

    def close(self):
        try:
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        finally:
            self.sock.close()


def send_hl7(server, name):
    """Sends a sample message to a running server with `rounds send-hl7`; it must be accepted."""
    out = subprocess.run([binary(), "send-hl7", "--port", str(server.mllp_port), os.path.join(SAMPLES, name)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


class Session:
    """A signed-in web session (cookie + CSRF token), for the JSON API."""

    def __init__(self, base, username, password="rounds-demo"):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        page = self.opener.open(base + "/login").read().decode()
        token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"username": username, "password": password, "_csrf": token}).encode()
        self.opener.open(urllib.request.Request(base + "/login", data=body, method="POST"))
        home = self.opener.open(base + "/").read().decode()
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', home)
        assert match, "sign-in failed"
        self.csrf = match.group(1)

    def get(self, path):
        request = urllib.request.Request(self.base + path, headers={"Accept": "application/json"})
        with self.opener.open(request) as r:
            return json.loads(r.read())

    def put(self, path, payload):
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="PUT",
                                         headers={"Content-Type": "application/json", "Accept": "application/json",
                                                  "X-CSRF-Token": self.csrf})
        with self.opener.open(request) as r:
            return r.status, json.loads(r.read())

    def patch(self, path, payload):
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="PATCH",
                                         headers={"Content-Type": "application/json", "Accept": "application/json",
                                                  "X-CSRF-Token": self.csrf})
        with self.opener.open(request) as r:
            return r.status, json.loads(r.read())

    def post(self, path, payload):
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json",
                                                  "X-CSRF-Token": self.csrf})
        with self.opener.open(request) as r:
            return r.status, json.loads(r.read())


def patient_on_ward(session, hospital_code, ward_code):
    """(hospital, the first admitted patient of the ward), through the API."""
    hospital = [h for h in session.get("/api/v1/hospitals") if h["code"] == hospital_code][0]
    ward = [d for d in session.get(f"/api/v1/hospitals/{hospital['id']}/departments") if d["code"] == ward_code][0]
    return hospital, session.get(f"/api/v1/wards/{ward['id']}/patients")[0]["patient"]


def start_bench_postgres():
    """A throw-away PostgreSQL cluster with default durability (fsync on), for benchmarks.
    Returns (url of its maintenance database, environment to stop it with)."""
    env = dict(os.environ, ROUNDS_TEST_PGDATA="/tmp/rounds-bench-pg", ROUNDS_TEST_POSTGRES_PORT="55439",
               ROUNDS_TEST_PG_DURABLE="1")
    url = subprocess.run([os.path.join(ROOT, "scripts", "test-postgres"), "start"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    return url, env


def stop_bench_postgres(env):
    subprocess.run([os.path.join(ROOT, "scripts", "test-postgres"), "stop"], env=env)


def new_database(base_url):
    """Creates an empty database on the server of `base_url`; returns its URL."""
    import glob
    import uuid
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    name = "rounds_bench_" + uuid.uuid4().hex[:8]
    subprocess.run([psql, base_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return re.sub(r"/postgres\?", f"/{name}?", base_url)
