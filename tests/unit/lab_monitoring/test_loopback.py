"""Requests to the charm's own service on 127.0.0.1: no proxy, and every answer told apart."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from lab_monitoring import loopback


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_a_service_on_loopback_is_reached_even_with_a_proxy_in_the_hook_environment(
    server, monkeypatch
):
    # Juju's http-proxy setting puts this in a hook's environment; it cannot reach 127.0.0.1.
    monkeypatch.setenv("http_proxy", "http://192.0.2.1:3128")
    monkeypatch.setenv("no_proxy", "")

    assert loopback.get_status(f"http://127.0.0.1:{server}/ready", timeout=5) == 200


def test_an_error_status_is_returned_not_raised(server):
    assert loopback.get_status(f"http://127.0.0.1:{server}/other", timeout=5) == 503


def test_nothing_listening_is_none():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    assert loopback.get_status(f"http://127.0.0.1:{port}/", timeout=2) is None
