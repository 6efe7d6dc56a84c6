"""A loopback TCP proxy in front of the MySQL server, for tests of a database that goes away.

Stopping the shared MariaDB server would disturb every other test; cutting the path to it
does the same to the code under test and nothing else. ``cut()`` drops every connection and
refuses new ones (a restart, a fail-over), ``stall()`` keeps the connections open but lets
nothing through (a network black hole), ``restore()`` brings the path back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import URL

CHUNK = 65536


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stalled = threading.Event()
        self.restore()

    def url_for(self, url: URL) -> URL:
        """``url`` with its host and port replaced by this proxy's."""
        return url.set(host="127.0.0.1", port=self.port)

    def restore(self) -> None:
        """Accept and forward connections (again, on the same port)."""
        self._stalled.clear()
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones, as a stopped server does."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stall(self) -> None:
        """Keep connections open (and accept new ones) but forward nothing."""
        self._stalled.set()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut(): the listener is closed
            if self._stalled.is_set():
                self._track(client)  # a black hole: held open, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._track(client, upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                while self._stalled.is_set():  # hold the bytes back until restored or cut
                    if source.fileno() < 0:
                        return
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def proxy_to(url: URL) -> Iterator[TcpProxy]:
    """A proxy to the server of ``url`` for the duration of the block."""
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    try:
        yield proxy
    finally:
        proxy.close()
