"""A doctor dictates a ward-round note at the bedside on an iPad (Chromium's fake microphone
plays a recording espeak-ng made): records, pauses, resumes, stops; the upload is transcribed by
the hospital's recogniser (a local fake speaking the OpenAI-style protocol), sectioned; she edits
the plan, signs, and the card appears in the patient's group (issue 20)."""
import os
import subprocess
import sys
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import chromium_paths
from rounds_process import ROOT, Rounds, Session, patient_on_ward
from test_sign_in import sign_in

SHOTS = os.environ.get("ROUNDS_SCREENSHOTS")
DICTATION = "患者今日诉咳嗽减轻，查体体温三十六度八，双肺呼吸音粗，诊断社区获得性肺炎，计划继续头孢曲松抗感染"


@pytest.fixture(scope="module")
def world():
    import shutil
    if not shutil.which("espeak-ng"):
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is needed for the dictation test")
        pytest.skip("espeak-ng is needed for the dictation test (apt install espeak-ng)")
    workdir = tempfile.mkdtemp(prefix="rounds-dictation-")
    wav = os.path.join(workdir, "dictation.wav")
    subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "120", "-w", wav,
                    "huan4 zhe3 jin1 tian1 ke2 sou4 jian3 qing1 ti3 wen1 san1 shi2 liu4 du4 ba1"], check=True)
    port_file = os.path.join(workdir, "asr.port")
    asr = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tools", "asr_server.py"), "--engine", "fake", "--port", "0",
                            "--port-file", port_file, "--log", os.path.join(workdir, "asr.jsonl"), "--fake-text", DICTATION],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while not os.path.exists(port_file) and time.time() < deadline:
        time.sleep(0.1)
    server = Rounds().start()  # its own server: the notes and cards stay out of the other tests' counts
    it = Session(server.base, "admin")
    hospital, patient = patient_on_ward(Session(server.base, "li.ming"), "HK01", "LUNG")
    status, _ = it.put(f"/api/v1/hospitals/{hospital['id']}/round-note-settings",
                       {"asrURL": f"http://127.0.0.1:{open(port_file).read().strip()}", "asrLanguage": "zh"})
    assert status == 200
    try:
        yield {"server": server, "patient": patient, "wav": wav, "log": os.path.join(workdir, "asr.jsonl")}
    finally:
        server.remove()
        asr.terminate()


def ipad_with_microphone(wav, width=1024, height=768):
    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    if browser:
        options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}",
                "--lang=zh-CN", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def shot(driver, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, name))


def test_dictate_check_edit_sign_and_the_group_sees_it(world):
    base, patient = world["server"].base, world["patient"]
    driver = ipad_with_microphone(world["wav"])
    try:
        wait = WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,))
        sign_in(driver, base, "li.ming")
        driver.get(f"{base}/patients/{patient['id']}")
        driver.find_element(By.ID, "patient-round-notes").click()
        wait.until(EC.element_to_be_clickable((By.ID, "record-start"))).click()
        wait.until(EC.visibility_of_element_located((By.ID, "record-pause")))
        time.sleep(2)
        driver.find_element(By.ID, "record-pause").click()
        assert "已暂停" in driver.find_element(By.ID, "record-status").text
        driver.find_element(By.ID, "record-resume").click()
        time.sleep(2)
        shot(driver, "round-note-recording-1024x768.png")
        for button in driver.find_elements(By.CSS_SELECTOR, "#recorder button:not([hidden])"):
            assert button.size["height"] >= 44 and button.size["width"] >= 44
        driver.find_element(By.ID, "record-stop").click()
        # Uploaded, transcribed, sectioned: the editor opens on the new note.
        wait.until(EC.presence_of_element_located((By.ID, "note-editor")))
        assert "咳嗽减轻" in driver.find_element(By.ID, "transcript-text").text
        assert driver.find_element(By.ID, "section-examination").get_attribute("value").startswith("体温36.8℃")
        assert driver.find_element(By.ID, "section-diagnosis").get_attribute("value") == "社区获得性肺炎。"
        assert "体温 36.8℃" in driver.find_element(By.ID, "findings").text
        shot(driver, "round-note-draft-1024x768.png")
        plan = driver.find_element(By.ID, "section-plan")
        plan.clear()
        plan.send_keys("继续头孢曲松抗感染，3天后复查血常规。")
        driver.find_element(By.ID, "sign-note").click()
        driver.switch_to.alert.accept()
        wait.until(EC.presence_of_element_located((By.ID, "version-1")))
        assert "3天后复查血常规" in driver.find_element(By.ID, "version-1").text
        assert "已签名" in driver.find_element(By.ID, "note-status").text
        shot(driver, "round-note-signed-1024x768.png")
        # The recording reached the recogniser as the browser recorded it.
        import json
        asked = [json.loads(line) for line in open(world["log"])][-1]
        assert asked["type"].startswith("audio/") and asked["size"] > 1000 and asked["language"] == "zh"

        # The card in the patient's group, with a button back to the note.
        driver.get(f"{base}/patients/{patient['id']}")
        driver.find_element(By.ID, "patient-group").click()
        wait.until(lambda d: "查房记录已签名" in d.find_element(By.TAG_NAME, "body").text)
        link = driver.find_element(By.LINK_TEXT, "查看查房记录")
        assert "/round-notes/" in link.get_attribute("href")
        shot(driver, "round-note-card-1024x768.png")

        # The head nurse sees the ward's notes of the day; portrait iPad.
        driver.delete_all_cookies()
        driver.set_window_size(768, 1024)
        sign_in(driver, base, "zhang.li")
        driver.get(f"{base}/")
        driver.find_element(By.LINK_TEXT, "当日查房记录").click()
        wait.until(EC.presence_of_element_located((By.ID, "ward-notes")))
        assert patient["name"] in driver.find_element(By.ID, "ward-notes").text
        shot(driver, "round-notes-ward-768x1024.png")
    finally:
        driver.quit()


def test_a_recording_made_offline_is_uploaded_once_the_network_returns(world):
    base, patient = world["server"].base, world["patient"]
    driver = ipad_with_microphone(world["wav"], 768, 1024)
    try:
        wait = WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,))
        sign_in(driver, base, "li.ming")
        driver.get(f"{base}/patients/{patient['id']}/round-notes")
        before = len(driver.find_elements(By.CSS_SELECTOR, "#note-list li"))
        wait.until(EC.element_to_be_clickable((By.ID, "record-start"))).click()
        wait.until(EC.visibility_of_element_located((By.ID, "record-stop")))
        time.sleep(2)
        driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        driver.find_element(By.ID, "record-stop").click()
        wait.until(lambda d: "网络已断开" in d.find_element(By.ID, "record-status").text)
        shot(driver, "round-note-offline-768x1024.png")
        assert driver.execute_async_script("""
            var done = arguments[0];
            var open = indexedDB.open('rounds-recordings', 1);
            open.onsuccess = function () {
              var count = open.result.transaction('pending').objectStore('pending').count();
              count.onsuccess = function () { done(count.result); };
            };""") == 1
        driver.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
        # Sent when the network returns, once: the new note opens.
        wait.until(EC.presence_of_element_located((By.ID, "note-editor")))
        driver.get(f"{base}/patients/{patient['id']}/round-notes")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#note-list li")) == before + 1
    finally:
        driver.quit()
