"""Interoperability with a real, independent HL7 implementation: the `hl7` PyPI package.

- its `mllp_send` command and its MLLPClient deliver messages to our listener and read our ACKs;
- our sender (`rounds send-hl7`) and our outbound queue deliver to an asyncio MLLP server built
  with that package's `start_hl7_server`.
"""
import os
import shutil
import subprocess
import sys
import time

import hl7
import hl7.client
import pytest

from hl7_peer import PythonHL7Server
from rounds_process import SAMPLES, Rounds, Session, binary

EXPECTED = {
    "adt_a01_utf8.hl7": "AA", "adt_a02_transfer.hl7": "AA", "orm_o01_change.hl7": "AA",
    "oru_r01_critical_k.hl7": "AA", "mdm_t02_pathology_pdf.hl7": "AA",
    "custom_delimiters.hl7": "AE",  # facility SITE is not a hospital of the demo group
}
# The package's own command; its entry point directly when pip put it outside PATH.
MLLP_SEND = [shutil.which("mllp_send")] if shutil.which("mllp_send") else \
    [sys.executable, "-c", "import sys; from hl7.client import mllp_send; sys.exit(mllp_send())"]
ORDER = ["adt_a01_utf8.hl7", "adt_a02_transfer.hl7", "orm_o01_change.hl7", "oru_r01_critical_k.hl7",
         "mdm_t02_pathology_pdf.hl7", "custom_delimiters.hl7"]


@pytest.fixture(scope="module")
def rounds():
    server = Rounds().start()
    yield server
    server.remove()


def read_message(path):
    with open(path, "rb") as f:
        return f.read().replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r").decode("utf-8")


def test_mllp_send_delivers_the_samples_and_reads_our_acks(rounds, tmp_path):
    for name in ORDER:
        path = os.path.join(SAMPLES, name)
        # mllp_send reads MLLP-framed input (its --loose mode only knows the default delimiters).
        framed = tmp_path / (name + ".mllp")
        framed.write_bytes(b"\x0b" + read_message(path).encode("utf-8") + b"\x1c\r")
        out = subprocess.run(MLLP_SEND + ["-f", str(framed), "-p", str(rounds.mllp_port), "127.0.0.1"],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode()
        ack = hl7.parse(out.stdout.decode("utf-8").strip().strip("\x0b\x1c").replace("\n", "\r"))
        sent = hl7.parse(read_message(path))
        assert str(ack.segment("MSH")[9][0][0]) == "ACK"
        assert str(ack.segment("MSA")[1]) == EXPECTED[name], name
        assert str(ack.segment("MSA")[2]) == str(sent.segment("MSH")[10]), name
        if EXPECTED[name] != "AA":
            assert "SITE" in str(ack.segment("ERR")[8])

    # Stored, applied and visible in the message store.
    admin = Session(rounds.base, "admin")
    stored = admin.get("/api/v1/hl7/messages?limit=50")
    by_id = {m["controlId"]: m for m in stored}
    for name in ORDER:
        control_id = str(hl7.parse(read_message(os.path.join(SAMPLES, name))).segment("MSH")[10])
        assert by_id[control_id]["status"] == ("accepted" if EXPECTED[name] == "AA" else "error")
        assert by_id[control_id]["peer"] == "127.0.0.1"


def test_the_python_client_sends_many_messages_on_one_connection(rounds):
    feed = os.path.join(rounds.workdir, "feed.hl7")
    subprocess.run([binary(), "simulate", "--count", "60", "--seed", "11", "--output", feed], check=True, capture_output=True)
    with open(feed, "rb") as f:
        messages = [m.decode("utf-8") for m in f.read().split(b"\n") if m.strip()]
    assert len(messages) == 60
    with hl7.client.MLLPClient("127.0.0.1", rounds.mllp_port) as client:
        for text in messages:
            raw = client.send_message(text)
            ack = hl7.parse(raw.decode("utf-8").strip("\x0b\x1c\r"))
            assert str(ack.segment("MSA")[1]) == "AA", str(ack)
            assert str(ack.segment("MSA")[2]) == str(hl7.parse(text).segment("MSH")[10])
    # The same message again is a duplicate: acknowledged, not applied twice.
    with hl7.client.MLLPClient("127.0.0.1", rounds.mllp_port) as client:
        raw = client.send_message(messages[0])
        assert str(hl7.parse(raw.decode("utf-8").strip("\x0b\x1c\r")).segment("MSA")[1]) == "AA"
    admin = Session(rounds.base, "admin")
    control_id = str(hl7.parse(messages[0]).segment("MSH")[10])
    [record] = [m for m in admin.get("/api/v1/hl7/messages?limit=500") if m["controlId"] == control_id]
    assert record["duplicateCount"] == 1


def test_our_sender_delivers_to_the_python_server(tmp_path):
    peer = PythonHL7Server()
    try:
        files = [os.path.join(SAMPLES, n) for n in ORDER]
        out = subprocess.run([binary(), "send-hl7", "--port", str(peer.port)] + files, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
        lines = out.stdout.decode().strip().splitlines()
        assert [line.split("\t")[2] for line in lines] == ["AA"] * len(files)
        assert [str(m.segment("MSH")[10]) for m in peer.received] == \
               [str(hl7.parse(read_message(f)).segment("MSH")[10]) for f in files]
        # Chinese text and custom delimiters arrive intact.
        assert str(peer.received[0].segment("PID")[5][0][0]) == "王"
        assert str(peer.received[0].segment("PID")[5][0][1]) == "建国"
        assert peer.received[-1].separator == "\r" and str(peer.received[-1].segment("MSH")[1]) == "#"

        # A file with several messages, LF line ends: split and sent one by one.
        both = tmp_path / "two.hl7"
        both.write_text(read_message(files[0]).replace("\r", "\n") + "\n\n" + read_message(files[3]).replace("\r", "\n") + "\n")
        out = subprocess.run([binary(), "send-hl7", "--port", str(peer.port), str(both)], capture_output=True, timeout=60)
        assert out.returncode == 0
        assert len(out.stdout.decode().strip().splitlines()) == 2

        # A rejection makes send-hl7 exit 1 and say so.
        peer.codes = ["AR"]
        out = subprocess.run([binary(), "send-hl7", "--port", str(peer.port), files[0]], capture_output=True, timeout=60)
        assert out.returncode == 1
        assert "\tAR" in out.stdout.decode()
    finally:
        peer.close()


def test_the_outbound_queue_retries_until_the_python_server_accepts(rounds):
    peer = PythonHL7Server(codes=["AE"])
    try:
        # The outbound queue sends patient data where it is told: group administrators only.
        it = Session(rounds.base, "admin")
        text = read_message(os.path.join(SAMPLES, "oru_r01_critical_k.hl7")).replace("MSG00004", "OUTPY1")
        status, row = it.post("/api/v1/hl7/outbound", {"host": "127.0.0.1", "port": peer.port, "message": text})
        assert status == 201 and row["status"] == "pending"
        deadline = time.time() + 30
        while time.time() < deadline:
            current = [m for m in it.get("/api/v1/hl7/outbound") if m["id"] == row["id"]][0]
            if current["status"] != "pending":
                break
            time.sleep(0.3)
        assert current["status"] == "sent", current
        assert current["attempts"] == 2 and current["ackCode"] == "AA"
        # The peer saw the message twice (AE, then AA), exactly as queued.
        assert [str(m.segment("MSH")[10]) for m in peer.received] == ["OUTPY1", "OUTPY1"]
        assert str(peer.received[0].segment("OBX")[5]) == "6.9"
    finally:
        peer.close()
