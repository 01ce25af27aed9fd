"""One database connection per thread, all closed together.

Neither sqlite3 nor a psycopg connection may run statements from two threads
at once, and the API serves requests from a thread pool: each thread gets a
connection of its own, made on first use.
"""

from __future__ import annotations

import threading


class PerThread:
    """Connections made by ``connect()`` on first use in each thread."""

    def __init__(self, connect):
        self._connect = connect
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def get(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(conn, "closed", False):
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a sqlite3 connection made in a thread that is gone
                    pass
            self._all.clear()
        self._local = threading.local()
