"""A customer's web page on an origin of its own, for the browser tests: a small threaded HTTP
server on 127.0.0.1 that answers every path with a page loading embedded.js from Tether."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme CRM: Integrations</title>
<style>
  body {{ margin: 0; font: 15px/1.5 system-ui, sans-serif; color: #1e293b; background: #f1f5f9; }}
  nav {{ display: flex; gap: 24px; align-items: center; padding: 14px 28px; background: #0f172a;
        color: #e2e8f0; }}
  nav b {{ color: #fff; font-size: 17px; }}
  main {{ max-width: 880px; margin: 32px auto; padding: 0 20px; }}
  .card {{ background: #fff; border: 1px solid #e2e8f0; border-radius: 12px; padding: 24px; }}
  .row {{ display: flex; justify-content: space-between; padding: 12px 0;
         border-top: 1px solid #f1f5f9; }}
  button {{ font: inherit; padding: 8px 14px; border-radius: 8px; border: 1px solid #cbd5e1;
           background: #fff; }}
</style>
<script src="{tether}/sdk/embedded.js"></script>
</head><body>
<nav><b>Acme CRM</b><span>Contacts</span><span>Deals</span><span>Settings</span></nav>
<main><div class="card">
  <h1>Integrations</h1>
  <p>Connect the tools your team already uses.</p>
  <div class="row"><span>Billing sync</span><button id="connect">Connect apps</button></div>
  <div class="row"><span>Support tickets</span><button>Configure</button></div>
</div></main>
<script>
  window.results = [];
  window.record = function (result) {{ window.results.push(result); }};
</script>
</body></html>
"""


@dataclass
class Host:
    url: str  # also the page's origin

    @property
    def origin(self) -> str:
        return self.url


@contextlib.contextmanager
def run_host(tether_url: str) -> Iterator[Host]:
    body = PAGE.format(tether=tether_url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Host(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
