"""The kill test (scripts/kill-test-hl7) in the test run: 10,000 messages, SIGKILL and restart
several times; every acknowledged message stored exactly once. SQLite always; PostgreSQL too
when the test run has one (ROUNDS_TEST_POSTGRES_URL, set by scripts/test)."""
import glob
import os
import subprocess
import sys
import urllib.parse
import uuid

import pytest

from rounds_process import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "kill-test-hl7")
COUNT = os.environ.get("ROUNDS_KILL_TEST_COUNT", "10000")


def run(*extra):
    out = subprocess.run([sys.executable, SCRIPT, "--count", COUNT, "--kills", "6", *extra],
                         capture_output=True, text=True, timeout=1500)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "PASS" in out.stdout


def test_kill_test_on_sqlite():
    run()


def test_sigterm_drains_on_sqlite():
    """Stopped with SIGTERM four times mid-stream: each stop drains and exits 0; nothing
    acknowledged is lost or stored twice."""
    out = subprocess.run([sys.executable, SCRIPT, "--count", "2000", "--kills", "4", "--signal", "term"],
                         capture_output=True, text=True, timeout=900)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "PASS" in out.stdout


def postgres_database():
    base = os.environ.get("ROUNDS_TEST_POSTGRES_URL")
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if not base or not psql:
        return None
    name = "rounds_kill_" + uuid.uuid4().hex[:8]
    subprocess.run([psql[-1], base, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    parts = urllib.parse.urlsplit(base)
    return parts._replace(path="/" + name).geturl(), (psql[-1], base, name)


def test_kill_test_on_postgresql():
    created = postgres_database()
    if created is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the kill test on PostgreSQL too (ROUNDS_TEST_POSTGRES_URL and psql)")
        pytest.skip("no PostgreSQL for the kill test")
    url, (psql, base, name) = created
    try:
        run("--postgres", url)
    finally:
        subprocess.run([psql, base, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
