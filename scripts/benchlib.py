"""Helpers shared by the benchmark scripts (scripts/bench-*): percentiles and one MLLP round trip."""
import asyncio

SB, EB, CR = b"\x0b", b"\x1c", b"\r"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def mllp_send(port, payload):
    """Sends one framed message on a new connection and returns the raw acknowledgement."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(SB + payload + EB + CR)
    await writer.drain()
    data = b""
    while EB not in data:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    writer.close()
    return data
