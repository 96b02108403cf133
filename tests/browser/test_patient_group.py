"""A nurse and a doctor, each in their own browser, in the patient group that an HL7
admission opened: they see each other's messages live, and the nurse sees the doctor's read."""
import os
import subprocess

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import pytest

from rounds_process import SAMPLES, Rounds, binary
from test_sign_in import sign_in


@pytest.fixture(scope="module")
def rounds_server():
    """A server of its own: this test admits a patient, which other tests must not see."""
    rounds = Rounds().start()
    yield rounds
    rounds.remove()


def open_group(browser, base):
    browser.get(base + "/groups")
    link = WebDriverWait(browser, 15).until(
        EC.presence_of_element_located((By.XPATH, "//li[contains(@class,'group-row')]//a[contains(., 'MRN10001')]")))
    link.click()
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat.live")))


def send(browser, text):
    box = browser.find_element(By.ID, "composer-text")
    box.send_keys(text)
    browser.find_element(By.ID, "composer-send").click()


def test_nurse_and_doctor_see_each_other_live(rounds_server, browser, second_browser):
    base = rounds_server.base
    # The HIS admits 王建国 to 肺癌中心 bed 12 and then changes his order, over MLLP.
    for name in ("adt_a01_utf8.hl7", "orm_o01_change.hl7"):
        out = subprocess.run([binary(), "send-hl7", "--port", str(rounds_server.mllp_port), os.path.join(SAMPLES, name)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr

    nurse, doctor = browser, second_browser
    sign_in(nurse, base, "wang.fang")
    sign_in(doctor, base, "li.ming")
    open_group(nurse, base)
    open_group(doctor, base)
    assert "12床 · 王建国 · MRN10001" in nurse.find_element(By.ID, "group-name").text
    # The order change is there as a card.
    assert "医嘱变更 · 顺铂" in nurse.find_element(By.CSS_SELECTOR, ".bot-card .card-title").text

    send(doctor, "请今晚复查血钾")
    WebDriverWait(nurse, 15).until(EC.text_to_be_present_in_element((By.ID, "messages"), "请今晚复查血钾"))

    send(nurse, "好的，已安排")
    WebDriverWait(doctor, 15).until(EC.text_to_be_present_in_element((By.ID, "messages"), "好的，已安排"))
    # The doctor's page was open, so he has read it: the nurse's receipt says so.
    WebDriverWait(nurse, 15).until(
        lambda b: b.find_element(By.XPATH, "//li[contains(@class,'mine')][contains(., '好的，已安排')]//span[@class='receipts muted']")
        .get_attribute("title") == "李明")
    # Typing shows on the other side.
    doctor.find_element(By.ID, "composer-text").send_keys("正在")
    WebDriverWait(nurse, 15).until(EC.text_to_be_present_in_element((By.ID, "typing"), "李明"))
