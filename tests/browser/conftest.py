"""Starts a real `rounds serve --demo` on a free loopback port and a headless Chromium.

The server binary comes from ROUNDS_BIN (default: .build/debug/rounds, built by `swift build`).
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("ROUNDS_BIN", os.path.join(ROOT, ".build", "debug", "rounds"))
    assert os.path.exists(binary), f"{binary} not found: run `swift build` first"
    workdir = tempfile.mkdtemp(prefix="rounds-browser-")
    port = free_port()
    log = open(os.path.join(workdir, "server.log"), "w")
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [binary, "serve", "--demo", "--db", os.path.join(workdir, "demo.sqlite"), "--port", str(port), "--bcrypt-cost", "6"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.flush()
            raise RuntimeError("rounds did not start:\n" + open(os.path.join(workdir, "server.log")).read())
        time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(workdir, ignore_errors=True)


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    return browser, driver


def make_driver(width=768, height=1024):
    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    if browser:
        options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--lang=zh-CN"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


@pytest.fixture
def browser():
    driver = make_driver()
    yield driver
    driver.quit()


@pytest.fixture
def second_browser():
    driver = make_driver()
    yield driver
    driver.quit()
