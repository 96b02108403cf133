"""An MLLP server made with the `hl7` PyPI package (an independent HL7 implementation), for the
interoperability tests: what Rounds sends must be readable by it."""
import asyncio
import threading

from hl7.mllp import start_hl7_server


class PythonHL7Server:
    """An MLLP server made with the `hl7` package, in its own thread and event loop. It
    answers with `Message.create_ack`, using the scripted codes first, then AA."""

    def __init__(self, codes=()):
        self.codes = list(codes)
        self.received = []
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def handle(reader, writer):
            try:
                while not writer.is_closing():
                    message = await reader.readmessage()
                    self.received.append(message)
                    code = self.codes.pop(0) if self.codes else "AA"
                    writer.writemessage(message.create_ack(ack_code=code))
                    await writer.drain()
            except asyncio.IncompleteReadError:
                pass
            finally:
                writer.close()

        async def main():
            self.server = await start_hl7_server(handle, "127.0.0.1", 0, encoding="utf-8")
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.server.serve_forever()

        try:
            self.loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
