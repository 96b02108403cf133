"""IT opens the mapping queue, maps a ward code the HIS sent but Rounds does not know, and the
messages that waited for it are applied, in order (issue 19)."""
import os
import subprocess
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

import pytest

from rounds_process import Rounds, binary
from test_sign_in import sign_in


@pytest.fixture(scope="module")
def rounds_server():
    # Its own server: the admission it maps takes a bed the other tests count.
    rounds = Rounds().start()
    yield rounds
    rounds.remove()


def send_waiting(server, tmp_path):
    stamp = time.strftime("%Y%m%d%H%M%S")
    admission = "\r".join([
        f"MSH|^~\\&|HIS|ARION|ROUNDS|ARION|{stamp}||ADT^A01|MAPQ-1|P|2.5",
        f"EVN|A01|{stamp}", "PID|1||MAPQ-MRN1^^^ARION^MR||冯^七||19580101|M",
        "PV1|1|I|9E^5^^ARION||||D001^李^明|||||||||||IP|V-MAPQ1"])
    result = "\r".join([
        f"MSH|^~\\&|LIS|ARION|ROUNDS|ARION|{stamp}||ORU^R01|MAPQ-2|P|2.5",
        "PID|1||MAPQ-MRN1^^^ARION^MR||冯^七", "OBR|1|MAPQ-O||2951-2^Sodium^LN",
        "OBX|1|NM|2951-2^Sodium^LN||139|mmol/L|137-147|N|||F"])
    path = tmp_path / "waiting.hl7"
    path.write_bytes((admission + "\n" + result + "\n").encode("utf-8"))
    out = subprocess.run([binary(), "send-hl7", "--port", str(server.mllp_port), str(path)],
                         capture_output=True, text=True, timeout=60)
    # Both are answered AE (stored, waiting), so send-hl7 reports them as not accepted.
    assert out.returncode == 1 and "2 of 2" in out.stdout, out.stdout + out.stderr


def test_it_maps_an_unknown_ward_code_and_the_waiting_messages_go_through(rounds_server, browser, tmp_path):
    base = rounds_server.base
    send_waiting(rounds_server, tmp_path)
    sign_in(browser, base, "hu.bin")
    browser.get(base + "/integration")
    browser.find_element(By.ID, "mapping-link").click()
    group = WebDriverWait(browser, 15).until(EC.presence_of_element_located(
        (By.XPATH, "//section[contains(@class,'mapping-group')][.//h2[contains(., '9E')]]")))
    assert "2" in group.find_element(By.TAG_NAME, "h2").text
    shots = os.environ.get("ROUNDS_SCREENSHOTS")
    if shots:
        os.makedirs(shots, exist_ok=True)
        browser.save_screenshot(os.path.join(shots, "mapping-queue.png"))
    Select(group.find_element(By.NAME, "wardId")).select_by_visible_text("肺癌中心（LUNG）")
    group.find_element(By.CSS_SELECTOR, "button.primary").click()
    flash = WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.flash.ok")))
    assert "已处理 2 条中的 2 条" in browser.page_source, flash.text
    assert "9E" not in "".join(h.text for h in browser.find_elements(By.CSS_SELECTOR, ".mapping-group h2"))
    # The patient is on the ward now, with the result.
    browser.get(base + "/integration?mrn=MAPQ-MRN1")
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    text = " ".join(r.text for r in rows)
    assert "已放行" in text and "已接受" in text, text
    # The mapping went into a channel made for the sender; its page shows the code map.
    browser.get(base + "/integration/channels")
    browser.find_element(By.LINK_TEXT, "HIS@ARION").click()
    codes = WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.NAME, "wardCodes")))
    assert "9E=LUNG" in codes.get_attribute("value")
    if shots:
        browser.save_screenshot(os.path.join(shots, "channel.png"))
    # Try a message on the form: the result comes back on the page, nothing written.
    box = browser.find_element(By.ID, "channel-test-message")
    box.send_keys("MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121083000||ADT^A01|TRY-1|P|2.5\n"
                  "PID|1||TRY-MRN^^^ARION^MR||试^运行||19600101|M\nPV1|1|I|9E^6^^ARION")
    browser.find_element(By.ID, "channel-test").click()
    result = WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "channel-test-result")))
    assert "将被接受" in result.text and "LUNG 6" in result.text, result.text
    if shots:
        browser.execute_script("arguments[0].scrollIntoView()", result)
        browser.save_screenshot(os.path.join(shots, "channel-test.png"))
