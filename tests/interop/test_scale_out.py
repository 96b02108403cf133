"""Scale-out on PostgreSQL, as processes: two `rounds serve --no-worker` (web only) and `rounds
worker` (runtime + MLLP, no HTTP) on one database. An HL7 order sent to the worker's MLLP port
arrives as a card on a WebSocket of the *other* web process (NOTIFY fan-out); a critical value's
escalation fires exactly once while two workers compete for the timer; a worker killed with
SIGKILL loses nothing and nothing is delivered twice."""
import os
import subprocess
import time
import urllib.parse
import uuid
import glob

import pytest

from rounds_process import SAMPLES, Rounds, Session, WebSocket, Worker, send_hl7_text


def fixture(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8", newline="") as f:
        return f.read()


def order(number):
    """A new order (ORC NW) for 王建国 with its own control id and placer number."""
    text = fixture("orm_o01_change.hl7").replace("MSG00003", "SCALE%04d" % number)
    return text.replace("ORC|XO|ORD7788^HIS", "ORC|NW|SCALE-ORD%04d^HIS" % number)


def eventually(what, probe, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def database():
    base = os.environ.get("ROUNDS_TEST_POSTGRES_URL")
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if not base or not psql:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the scale-out test (ROUNDS_TEST_POSTGRES_URL and psql)")
        pytest.skip("no PostgreSQL")
    name = "rounds_scale_" + uuid.uuid4().hex[:8]
    subprocess.run([psql[-1], base, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield urllib.parse.urlsplit(base)._replace(path="/" + name).geturl()
    subprocess.run([psql[-1], base, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


def test_two_web_processes_and_workers_share_one_postgresql(database):
    processes = []
    try:
        web1 = Rounds(database_url=database, extra=["--no-worker"])
        processes.append(web1.start(demo=True, mllp=False))
        web2 = Rounds(database_url=database, extra=["--no-worker"])
        processes.append(web2.start(demo=False, mllp=False))
        assert not web1._mllp_open() and not web2._mllp_open(), "--no-worker runs no MLLP listener"
        worker = Worker(database_url=database)
        processes.append(worker.start())

        send_hl7_text(worker, fixture("adt_a01_utf8.hl7"))
        doctor = Session(web2.base, "li.ming")
        group = eventually("the patient group", lambda: next(
            (g for g in doctor.get("/api/v1/groups") if "MRN10001" in g["name"]), None))
        socket = WebSocket(web2.base, doctor)

        # An order into the worker's MLLP port, a card on the other web process's socket.
        send_hl7_text(worker, order(1))
        card = socket.wait_for(lambda e: e.get("type") == "message" and "顺铂" in ((e.get("message") or {}).get("text") or ""))
        assert card["groupId"] == group["id"]

        # A one-minute ladder, then a critical value through the worker.
        head = Session(web1.base, "zhang.li")
        status, _ = head.put("/api/v1/wards/%s/escalation-ladder" % group["wardId"],
                             {"steps": [{"afterMinutes": 1, "targets": ["ward_doctors", "head_nurse"]}]})
        assert status == 200
        send_hl7_text(worker, fixture("oru_r01_critical_k.hl7"))
        alert = eventually("the critical value", lambda: next(iter(doctor.get("/api/v1/alerts")), None))
        assert alert["status"] == "open" and alert["level"] == 0

        # More orders, then the worker dies mid-flight (no shutdown at all).
        for n in range(2, 6):
            send_hl7_text(worker, order(n))
        worker.kill()
        # Two workers now compete for the same events and the same timer.
        second, third = Worker(database_url=database), Worker(database_url=database)
        processes += [second.start(), third.start()]
        for n in range(6, 9):
            send_hl7_text(second if n % 2 else third, order(n))

        record = lambda: doctor.get("/api/v1/alerts/" + alert["id"])
        eventually("the escalation", lambda: record()["alert"]["level"] == 1, timeout=150)
        time.sleep(3)  # both workers have looked again since
        messages = doctor.get("/api/v1/groups/%s/messages?limit=200" % group["id"])
        texts = [m.get("text") or "" for m in (messages if isinstance(messages, list) else messages.get("messages", []))]
        escalations = [t for t in texts if t.startswith("危急值未确认")]
        assert len(escalations) == 1, escalations
        cards = [t for t in texts if "顺铂" in t]
        assert len(cards) == 8, "each of the 8 orders exactly once: %r" % cards
        steps = [step["kind"] for step in record()["steps"]]
        assert steps.count("escalated") == 1, steps
        socket.close()
    finally:
        for process in reversed(processes):
            process.remove()
