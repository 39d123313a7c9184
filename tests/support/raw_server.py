"""A raw TCP server on 127.0.0.1 for the tests that need a peer no HTTP server library would be: one that
trickles, answers garbage, speaks TLS with a chosen certificate, or only counts connections."""

from __future__ import annotations

import socket
import threading


class RawServer:
    """Accepts connections on a free port of 127.0.0.1, on a thread of its own, and hands each to
    :meth:`serve` (closed after it; an ``OSError`` there, such as the client hanging up, ends that
    connection only). :meth:`close` stops it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                self.serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.sock.close()
