"""The app under a real HTTP server on 127.0.0.1, in a background thread, for browser tests.

    with LiveServer(app) as server:
        page.goto(server.url + "/login")
"""
from __future__ import annotations

import threading

from werkzeug.serving import make_server

HOST = "127.0.0.1"


class LiveServer:
    def __init__(self, app):
        self._server = make_server(HOST, 0, app, threaded=True)
        self.port: int = self._server.server_port
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"live-server-{self.port}", daemon=True)

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
