"""proxy.py plugin that lets tests prove a request went through the forward proxy.

Loaded by `ForwardProxy` with `--plugins tests.support.proxy_plugin.MarkViaProxy`;
it runs inside the proxy.py process, not in the test process.
"""

from __future__ import annotations

import os

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin

MARKER_HEADER = "X-Test-Forward-Proxy"
JOURNAL_ENV = "TEST_FORWARD_PROXY_JOURNAL"


class MarkViaProxy(HttpProxyBasePlugin):
    """Marks every forwarded plain-http request and journals every request.

    - Adds `X-Test-Forward-Proxy: <proxy port>` to each request sent upstream,
      so the receiving end can tell it came through this proxy. (proxy.py
      overwrites any `Via` a plugin sets, hence a header of our own.)
    - Adds `Connection: close` upstream: proxy.py sends every later request on
      a kept-alive client connection to the first request's upstream, while
      `requests` shares one pooled proxy connection across all http targets.
      With the upstream closing after each answer, each client connection
      carries one request and can't be misrouted.
    - Appends "METHOD URL" to the file named by $TEST_FORWARD_PROXY_JOURNAL
      (e.g. "POST http://127.0.0.1:5000/hook", "CONNECT example.org:443") for
      each request received, before connecting upstream, so attempts to
      unreachable targets and HTTPS CONNECT tunnels are counted too.
    """

    def before_upstream_connection(self, request: HttpParser) -> HttpParser | None:
        self._journal(request)
        self._journaled = request
        return request

    def handle_client_request(self, request: HttpParser) -> HttpParser | None:
        if request is not getattr(self, "_journaled", None):
            self._journal(request)  # a later request on a kept-alive connection
        if not request.is_https_tunnel:
            request.add_header(MARKER_HEADER.encode(), str(self.flags.port).encode())
            request.add_header(b"Connection", b"close")
        return request

    def _journal(self, request: HttpParser) -> None:
        path = os.environ.get(JOURNAL_ENV)
        if not path:
            return
        method = (request.method or b"").decode("latin-1")
        host = (request.host or b"").decode("latin-1")
        if request.is_https_tunnel:
            target = f"{host}:{request.port}"
        else:
            target = f"http://{host}:{request.port}{(request.path or b'/').decode('latin-1')}"
        # One short O_APPEND write per line keeps concurrent writers from interleaving.
        with open(path, "a", encoding="utf-8") as journal:
            journal.write(f"{method} {target}\n")
