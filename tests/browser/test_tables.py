"""Tables on an iPad-sized screen: the head nurse makes a base and a table, adds fields of several
kinds (a choice, numbers, a date, a patient by MRN and a BMI formula), enters and edits records in
the grid, sees a colleague's edit arrive live in her other open grid, filters and groups, and
imports a CSV with two bad rows whose report names them."""
import os
import tempfile
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from rounds_process import Rounds, send_hl7
from test_sign_in import SHOTS, sign_in


@pytest.fixture(scope="module")
def rounds_server():
    rounds = Rounds().start()
    send_hl7(rounds, "adt_a01_utf8.hl7")  # 王建国, MRN10001, 肺癌中心 bed 12
    yield rounds
    rounds.remove()


def until(browser, condition, timeout=15):
    """Waits through page loads (an element of the page before is stale, not a failure)."""
    return WebDriverWait(browser, timeout, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def wait(browser, by, value, timeout=15):
    return WebDriverWait(browser, timeout).until(EC.presence_of_element_located((by, value)))


def add_field(browser, name, kind, choices=None, formula=None):
    wait(browser, By.ID, "field-name").send_keys(name)
    Select(browser.find_element(By.ID, "field-kind")).select_by_value(kind)
    if choices:
        browser.find_element(By.ID, "field-choices").send_keys(choices)
    if formula:
        browser.find_element(By.ID, "field-formula").send_keys(formula)
    button = browser.find_element(By.ID, "add-field")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    until(browser, lambda b: name in b.find_element(By.CSS_SELECTOR, "#grid thead").text)


def add_record(browser, values):
    form = wait(browser, By.ID, "new-record")
    for name, value in values.items():
        field = form.find_element(By.CSS_SELECTOR, f"[data-name='{name}']")
        if field.tag_name == "select":
            Select(field).select_by_visible_text(value)
        else:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
            field.send_keys(value)
    button = browser.find_element(By.ID, "add-record")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    before = len(browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
    button.click()
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == before + 1)


def column(browser, name):
    headers = [th.text.split("\n")[0] for th in browser.find_elements(By.CSS_SELECTOR, "#grid thead th")]
    return headers.index(name)


def cell(browser, row_name, column_name):
    index = column(browser, column_name)
    for row in browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells[1].text == row_name:
            return cells[index]
    raise AssertionError(f"no row {row_name}")


def test_a_table_from_nothing_to_an_import_report(rounds_server, browser, second_browser):
    base = rounds_server.base
    sign_in(browser, base, "zhang.li")
    browser.get(base + "/tables")
    wait(browser, By.ID, "base-name").send_keys("护理质控")
    browser.find_element(By.ID, "create-base").click()
    wait(browser, By.ID, "table-name").send_keys("压力性损伤随访")
    browser.find_element(By.ID, "create-table").click()
    wait(browser, By.ID, "grid")
    grid_url = browser.current_url

    add_field(browser, "风险等级", "single_select", choices="低, 中, 高")
    add_field(browser, "患者", "patient")
    add_field(browser, "评估日期", "date")
    add_field(browser, "体重", "number")
    add_field(browser, "身高", "number")
    add_field(browser, "BMI", "formula", formula="ROUND(BMI({体重}, {身高}), 1)")
    # A patient field makes it patient data (audited like the rest), and the page says so.
    assert "含患者信息" in browser.find_element(By.TAG_NAME, "h1").text

    add_record(browser, {"名称": "12床评估", "风险等级": "高", "患者": "MRN10001", "体重": "70", "身高": "175"})
    add_record(browser, {"名称": "15床评估", "风险等级": "低", "体重": "50", "身高": "160"})
    # Cells in words: the patient's name and where they lie now, the BMI computed.
    patient = cell(browser, "12床评估", "患者").text
    assert "王建国" in patient and "12床" in patient and "MRN" not in patient
    assert cell(browser, "12床评估", "BMI").text == "22.9"
    assert cell(browser, "15床评估", "BMI").text == "19.5"

    # Her second grid (another iPad) stays open on the same table.
    sign_in(second_browser, base, "zhang.li")
    second_browser.get(grid_url)
    wait(second_browser, By.ID, "grid")
    second_browser.execute_script("window.__notReloaded = true;")
    WebDriverWait(second_browser, 10).until(lambda b: b.execute_script(
        "return window.performance && document.readyState === 'complete'"))
    time.sleep(1.5)  # the socket opens and watches

    # Edit in place: the weight, then the BMI follows.
    weight = cell(browser, "12床评估", "体重")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", weight)
    weight.click()
    editor = weight.find_element(By.TAG_NAME, "input")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys("72", Keys.ENTER)
    until(browser, lambda b: cell(b, "12床评估", "BMI").text == "23.5")
    assert cell(browser, "12床评估", "体重").text == "72"
    # …and arrives in the other grid without a reload.
    until(second_browser, lambda b: cell(b, "12床评估", "BMI").text == "23.5")
    assert cell(second_browser, "12床评估", "体重").text == "72"
    assert second_browser.execute_script("return window.__notReloaded === true")
    if SHOTS:
        second_browser.save_screenshot(os.path.join(SHOTS, "tables-live-ipad.png"))

    # Filter: only the high-risk record.
    Select(browser.find_element(By.ID, "filter-field")).select_by_visible_text("风险等级")
    Select(browser.find_element(By.ID, "filter-op")).select_by_value("is")
    browser.find_element(By.ID, "filter-value").send_keys("高")
    browser.find_element(By.ID, "apply-query").click()
    until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == 1)
    assert cell(browser, "12床评估", "风险等级").text == "高"

    # Group by risk, unfiltered: a count per level.
    browser.get(grid_url)
    Select(wait(browser, By.ID, "group-field")).select_by_visible_text("风险等级")
    browser.find_element(By.ID, "apply-query").click()
    groups = wait(browser, By.ID, "groups")
    labels = {li.find_element(By.CLASS_NAME, "group-label").text: li.find_element(By.CLASS_NAME, "badge").text
              for li in groups.find_elements(By.TAG_NAME, "li")}
    assert set(labels) == {"高", "低"} and all(v.startswith("1") for v in labels.values())
    if SHOTS:
        browser.save_screenshot(os.path.join(SHOTS, "tables-grid-ipad.png"))

    # Import: four rows, two of them bad (a weight that is not a number, a date that does not exist).
    browser.get(grid_url)
    path = os.path.join(tempfile.mkdtemp(), "随访.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("名称,风险等级,体重,身高,评估日期\n"
                "20床评估,中,65,170,2026-12-01\n"
                "21床评估,低,重约六十,165,2026-12-01\n"
                "22床评估,高,80,180,2026-13-45\n"
                "23床评估,中,55,158,2026-12-02\n")
    wait(browser, By.ID, "import-file").send_keys(path)
    Select(browser.find_element(By.ID, "import-mode")).select_by_value("skip_bad_rows")
    browser.find_element(By.ID, "import-go").click()
    report = WebDriverWait(browser, 15).until(EC.visibility_of_element_located((By.ID, "import-report")))
    assert browser.find_element(By.ID, "import-summary").text == "共 4 行，导入 2 行"
    refused = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#import-refused li")]
    assert len(refused) == 2
    # Each in words a nurse reads: the line, the field, why.
    assert refused[0] == "第 3 行 · 体重：“重约六十”不是数字"
    assert refused[1].startswith("第 4 行 · 评估日期：“2026-13-45”不是有效日期")
    if SHOTS:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", report)
        browser.save_screenshot(os.path.join(SHOTS, "tables-import-ipad.png"))
    browser.get(grid_url)
    names = [row.find_elements(By.TAG_NAME, "td")[1].text for row in browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")]
    assert sorted(names) == ["12床评估", "15床评估", "20床评估", "23床评估"]


    # The record's own page: its cells, every change (the weight 70 → 72), and a comment.
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr") if r.find_elements(By.TAG_NAME, "td")[1].text == "12床评估")
    row.find_element(By.CSS_SELECTOR, "a.record-link").click()
    history = wait(browser, By.ID, "record-history").text
    assert "体重：70 → 72" in history and "张丽" in history
    assert "王建国" in browser.find_element(By.ID, "record-cells").text
    wait(browser, By.ID, "comment-text").send_keys("明早复查体重，注意骶尾部皮肤")
    browser.find_element(By.ID, "comment-send").click()
    until(browser, lambda b: "明早复查体重" in b.find_element(By.ID, "comment-list").text)
    if SHOTS:
        browser.save_screenshot(os.path.join(SHOTS, "tables-record-ipad.png"))
