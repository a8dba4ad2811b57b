"""The admin password in Grafana's own database, set through `grafana cli`."""

from __future__ import annotations

import subprocess

import grafana
from grafana import paths


class CLIError(grafana.GrafanaError):
    """`grafana cli` could not run or failed; the message never holds the password."""


def set_admin_password(password: str) -> None:
    """Set the password of Grafana's first administrator (user id 1) in its database.

    `grafana cli admin reset-admin-password --password-from-stdin` works without knowing the
    current password and keeps the new one out of argv and logs (pkg/cmd/grafana-cli/commands,
    GRAFANA-FACTS item 1). --homepath and --config are flags of `cli` and come before `admin`;
    the config's [paths] data is what points it at the server's database. It runs as the
    grafana user, which can read grafana.ini and the admin password file, and so that any file
    it creates in the data directory stays Grafana's. The caller checks with a login that it
    took effect: a CLI working on another database also exits 0.

    Raises:
        CLIError: the command failed (its output never contains the password).
    """
    where = paths.PATHS
    cli = [str(where.binary), "cli", "--homepath", str(where.home), "--config", str(where.config)]
    cmd = [
        "runuser",
        "-u",
        grafana.USER,
        "--",
        *cli,
        "admin",
        "reset-admin-password",
        "--password-from-stdin",
    ]
    try:
        result = subprocess.run(
            cmd, input=password + "\n", capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CLIError(f"grafana cli could not run: {e}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-500:]
        raise CLIError(f"grafana cli could not set the admin password: {output}")
