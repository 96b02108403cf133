"""Bedside nursing on an iPad-sized screen: a nurse fills the Morse fall assessment for bed 12,
sees the running score reach the high-risk band, loses the network while sending (the draft is
kept and sent when the network returns, once), and finds the band's tasks on the ward calendar."""
import os
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from rounds_process import Rounds, Session, send_hl7
from test_sign_in import SHOTS, sign_in


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    send_hl7(rounds, "adt_a01_utf8.hl7")
    yield rounds
    rounds.remove()


HIGH_RISK = {"history_of_falling": "yes", "secondary_diagnosis": "no", "ambulatory_aid": "none_bedrest_nurse",
             "iv_access": "yes", "gait": "normal_bedrest_wheelchair", "mental_status": "oriented"}


def test_morse_for_bed_12_reaches_the_calendar(rounds_server, browser):
    base = rounds_server.base
    sign_in(browser, base, "wang.fang")
    WebDriverWait(browser, 15).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "a.ward-nursing"))).click()
    bed = WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "li.bed-card[data-bed='12']")))
    assert "王建国" in bed.text
    ward_url = browser.current_url
    bed.find_element(By.CSS_SELECTOR, "a").click()
    WebDriverWait(browser, 15).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#morse-fall-scale a.assess"))).click()
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "assessment")))

    for item, option in HIGH_RISK.items():
        choice = browser.find_element(By.CSS_SELECTOR, f"input[name='a_{item}'][value='{option}']")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", choice)
        choice.find_element(By.XPATH, "..").click()
    assert browser.find_element(By.ID, "running-total").text == "45"
    band = browser.find_element(By.ID, "running-band")
    assert band.text == "高风险" and "sev-high" in band.get_attribute("class")
    if SHOTS:
        browser.save_screenshot(os.path.join(SHOTS, "morse-ipad.png"))

    # The network drops as she sends: the form stays, with a message; nothing is lost.
    patient_id = browser.find_element(By.ID, "assessment").get_attribute("data-patient")
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    browser.find_element(By.ID, "submit-assessment").click()
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "assess-status"), "网络中断"))
    session = Session(base, "wang.fang")
    assert session.get(f"/api/v1/patients/{patient_id}/assessments") == []
    # The network returns: the kept draft goes out by itself, once.
    browser.delete_network_conditions()
    browser.execute_script("window.dispatchEvent(new Event('online'))")
    WebDriverWait(browser, 30).until(EC.url_contains("/nursing?done="))
    time.sleep(1)
    assessments = session.get(f"/api/v1/patients/{patient_id}/assessments")
    assert [(a["total"], a["band"]) for a in assessments] == [(45, "high")]
    assert "高风险" in browser.find_element(By.ID, "morse-fall-scale").text

    # The band's interventions are on the ward calendar.
    browser.get(ward_url.replace("/nursing", "/calendar"))
    WebDriverWait(browser, 15).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "床栏拉起"))
    entry = browser.find_element(By.XPATH, "//li[contains(@class,'entry')][contains(., '床栏拉起')]")
    assert "12" in entry.text and "王建国" in entry.text
    if SHOTS:
        browser.save_screenshot(os.path.join(SHOTS, "ward-calendar-ipad.png"))
