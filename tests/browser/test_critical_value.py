"""Critical values in the browser, as a nurse meets them: the urgent panel says whose value it
is (name, bed, ward, MRN) on every page, sits in the page flow with nothing to tap by mistake,
and acknowledging takes the alert's own page and a typed read-back. On iPad landscape and
portrait and on a phone."""
import os
import uuid

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import make_driver
from rounds_process import Rounds, Session, send_hl7
from test_sign_in import SHOTS, sign_in

SIZES = [(1024, 768), (768, 1024), (390, 844)]


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    send_hl7(rounds, "adt_a01_utf8.hl7")   # 王建国, 肺癌中心 bed 12, with his patient group
    yield rounds
    rounds.remove()


def alert_status(server, alert_id):
    return Session(server.base, "wang.fang").get("/api/v1/alerts/" + alert_id)["alert"]["status"]


def report(server, value, test="血钾", code="2823-3"):
    status, alert = Session(server.base, "qian.li").post("/api/v1/critical-values", {
        "mrn": "MRN10001", "testCode": code, "testName": test, "value": value, "unit": "mmol/L", "flag": "HH",
        "externalId": "LIS-" + uuid.uuid4().hex[:8]})
    assert status == 201, alert
    return alert


def acknowledge_all(server):
    nurse = Session(server.base, "wang.fang")
    for alert in nurse.get("/api/v1/alerts?status=open"):
        nurse.post("/api/v1/alerts/%s/acknowledge" % alert["id"], {"readBack": alert["value"]})


def panel_text(driver):
    return driver.find_element(By.ID, "urgent-alerts").text


def test_the_panel_names_the_patient_and_acknowledging_takes_a_read_back(rounds_server):
    base = rounds_server.base
    nurse, doctor = make_driver(1024, 768), make_driver(768, 1024)
    try:
        sign_in(nurse, base, "wang.fang")          # her ward page
        sign_in(doctor, base, "li.ming")
        doctor.get(base + "/groups")
        WebDriverWait(doctor, 15).until(EC.element_to_be_clickable((By.XPATH, "//a[contains(., 'MRN10001')]"))).click()
        WebDriverWait(doctor, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat.live")))

        send_hl7(rounds_server, "oru_r01_critical_k.hl7")
        # Live: the panel appears on the page she is on, saying whose value it is.
        WebDriverWait(nurse, 20).until(EC.text_to_be_present_in_element((By.ID, "urgent-alerts"), "6.9"))
        # And after a page change, from the server, with everything needed to know whose it is.
        nurse.get(base + "/groups")
        text = panel_text(nurse)
        for needle in ("王建国", "12", "肺癌中心", "MRN10001", "Potassium 6.9 mmol/L", "危急偏高", "3.5-5.3", "刚刚"):
            assert needle in text, (needle, text)
        assert "HH" not in text and "UTC" not in text
        panel = nurse.find_element(By.ID, "urgent-alerts")
        assert nurse.execute_script("return getComputedStyle(arguments[0]).position", panel) == "static"
        assert not panel.find_elements(By.CSS_SELECTOR, "button, form, input")
        if SHOTS:
            nurse.save_screenshot(os.path.join(SHOTS, "urgent-panel-ipad.png"))

        # The link opens the alert itself; the read-back starts empty and is required.
        panel.find_element(By.CSS_SELECTOR, ".urgent-open").click()
        WebDriverWait(nurse, 15).until(EC.presence_of_element_located((By.ID, "acknowledge-form")))
        read_back = nurse.find_element(By.ID, "read-back")
        assert read_back.get_attribute("value") == "" and not read_back.get_attribute("placeholder")
        alert_id = nurse.current_url.rstrip("/").split("/")[-1].split("?")[0]
        nurse.find_element(By.CSS_SELECTOR, "#acknowledge-form button[type=submit]").click()   # empty: the browser refuses
        assert alert_status(rounds_server, alert_id) == "open"
        nurse.find_element(By.ID, "read-back").send_keys("收到")
        nurse.find_element(By.CSS_SELECTOR, "#acknowledge-form button[type=submit]").click()
        WebDriverWait(nurse, 15).until(EC.presence_of_element_located((By.ID, "page-error")))
        assert "不符" in nurse.find_element(By.ID, "page-error").text
        assert alert_status(rounds_server, alert_id) == "open"
        if SHOTS:
            nurse.save_screenshot(os.path.join(SHOTS, "alert-read-back-ipad.png"))
        nurse.find_element(By.ID, "read-back").send_keys("血钾 6.9")
        nurse.find_element(By.CSS_SELECTOR, "#acknowledge-form button[type=submit]").click()
        WebDriverWait(nurse, 15).until(EC.presence_of_element_located((By.ID, "alert-acknowledged")))
        assert "血钾 6.9" in nurse.find_element(By.ID, "alert-acknowledged").text
        assert alert_status(rounds_server, alert_id) == "acknowledged"

        # Green for everyone: the doctor's open group page redraws the card, and his panel empties.
        WebDriverWait(doctor, 20).until(EC.text_to_be_present_in_element((By.ID, "messages"), "危急值已确认"))
        card = doctor.find_element(By.XPATH, "//div[contains(@class,'bot-card')][contains(., '危急值已确认')]")
        assert "sev-success" in card.get_attribute("class") and "王芳" in card.text
        WebDriverWait(doctor, 20).until(lambda d: d.find_element(By.ID, "urgent-alerts").get_attribute("data-count") == "0")
    finally:
        nurse.quit()
        doctor.quit()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "%dx%d" % s)
def test_six_open_alerts_are_all_reachable_and_taps_on_the_panel_acknowledge_nothing(rounds_server, size):
    acknowledge_all(rounds_server)
    alerts = [report(rounds_server, value) for value in ("6.1", "6.2", "6.3", "6.4", "6.5", "6.6")]
    driver = make_driver(*size)
    try:
        sign_in(driver, rounds_server.base, "wang.fang")
        panel = driver.find_element(By.ID, "urgent-alerts")
        assert panel.get_attribute("data-count") == "6"
        links = panel.find_elements(By.CSS_SELECTOR, ".urgent-open")
        assert len(links) == 6
        # Newest first, one entry per alert, all reachable: each can be scrolled to and is not covered.
        hrefs = [link.get_attribute("href").split("/alerts/")[1] for link in links]
        assert hrefs == [a["id"] for a in reversed(alerts)]
        for index in range(6):
            link = driver.find_elements(By.CSS_SELECTOR, "#urgent-alerts .urgent-open")[index]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
            assert link.is_displayed()
            box = link.rect
            assert box["height"] >= 44 and box["width"] >= 44, box
            hit = driver.execute_script(
                "var r = arguments[0].getBoundingClientRect();"
                "var e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                "return arguments[0] === e || arguments[0].contains(e);", link)
            assert hit
        # The panel stays within the screen's upper part: the page below is still reachable.
        assert driver.find_element(By.ID, "urgent-alerts").rect["height"] <= size[1] * 0.6
        # Taps anywhere on the panel except a link open nothing and acknowledge nothing.
        driver.execute_script("window.scrollTo(0, 0)")
        for index in range(3):
            item = driver.find_elements(By.CSS_SELECTOR, "#urgent-alerts .urgent-result")[index]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", item)
            ActionChains(driver).move_to_element(item).click().perform()
        assert "/alerts/" not in driver.current_url
        assert all(alert_status(rounds_server, a["id"]) == "open" for a in alerts)
        if SHOTS and size == (1024, 768):
            driver.save_screenshot(os.path.join(SHOTS, "urgent-six-ipad.png"))
    finally:
        driver.quit()
        acknowledge_all(rounds_server)


def test_replay_of_an_alerted_result_asks_first_and_raises_nothing_new(rounds_server):
    base = rounds_server.base
    send_hl7(rounds_server, "oru_r01_critical_k.hl7")   # already sent above: a duplicate, or the first time
    admin_api = Session(base, "admin")
    before = len(admin_api.get("/api/v1/alerts"))
    message = [m for m in admin_api.get("/api/v1/hl7/messages?type=ORU") if m["status"] == "accepted"][0]
    driver = make_driver(1024, 768)
    try:
        sign_in(driver, base, "admin")
        driver.get(base + "/integration/messages/" + message["id"])
        driver.find_element(By.ID, "replay").click()
        WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.ID, "replay-confirm")))
        assert "已提醒过的危急值不会再次提醒" in driver.find_element(By.ID, "replay-effects").text
        assert "6.9" in driver.find_element(By.ID, "replay-alerted").text
        driver.find_element(By.ID, "replay-confirm").click()
        WebDriverWait(driver, 15).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "已重新处理"))
        import time
        time.sleep(2)   # the dispatcher has run the replayed message's events
        assert len(admin_api.get("/api/v1/alerts")) == before
    finally:
        driver.quit()


def test_the_escalation_card_opens_exactly_its_own_alert(rounds_server):
    """Two open values of one patient, both escalated after a minute (the ward's ladder set to
    one minute): each escalation card opens its own alert, and acknowledging sodium leaves
    potassium open."""
    base = rounds_server.base
    acknowledge_all(rounds_server)
    head = Session(base, "zhang.li")
    group = [g for g in head.get("/api/v1/groups") if "MRN10001" in g["name"]][0]
    status, _ = head.put("/api/v1/wards/%s/escalation-ladder" % group["wardId"],
                         {"steps": [{"afterMinutes": 1, "targets": ["ward_doctors", "head_nurse"]}]})
    assert status == 200
    potassium = report(rounds_server, "7.1")
    sodium = report(rounds_server, "108", test="血钠", code="2951-2")
    doctor = make_driver(1024, 768)
    try:
        sign_in(doctor, base, "li.ming")
        doctor.get(base + "/groups/" + group["id"])
        WebDriverWait(doctor, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat.live")))
        WebDriverWait(doctor, 120).until(lambda d: len(d.find_elements(
            By.XPATH, "//div[contains(@class,'bot-card')][contains(., '已升级')]")) >= 2)
        card = doctor.find_element(By.XPATH, "//div[contains(@class,'bot-card')][contains(., '已升级')][contains(., '血钠 108')]")
        assert "王建国" in card.text and "MRN10001" in card.text
        card.find_element(By.XPATH, ".//a[contains(., '查看并复述确认')]").click()
        WebDriverWait(doctor, 15).until(EC.presence_of_element_located((By.ID, "acknowledge-form")))
        assert "血钠 108" in doctor.find_element(By.ID, "alert-result").text
        doctor.find_element(By.ID, "read-back").send_keys("血钠 108")
        doctor.find_element(By.CSS_SELECTOR, "#acknowledge-form button[type=submit]").click()
        WebDriverWait(doctor, 15).until(EC.presence_of_element_located((By.ID, "alert-acknowledged")))
        assert alert_status(rounds_server, sodium["id"]) == "acknowledged"
        assert alert_status(rounds_server, potassium["id"]) == "open"
    finally:
        doctor.quit()
        acknowledge_all(rounds_server)
