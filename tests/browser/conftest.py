"""Starts a real `rounds serve --demo` on a free loopback port and a headless Chromium.

The server binary comes from ROUNDS_BIN (default: .build/debug/rounds, built by `swift build`).
"""
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from rounds_process import Rounds


@pytest.fixture(scope="session")
def rounds_server():
    rounds = Rounds().start()
    yield rounds
    rounds.remove()


@pytest.fixture(scope="session")
def server(rounds_server):
    return rounds_server.base


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
