#!/usr/bin/env python3
"""The baseline peer of `scripts/bench-hl7`: the Python `hl7` package's asyncio MLLP server,
parsing each message and committing it to SQLite (WAL, synchronous FULL: one fsync per message,
no mapping) before its ACK, as a 20-line script on that package would.

    python3 scripts/bench_hl7_baseline.py PORT DATABASE
"""
import asyncio
import sqlite3
import sys

import hl7
from hl7.mllp import start_hl7_server


async def main(port, path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, control_id TEXT, type TEXT, raw TEXT)")

    async def handle(reader, writer):
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                db.execute("INSERT INTO messages (control_id, type, raw) VALUES (?, ?, ?)",
                           (str(message.segment("MSH")[10]), str(message.segment("MSH")[9]), str(message)))
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async with await start_hl7_server(handle, host="127.0.0.1", port=port, encoding="utf-8") as server:
        print("ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
