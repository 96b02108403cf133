"""An MDT online (issue 20): the responsible doctor requests it from the patient's page, a
colleague of another department and a guest from a partner hospital (by link and one-time code,
on a phone) give opinions, the doctor signs the report and it appears in the patient's group."""
import os

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import make_driver
from rounds_process import Rounds, Session, patient_on_ward
from test_sign_in import sign_in

SHOTS = os.environ.get("ROUNDS_SCREENSHOTS")


@pytest.fixture(scope="module")
def rounds_server():
    server = Rounds().start()  # its own: cases and cards stay out of the other tests' counts
    yield server
    server.remove()


def shot(driver, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, name))


def test_request_opinions_from_a_colleague_and_a_guest_then_the_signed_report(rounds_server):
    base = rounds_server.base
    _, patient = patient_on_ward(Session(base, "li.ming"), "HK01", "LUNG")
    doctor, colleague, guest = make_driver(1024, 768), make_driver(1024, 768), make_driver(390, 844)
    try:
        wait = WebDriverWait(doctor, 30, ignored_exceptions=(WebDriverException,))
        sign_in(doctor, base, "li.ming")
        doctor.get(f"{base}/patients/{patient['id']}")
        doctor.find_element(By.ID, "patient-mdt").click()
        wait.until(EC.presence_of_element_located((By.ID, "mdt-request")))
        assert patient["name"] in doctor.find_element(By.ID, "mdt-summary").get_attribute("value")
        doctor.find_element(By.ID, "mdt-question").send_keys("右肺上叶腺癌 T2aN1M0：手术还是先行新辅助治疗？")
        experts = Select(doctor.find_element(By.ID, "mdt-experts"))
        experts.select_by_visible_text([o.text for o in experts.options if o.text.startswith("吴强")][0])
        shot(doctor, "mdt-request-1024x768.png")
        doctor.find_element(By.ID, "mdt-submit").click()
        wait.until(EC.presence_of_element_located((By.ID, "guest-form")))
        case_url = doctor.current_url
        doctor.find_element(By.ID, "guest-name").send_keys("陈教授")
        doctor.find_element(By.ID, "guest-institution").send_keys("省肿瘤医院")
        doctor.find_element(By.ID, "guest-department").send_keys("放疗科")
        doctor.find_element(By.ID, "guest-invite").click()
        wait.until(EC.presence_of_element_located((By.ID, "new-invitation")))
        link = doctor.find_element(By.ID, "invitation-link").text
        code = doctor.find_element(By.ID, "invitation-code").text
        assert "/mdt-guest/" in link and len(code) == 6
        shot(doctor, "mdt-invitation-1024x768.png")

        # A colleague of another department: the case is in his inbox.
        sign_in(colleague, base, "wu.qiang")
        colleague.get(f"{base}/mdt")
        WebDriverWait(colleague, 30, ignored_exceptions=(WebDriverException,)).until(EC.presence_of_element_located((By.ID, "mdt-inbox")))
        assert "1" in colleague.find_element(By.ID, "mdt-to-opine").text
        colleague.find_element(By.CSS_SELECTOR, "#mdt-inbox a").click()
        WebDriverWait(colleague, 30, ignored_exceptions=(WebDriverException,)).until(EC.presence_of_element_located((By.ID, "opinion-form")))
        colleague.find_element(By.ID, "op-department").send_keys("胸外科")
        colleague.find_element(By.ID, "op-recommendation").send_keys("建议新辅助化疗联合免疫治疗 2 周期后评估手术")
        colleague.find_element(By.ID, "op-evidence").send_keys("CheckMate 816")
        colleague.find_element(By.ID, "opinion-submit").click()
        WebDriverWait(colleague, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: "CheckMate 816" in d.find_element(By.ID, "opinions").text)

        # The guest, on a phone: the link, the code, this case only.
        guest.get(link)
        WebDriverWait(guest, 30, ignored_exceptions=(WebDriverException,)).until(EC.presence_of_element_located((By.ID, "guest-code")))
        shot(guest, "mdt-guest-code-390x844.png")
        guest.find_element(By.ID, "guest-code").send_keys(code)
        guest.find_element(By.ID, "guest-code-submit").click()
        WebDriverWait(guest, 30, ignored_exceptions=(WebDriverException,)).until(EC.presence_of_element_located((By.ID, "guest-banner")))
        assert patient["name"] in guest.find_element(By.TAG_NAME, "h1").text
        guest.find_element(By.ID, "op-recommendation").send_keys("术后可考虑辅助放疗")
        guest.find_element(By.ID, "opinion-submit").click()
        WebDriverWait(guest, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: "术后可考虑辅助放疗" in d.find_element(By.ID, "opinions").text)
        shot(guest, "mdt-guest-case-390x844.png")
        for el in guest.find_elements(By.CSS_SELECTOR, "button, .button"):
            if el.is_displayed():
                assert el.size["height"] >= 44, el.text

        # The responsible doctor composes the report from the opinions and signs it.
        doctor.get(case_url)
        recommendation = doctor.find_element(By.ID, "report-recommendation-input").get_attribute("value")
        assert "胸外科 吴强：建议新辅助化疗" in recommendation and "放疗科 陈教授（省肿瘤医院）：术后可考虑辅助放疗" in recommendation
        doctor.find_element(By.ID, "report-conclusion").send_keys("T2aN1M0 IIB 期，可切除")
        doctor.find_element(By.ID, "report-sign").click()
        wait.until(EC.presence_of_element_located((By.ID, "report")))
        assert "已出报告" in doctor.find_element(By.ID, "mdt-status").text
        shot(doctor, "mdt-report-1024x768.png")
        doctor.find_element(By.ID, "print-report").click()
        wait.until(lambda d: "T2aN1M0 IIB 期，可切除" in d.find_element(By.TAG_NAME, "body").text)
        shot(doctor, "mdt-print-1024x768.png")

        # The card in the patient's group, with a button to the case.
        doctor.get(f"{base}/patients/{patient['id']}")
        doctor.find_element(By.ID, "patient-group").click()
        wait.until(lambda d: "MDT 报告已签名" in d.find_element(By.TAG_NAME, "body").text)
        assert "/mdt/" in doctor.find_element(By.LINK_TEXT, "查看 MDT 报告").get_attribute("href")
        # The report as PDF, printed by headless Chromium on the server.
        pdf = Session(base, "li.ming").opener.open(case_url + "/report.pdf", timeout=60).read()
        assert pdf.startswith(b"%PDF")
    finally:
        for d in (doctor, colleague, guest):
            d.quit()
