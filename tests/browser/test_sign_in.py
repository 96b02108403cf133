"""A nurse signs in on an iPad-sized screen and sees her ward's patients."""
import os

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

SHOTS = os.environ.get("ROUNDS_SCREENSHOTS")


def sign_in(browser, base, username, password="rounds-demo", expect_success=True):
    browser.get(base + "/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login-submit").click()
    if expect_success:
        # Wait for the signed-in page: navigating on before the login answer arrives would
        # cancel it (and the next page would be the login form again).
        WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "me-name")))


def test_nurse_sees_her_wards_patients(server, browser):
    sign_in(browser, server, "wang.fang")
    rows = WebDriverWait(browser, 15).until(EC.presence_of_all_elements_located((By.CSS_SELECTOR, "tr.patient-row")))
    assert len(rows) == 8
    assert "肺癌中心" in browser.page_source
    assert browser.find_element(By.ID, "me-name").text == "王芳"
    # Only her ward: the ICU and the other hospital's wards are not listed.
    assert "ICU" not in browser.find_element(By.TAG_NAME, "main").text
    beds = [r.find_element(By.CSS_SELECTOR, "td.bed").text for r in rows]
    assert beds == [str(n) for n in range(1, 9)]
    if SHOTS:
        browser.save_screenshot(os.path.join(SHOTS, "nurse-home-ipad.png"))

    # Opening a patient shows the record.
    rows[0].find_element(By.CSS_SELECTOR, "a.patient-name").click()
    name = WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "patient-name")))
    assert name.text


def test_wrong_password_is_refused_with_a_message(server, browser):
    sign_in(browser, server, "li.ming", "not-the-password", expect_success=False)
    error = WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "page-error")))
    assert "用户名或密码错误" in error.text
    assert browser.current_url.endswith("/login")


def test_language_switch_to_english(server, browser):
    sign_in(browser, server, "zhang.li")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr.patient-row")))
    browser.find_element(By.ID, "switch-locale").click()
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "My wards and patients"))
    browser.find_element(By.ID, "logout").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "login-form")))
