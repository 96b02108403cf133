"""A pathology system sends an MDM whose attachment claims to be HTML with a script in it (the
stored-XSS probe): opened by a nurse from the report card, it runs nothing in her session."""
import base64
import os
import subprocess
import time

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from rounds_process import SAMPLES, Rounds, binary, send_hl7
from test_patient_group import open_group
from test_sign_in import sign_in

SCRIPT = b"<html><body><script>document.title='PWNED';alert('PWNED');fetch('/api/v1/me')</script></body></html>"


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    yield rounds
    rounds.remove()


def send_html_report(server, tmp_path):
    with open(os.path.join(SAMPLES, "mdm_t02_pathology_pdf.hl7"), "rb") as f:
        segments = f.read().split(b"\r")
    for i, segment in enumerate(segments):
        if segment.startswith(b"OBX|2|ED|"):
            fields = segment.split(b"|")
            fields[5] = b"^text^html^Base64^" + base64.b64encode(SCRIPT)
            segments[i] = b"|".join(fields)
        if segment.startswith(b"MSH|"):
            fields = segment.split(b"|")
            fields[9] = b"XSS-BROWSER-1"
            segments[i] = b"|".join(fields)
    path = tmp_path / "mdm_html.hl7"
    path.write_bytes(b"\r".join(segments))
    out = subprocess.run([binary(), "send-hl7", "--port", str(server.mllp_port), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_html_attachment_from_the_card_runs_no_script(rounds_server, browser, tmp_path):
    base = rounds_server.base
    send_hl7(rounds_server, "adt_a01_utf8.hl7")
    send_html_report(rounds_server, tmp_path)
    sign_in(browser, base, "wang.fang")
    open_group(browser, base)
    # The report card's button leads to the patient's reports; its attachment link from there.
    card = WebDriverWait(browser, 20).until(
        EC.presence_of_element_located((By.XPATH, "//div[contains(@class,'bot-card')][.//a[contains(@href,'/patients/')]]")))
    card.find_element(By.XPATH, ".//a[contains(@href,'/patients/')]").click()
    link = WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "a[href^='/attachments/']")))
    href = link.get_attribute("href")
    title_before = browser.title

    # What the browser is told: a download, in a sandbox, not to be sniffed.
    headers = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => done({type: r.headers.get('content-type'), csp: r.headers.get('content-security-policy'),
                                            disposition: r.headers.get('content-disposition'), nosniff: r.headers.get('x-content-type-options')}));
    """, href)
    assert headers["type"] == "application/octet-stream"
    assert headers["csp"] == "sandbox; default-src 'none'"
    assert headers["disposition"].startswith("attachment;")
    assert headers["nosniff"] == "nosniff"

    # Opening it as a nurse would: the script never runs (no title change, no alert).
    browser.get(href)
    time.sleep(1.5)
    try:
        alert = browser.switch_to.alert
        text = alert.text
        alert.dismiss()
        pytest.fail(f"the attachment ran a script: alert {text!r}")
    except NoAlertPresentException:
        pass
    assert browser.title != "PWNED"
    assert browser.title == title_before
