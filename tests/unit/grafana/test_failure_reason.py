"""Why grafana-server died, read from what Grafana writes to its journal when it gives up.

There is no Grafana binary on these machines, so the lines below are what Grafana's source
prints in each case (file and function named per case; the comments in src/grafana/service.py give
the lines), formatted the way its logger writes them to a console that is not a terminal
(go-kit logfmt, pkg/infra/log). The preamble is quoted from a real Grafana 10.2.3 journal; the
8.x line from a real one in osism/testbed#1157.
"""

from __future__ import annotations

import pytest
from grafana import service

PREAMBLE = [
    'logger=settings t=2026-02-27T06:53:58.147242854Z level=info msg="Starting Grafana" '
    "version=10.2.3 commit=1e84fede543acc892d2a2515187e545eb047f237 branch=HEAD "
    "compiled=2023-12-18T15:46:07Z",
    'logger=settings t=2026-02-27T06:53:58.147499455Z level=info msg="Config loaded from" '
    "file=/usr/share/grafana/conf/defaults.ini",
    'logger=settings t=2026-02-27T06:53:58.147511711Z level=info msg="Config loaded from" '
    "file=/etc/grafana/grafana.ini",
]


def listen_failure(address: str, why: str) -> str:
    """http_server.go getListener's error for `address` (Go's net.Listen error inside)."""
    host, _, port = address.rpartition(":")
    return f"failed to open listener on address {address}: listen tcp {host}:{port}: bind: {why}"


def grafana_11(error: str) -> list[str]:
    """10.x-11.x: pkg/server/server.go Run logs the background service, main prints the error."""
    return [
        *PREAMBLE,
        'logger=server t=2026-11-25T10:00:01.5Z level=error msg="Stopped background service" '
        f'service=*api.HTTPServer reason="{error}"',
        f"Error: ✗ *api.HTTPServer run error: {error}",
    ]


def grafana_13(error: str) -> list[str]:
    """12.x-13.x: the dskit modules listener logs the module, main prints its failure."""
    return [
        *PREAMBLE,
        'logger=modules t=2026-11-25T10:00:01.5Z level=error msg="Module failed" '
        f'module=*api.HTTPServer err="{error}"',
        f"Error: ✗ {error}",
    ]


@pytest.mark.parametrize("log", [grafana_11, grafana_13], ids=["10.x-11.x", "12.x-13.x"])
@pytest.mark.parametrize(
    ("address", "why"),
    [
        (":3000", "address already in use"),
        (":80", "permission denied"),
        ("0.0.0.0:443", "permission denied"),
        ("[::1]:3000", "address already in use"),
    ],
)
def test_a_port_grafana_cannot_bind_is_named_with_the_cause(log, address, why):
    reason = service.failure_reason(log(listen_failure(address, why)))

    assert reason == f"grafana cannot listen on {address}: {why}"


def test_grafana_8_journal_line_is_read_too():
    line = (
        "logger=server t=2022-04-04T07:46:34.59+0000 "
        'lvl=eror msg="Server shutdown" '  # codespell:ignore eror
        'error="*api.HTTPServer run error: failed to open listener on address 0.0.0.0:3000: '
        'listen tcp 0.0.0.0:3000: bind: address already in use"'
    )

    assert service.failure_reason([line]) == (
        "grafana cannot listen on 0.0.0.0:3000: address already in use"
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            "open /etc/grafana/admin-password: permission denied",
            "grafana cannot read /etc/grafana/admin-password "
            "(security.admin_password in grafana.ini): permission denied",
        ),
        (
            "stat /etc/grafana/admin-password: no such file or directory",
            "grafana cannot read /etc/grafana/admin-password "
            "(security.admin_password in grafana.ini): no such file or directory",
        ),
    ],
)
def test_a_password_file_grafana_cannot_read_names_the_file_and_the_key(error, reason):
    # pkg/setting/expanders.go expandConfig, returned before logging is set up: only main's
    # line is in the journal.
    log = [
        f"Error: ✗ got error while expanding security.admin_password with expander 'file': {error}"
    ]

    assert service.failure_reason(log) == reason


def test_any_other_fatal_error_is_quoted_from_mains_line():
    # http_server.go configureHttps, returned by the HTTP server's Run (10.x-11.x wording).
    log = grafana_11("cert_file cannot be empty when using HTTPS")

    assert service.failure_reason(log) == (
        "grafana failed to start: *api.HTTPServer run error: cert_file cannot be empty when "
        "using HTTPS"
    )


def test_colour_codes_around_the_fatal_line_are_dropped():
    # fatih/color colours "Error" and "✗" when stdout is a terminal.
    log = ["\x1b[31mError\x1b[0m: \x1b[31m✗\x1b[0m cert_file cannot be empty when using HTTPS"]

    assert service.failure_reason(log) == (
        "grafana failed to start: cert_file cannot be empty when using HTTPS"
    )


def test_an_error_logged_before_exiting_without_mains_line_is_quoted():
    # pkg/setting/setting.go: a grafana.ini that does not parse is logged, then os.Exit(1).
    line = (
        'logger=settings t=2026-11-25T10:00:00Z level=error msg="failed to parse '
        '\\"/etc/grafana/grafana.ini\\": key-value delimiter not found: x"'
    )

    assert service.failure_reason([*PREAMBLE, line]) == (
        'grafana failed to start: failed to parse "/etc/grafana/grafana.ini": '
        "key-value delimiter not found: x"
    )


@pytest.mark.parametrize(
    "line",
    [
        # Grafana 8.x's field names, as in the osism/testbed#1157 journal.
        "logger=server t=2022-04-04T07:46:34.59+0000 "
        'lvl=eror msg="Server shutdown" '  # codespell:ignore eror
        'error="*api.HTTPServer run error: cert_file cannot be empty when using HTTPS"',
        'logger=server t=2026-11-25T10:00:01Z level=crit msg="Server shutdown" '
        'error="*api.HTTPServer run error: cert_file cannot be empty when using HTTPS"',
    ],
)
def test_an_error_line_of_other_levels_and_field_names_is_quoted(line):
    assert service.failure_reason([*PREAMBLE, line]) == (
        "grafana failed to start: Server shutdown: *api.HTTPServer run error: cert_file cannot "
        "be empty when using HTTPS"
    )


@pytest.mark.parametrize("log", [[], PREAMBLE, ["panic: something", "goroutine 1 [running]:"]])
def test_a_log_without_a_known_error_points_at_the_journal(log):
    assert service.failure_reason(log) == (
        "grafana failed to start (see journalctl -u grafana-server)"
    )
