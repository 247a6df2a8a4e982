"""A TCP proxy for tests: put it between a client and a real server, then break the network.

It forwards bytes and knows no protocol, so it serves Redis and PostgreSQL alike::

    with TcpProxy("127.0.0.1", 6379) as proxy:
        client = redis.Redis(port=proxy.port)
        proxy.cut()      # every connection closed, new ones refused (the server is "down")
        proxy.restore()  # the same port accepts again
        proxy.stall()    # connections stay open but no byte moves (a silent partition)
        proxy.restore()  # bytes flow again, the held ones first

Each connection has two pump threads, one per direction; a cut shuts the sockets
down, which wakes the pumps blocked in ``recv``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from types import TracebackType

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forward ``host:port`` (a free port on 127.0.0.1 by default) to ``target``."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        #: Connections accepted so far: a test can see that a client reconnected.
        self.accepted = 0
        self._listen()

    # -- control -----------------------------------------------------------------------

    def cut(self) -> None:
        """Close every connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = list(self._sockets)
            self._sockets.clear()
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would
            # leave the kernel's listening socket alive, holding the port.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in doomed:
            _shut(sock)
        self._flowing.set()  # let stalled pumps see their sockets are gone

    def stall(self) -> None:
        """Keep the connections open but forward nothing until :meth:`restore`."""
        self._flowing.clear()

    def restore(self) -> None:
        """Accept and forward again, on the same port."""
        self._flowing.set()
        with self._lock:
            listening = self._listener is not None
        if not listening and not self._closed:
            self._listen()

    def close(self) -> None:
        """Stop for good."""
        self._closed = True
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Reusing the port after a cut: the accepted connections it closed linger
        # in TIME_WAIT, which without SO_REUSEADDR would block the bind.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The old listener may still be closing in its accept thread right after a
        # cut: retry the bind briefly instead of failing a quick cut-and-restore.
        for attempt in range(100):
            try:
                listener.bind((self.host, self.port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 99:
                    listener.close()
                    raise
                time.sleep(0.02)
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _shut(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _shut(client)
                    _shut(upstream)
                    return
                self._sockets.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                with self._lock:
                    alive = src in self._sockets
                if not alive:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            _shut(src)
            _shut(dst)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
