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


def test_mentions_replies_edits_and_recalls(rounds_server):
    """@ picker and the "有人@我" badge; the group opens at the first unread message; reply with a
    quote, edit in place, recall; day separators; the composer stays in reach on an iPad."""
    from conftest import make_driver
    base = rounds_server.base
    nurse, doctor = make_driver(768, 1024), make_driver(1024, 768)
    try:
        sign_in(nurse, base, "wang.fang")
        sign_in(doctor, base, "li.ming")
        open_group(doctor, base)
        # The doctor writes "@王" and picks the nurse from the offered members.
        box = doctor.find_element(By.ID, "composer-text")
        box.send_keys("@王")
        pick = WebDriverWait(doctor, 10).until(EC.element_to_be_clickable((By.XPATH, "//ul[@id='mention-picker']//button[.='@王芳']")))
        pick.click()
        assert box.get_attribute("value") == "@王芳 "
        box.send_keys("请看一下12床的血钾")
        doctor.find_element(By.ID, "composer-send").click()
        WebDriverWait(doctor, 15).until(EC.text_to_be_present_in_element((By.ID, "messages"), "请看一下12床的血钾"))

        # Her list says someone mentioned her; the group opens at the unread line.
        nurse.get(base + "/groups")
        row = nurse.find_element(By.XPATH, "//li[contains(@class,'group-row')][contains(., 'MRN10001')]")
        assert "有人@我" in row.text
        # And the navigation says so on every page: messages waiting, one of them naming her.
        assert nurse.find_element(By.ID, "nav-mentioned").is_displayed()
        assert int(nurse.find_element(By.ID, "nav-unread").text) >= 1
        row.find_element(By.TAG_NAME, "a").click()
        WebDriverWait(nurse, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat.live")))
        line = nurse.find_element(By.ID, "unread-line")
        assert "以下为未读消息" in line.text
        mention = nurse.find_element(By.XPATH, "//li[contains(@class,'mentions-me')][contains(., '请看一下12床的血钾')]")
        assert mention.is_displayed()
        assert nurse.find_elements(By.CSS_SELECTOR, "#messages .day-sep")
        # The composer is on screen without scrolling the page.
        composer = nurse.find_element(By.ID, "composer-send")
        assert nurse.execute_script("var r = arguments[0].getBoundingClientRect(); return r.bottom <= window.innerHeight && r.top >= 0", composer)

        # Reply: the answer carries a quote of the doctor's message.
        mention.find_element(By.CSS_SELECTOR, ".msg-reply").click()
        assert "李明" in nurse.find_element(By.ID, "composer-replying").text
        send(nurse, "收到，马上去")
        reply = WebDriverWait(nurse, 15).until(EC.presence_of_element_located(
            (By.XPATH, "//li[contains(@class,'mine')][contains(., '收到，马上去')]")))
        assert "请看一下12床的血钾" in reply.find_element(By.CSS_SELECTOR, ".quote").text
        WebDriverWait(doctor, 15).until(EC.text_to_be_present_in_element((By.ID, "messages"), "收到，马上去"))

        # Edit in place; the doctor sees the new text, marked edited.
        reply.find_element(By.CSS_SELECTOR, ".msg-edit").click()
        area = reply.find_element(By.CSS_SELECTOR, ".edit-box textarea")
        area.clear()
        area.send_keys("收到，五分钟后到")
        reply.find_element(By.CSS_SELECTOR, ".edit-box button.primary").click()
        WebDriverWait(doctor, 15).until(EC.text_to_be_present_in_element((By.ID, "messages"), "收到，五分钟后到"))

        # Recall (with a confirmation); gone from both screens.
        mine = nurse.find_element(By.XPATH, "//li[contains(@class,'mine')][contains(., '收到，五分钟后到')]")
        mine.find_element(By.CSS_SELECTOR, ".msg-recall").click()
        nurse.switch_to.alert.accept()
        WebDriverWait(doctor, 15).until_not(EC.text_to_be_present_in_element((By.ID, "messages"), "收到，五分钟后到"))
        WebDriverWait(nurse, 15).until_not(EC.text_to_be_present_in_element((By.ID, "messages"), "收到，五分钟后到"))
    finally:
        nurse.quit()
        doctor.quit()
