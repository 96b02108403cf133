"""A critical potassium over MLLP: the nurse's page shows the urgent popup wherever she is;
acknowledging it turns the alert card green for everyone in the patient group."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from rounds_process import Rounds, send_hl7
from test_sign_in import sign_in


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    yield rounds
    rounds.remove()




def test_urgent_popup_and_acknowledgement(rounds_server, browser, second_browser):
    base = rounds_server.base
    send_hl7(rounds_server, "adt_a01_utf8.hl7")
    nurse, doctor = browser, second_browser
    sign_in(nurse, base, "wang.fang")          # stays on her home page
    sign_in(doctor, base, "li.ming")
    doctor.get(base + "/groups")
    WebDriverWait(doctor, 15).until(EC.element_to_be_clickable((By.XPATH, "//a[contains(., 'MRN10001')]"))).click()
    WebDriverWait(doctor, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#chat.live")))

    send_hl7(rounds_server, "oru_r01_critical_k.hl7")
    popup = WebDriverWait(nurse, 20).until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#urgent-alerts .urgent-alert")))
    assert "6.9" in popup.text
    popup.find_element(By.CSS_SELECTOR, "button.urgent-ack").click()
    WebDriverWait(nurse, 15).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#urgent-alerts .urgent-alert")))

    # Green for everyone: the doctor's open group page redraws the card.
    WebDriverWait(doctor, 20).until(EC.text_to_be_present_in_element((By.ID, "messages"), "危急值已确认"))
    card = doctor.find_element(By.XPATH, "//div[contains(@class,'bot-card')][contains(., '危急值已确认')]")
    assert "sev-success" in card.get_attribute("class")
    assert "王芳" in card.text
    # The doctor's page had the popup too (he is the attending); it closes once acknowledged.
    WebDriverWait(doctor, 15).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#urgent-alerts .urgent-alert")))
