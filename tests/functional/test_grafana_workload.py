"""The grafana workload package against real tools (an HTTP server, files, gpg, apt, runuser).

There is no Grafana binary on these machines, so the files are checked against the keys Grafana
documents (conf/defaults.ini and the provisioning reference) rather than loaded by Grafana.
"""

from __future__ import annotations

import base64
import configparser
import dataclasses
import grp
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from charmlibs import apt

sys.path.insert(0, str(Path(__file__).parents[2] / "charms" / "grafana" / "src"))

import grafana
import loopback
from grafana import api, apt_source, cli, ini, paths, provisioning, service
from lab_monitoring import files, packaged_service, packages

# Keys per grafana.ini section, from Grafana's conf/defaults.ini
# (https://grafana.com/docs/grafana/latest/setup-grafana/configure-grafana/).
DOCUMENTED_INI = {
    "paths": {"data", "temp_data_lifetime", "logs", "plugins", "provisioning"},
    "server": {"protocol", "http_addr", "http_port", "domain", "enforce_domain", "root_url"},
    "security": {"admin_user", "admin_password", "admin_email", "secret_key"},
    "auth.anonymous": {"enabled", "org_name", "org_role", "hide_version"},
    "log": {"mode", "level", "filters"},
    "analytics": {"reporting_enabled", "check_for_updates", "check_for_plugin_updates"},
}
# Grafana's data source provisioning file, apiVersion 1
# (https://grafana.com/docs/grafana/latest/administration/provisioning/#data-sources).
DOCUMENTED_DATASOURCE = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
    "editable", "correlations", "orgName",
}  # fmt: skip
DOCUMENTED_DELETE = {"name", "orgId", "orgName"}
# Dashboard providers (same page, #dashboards).
DOCUMENTED_PROVIDER = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Source:
    uid: str
    name: str
    type: str = "prometheus"
    url: str = "http://10.0.0.5:9090"
    basic_auth_user: str | None = None
    basic_auth_password: str | None = None
    json_data: dict[str, str | int | float | bool] = dataclasses.field(default_factory=dict)


def grafana_interpolate(value: str) -> str:
    """What Grafana does to a provisioning string: `$$` is a `$`, other `$...` expand.

    Mirrors interpolateValue in pkg/services/provisioning/values/values.go; the expansion here
    is a marker so a test sees if anything was expanded at all.
    """
    parts = value.split("$$")
    return "$".join(re.sub(r"\$(\{[^}]*\}|__\w+\{[^}]*\}|\w+)", "<EXPANDED>", p) for p in parts)


# --- grafana.ini ------------------------------------------------------------------------------


def render(**overrides: Any) -> str:
    settings: dict[str, Any] = {
        "port": 3000,
        "admin_user": "admin",
        "allow_anonymous_access": False,
        "anonymous_role": "Viewer",
        "root_url": "",
        "log_level": "info",
    }
    return ini.render_config(**(settings | overrides))


def parse_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    return parser


def test_grafana_ini_uses_only_documented_sections_and_keys():
    parser = parse_ini(render(root_url="http://localhost:8001/", allow_anonymous_access=True))

    for section in parser.sections():
        assert section in DOCUMENTED_INI, section
        assert set(parser[section]) <= DOCUMENTED_INI[section], section


def test_grafana_ini_turns_telemetry_off_and_points_at_the_packaged_paths():
    parser = parse_ini(render())

    assert dict(parser["analytics"]) == dict.fromkeys(
        ("reporting_enabled", "check_for_updates", "check_for_plugin_updates"), "false"
    )
    assert parser["paths"]["data"] == "/var/lib/grafana"
    assert parser["paths"]["provisioning"] == "/etc/grafana/provisioning"
    assert "root_url" not in parser["server"]


# --- provisioning files -----------------------------------------------------------------------


def test_datasource_file_uses_only_documented_keys():
    sources = [
        Source("lab_prometheus_0", "lab/prometheus/0", json_data={"timeInterval": "15s"}),
        Source(
            "lab_prometheus2_0", "lab/prometheus2/0", basic_auth_user="u", basic_auth_password="p"
        ),
    ]
    previous = provisioning.render_datasources([*sources, Source("lab_old_0", "lab/old/0")])

    doc = yaml.safe_load(provisioning.render_datasources(sources, previous))

    assert set(doc) == {"apiVersion", "datasources", "deleteDatasources"}
    assert doc["apiVersion"] == 1
    for entry in doc["datasources"]:
        assert set(entry) <= DOCUMENTED_DATASOURCE
        assert entry["access"] == "proxy"
        assert entry["editable"] is False
    for entry in doc["deleteDatasources"]:
        assert set(entry) <= DOCUMENTED_DELETE
    assert doc["deleteDatasources"] == [{"name": "lab/old/0", "orgId": 1}]
    assert doc["datasources"][1]["secureJsonData"] == {"basicAuthPassword": "p"}


def test_hostile_text_stays_data_in_yaml_and_is_not_expanded_by_grafana():
    hostile = "x\n- name: injected\n  url: http://evil $HOME ${PATH} $__file{/etc/shadow} $$"
    source = Source("lab_p_0", hostile, url="http://h/$__env{GF_SECURITY_ADMIN_PASSWORD}")

    [entry] = yaml.safe_load(provisioning.render_datasources([source]))["datasources"]

    assert grafana_interpolate(entry["name"]) == hostile
    assert grafana_interpolate(entry["url"]) == source.url


def test_repeated_uid_is_left_out():
    doc = yaml.safe_load(
        provisioning.render_datasources(
            [Source("same", "a"), Source("same", "b"), Source("c", "c")]
        )
    )

    assert [e["name"] for e in doc["datasources"]] == ["a", "c"]


def test_dashboard_provider_uses_only_documented_keys():
    [provider] = yaml.safe_load(provisioning.render_dashboard_provider())["providers"]

    assert set(provider) <= DOCUMENTED_PROVIDER
    assert provider["options"] == {"path": "/var/lib/grafana/dashboards/juju"}


def test_dashboard_provider_puts_the_charm_s_dashboards_read_only_in_the_main_org():
    [provider] = yaml.safe_load(provisioning.render_dashboard_provider())["providers"]

    # Org 1 is the one Grafana creates and logs users into; another would hide the dashboards.
    assert provider["orgId"] == 1
    assert (provider["type"], provider["folder"]) == ("file", "Juju")
    # A file the charm removes deletes its dashboard (true would only unprovision it).
    assert provider["disableDeletion"] is False
    # The charm rewrites these files: editing them in the UI would not last.
    assert provider["allowUiUpdates"] is False


# --- files on disk ----------------------------------------------------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: to chown to another group, to act as another user"
)


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> paths.Paths:
    """Point every location the package uses into tmp_path, files owned by our own group."""
    moved = paths.Paths.under(tmp_path, group=grp.getgrgid(os.getgid()).gr_name)
    monkeypatch.setattr(paths, "PATHS", moved)
    return moved


def leftovers(directory: Path) -> list[Path]:
    """Temporary files a writer left behind in `directory` (files.write names them .<name>.*)."""
    return list(directory.glob(".*"))


def test_config_is_written_once_with_mode_0640(where: paths.Paths):
    assert ini.write_config(render()) is True
    assert ini.write_config(render()) is False
    assert ini.write_config(render(port=3001)) is True

    stat = where.config.stat()
    assert stat.st_mode & 0o777 == 0o640
    assert stat.st_gid == os.getgid()
    assert leftovers(where.config_dir) == []


@pytest.mark.parametrize("wrong", [0o666, 0o644, 0o600])
def test_wrong_mode_is_repaired_without_counting_as_a_change(where: paths.Paths, wrong: int):
    ini.write_config(render())
    where.config.chmod(wrong)  # 0o644: the file, and secrets in it, made world-readable

    assert ini.write_config(render()) is False
    assert where.config.stat().st_mode & 0o777 == 0o640


@needs_root
def test_wrong_group_is_repaired_without_counting_as_a_change(where: paths.Paths):
    # Only the group is wrong: grafana-server (in group grafana) could not read its own config.
    ini.write_config(render())
    other = next(g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getgid())
    os.chown(where.config, 0, other)

    assert ini.write_config(render()) is False
    stat = where.config.stat()
    assert (stat.st_gid, stat.st_mode & 0o777) == (os.getgid(), 0o640)


def test_admin_password_file_is_0640_before_it_holds_the_password(where: paths.Paths, monkeypatch):
    # Watch the temporary file at the moment the password is written into it.
    seen = []
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any):
        stat = os.fstat(fd)
        seen.append((stat.st_mode & 0o777, stat.st_gid, stat.st_size))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", fdopen)

    assert ini.write_admin_password("s3cret-pw") is True
    assert ini.write_admin_password("s3cret-pw") is False

    assert seen == [(0o640, os.getgid(), 0)]
    stat = where.admin_password.stat()
    assert (stat.st_mode & 0o777, stat.st_uid, stat.st_gid) == (0o640, 0, os.getgid())
    # Exactly the password: Grafana's file expander trims whitespace, the charm adds none.
    assert where.admin_password.read_bytes() == b"s3cret-pw"
    assert leftovers(where.config_dir) == []


@needs_root
def test_the_admin_password_file_belongs_to_grafanas_group(where: paths.Paths, monkeypatch):
    # Another group than the test's own, so that a file left in root's group would show.
    other = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    monkeypatch.setattr(paths, "PATHS", dataclasses.replace(where, group=other.gr_name))

    ini.write_admin_password("s3cret-pw")

    stat = where.admin_password.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, other.gr_gid, 0o640)


@needs_root
def test_the_admin_password_file_is_readable_by_its_group_and_nobody_else(monkeypatch):
    # As Grafana's user (in group grafana) and as any other user, on a real filesystem.
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o711)
        where = paths.Paths(config_dir=Path(directory), group=grp.getgrgid(0).gr_name)
        monkeypatch.setattr(paths, "PATHS", where)
        ini.write_admin_password("s3cret-pw")
        read = ["cat", str(where.admin_password)]

        in_group = subprocess.run(read, user=65534, group=0, extra_groups=[], capture_output=True)
        other = subprocess.run(read, user=65534, group=65534, extra_groups=[], capture_output=True)

    assert (in_group.returncode, in_group.stdout) == (0, b"s3cret-pw")
    assert other.returncode != 0
    assert b"Permission denied" in other.stderr


def test_grafana_ini_names_the_password_file_as_grafanas_expander_reads_it():
    value = parse_ini(render())["security"]["admin_password"]

    # pkg/setting/expanders.go: `\$(|__\w+){([^}]+)}`, then the "file" expander reads the path.
    match = re.fullmatch(r"\$(|__\w+)\{([^}]+)\}", value)
    assert match is not None, value
    assert match.groups() == ("__file", "/etc/grafana/admin-password")


def test_every_location_moves_with_one_paths(where: paths.Paths, tmp_path: Path):
    # grafana.ini names what the tests' PATHS say, so the tests' files are the ones it names.
    parser = parse_ini(render())

    assert parser["paths"]["data"] == str(tmp_path / "var/lib/grafana")
    assert parser["paths"]["provisioning"] == str(tmp_path / "etc/grafana/provisioning")
    assert parser["security"]["admin_password"] == f"$__file{{{where.admin_password}}}"
    assert apt_source.repository_line().startswith(f"deb [signed-by={where.keyring}] ")
    for field in dataclasses.fields(paths.Paths):
        value = getattr(where, field.name)
        if isinstance(value, Path):
            assert value.is_relative_to(tmp_path), field.name


def test_dashboards_are_copied_once_and_stale_ones_removed(where: paths.Paths, tmp_path: Path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "a.json").write_text('{"title": "a"}')
    where.dashboards.mkdir(parents=True)
    (where.dashboards / "old.json").write_text("{}")

    assert provisioning.write_dashboards(shipped) is True
    assert provisioning.write_dashboards(shipped) is False
    assert sorted(p.name for p in where.dashboards.iterdir()) == ["a.json"]
    (shipped / "a.json").write_text('{"title": "a, changed"}')
    assert provisioning.write_dashboards(shipped) is True  # the provider file is unchanged
    (shipped / "b.json").write_text('{"title": "b"}')
    assert provisioning.write_dashboards(shipped) is True
    (shipped / "b.json").unlink()
    assert provisioning.write_dashboards(shipped) is True
    # Owned by root, readable by grafana-server's user, which is not in root's group.
    stat = (where.dashboards / "a.json").stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, 0, 0o644)
    provider = yaml.safe_load(where.dashboard_provider.read_text())
    assert provider["providers"][0]["options"]["path"] == str(where.dashboards)


def test_related_dashboards_are_written_beside_the_shipped_and_removed_when_gone(
    where: paths.Paths, tmp_path: Path
):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "grafana-overview.json").write_text('{"title": "ours"}')
    related = {"juju_prometheus_abc.json": '{"title": "theirs"}'}

    assert provisioning.write_dashboards(shipped, related) is True
    assert provisioning.write_dashboards(shipped, related) is False
    assert (where.dashboards / "juju_prometheus_abc.json").read_text() == '{"title": "theirs"}'
    stat = (where.dashboards / "juju_prometheus_abc.json").stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, 0, 0o644)
    assert provisioning.write_dashboards(shipped, {}) is True
    assert sorted(p.name for p in where.dashboards.iterdir()) == ["grafana-overview.json"]


@pytest.mark.parametrize(
    "name",
    [
        "../escaped.json",
        "juju_a_../../b.json",
        "juju_a_b.json/../../c.json",
        "/etc/passwd",
        "juju_a_b.yaml",
        "grafana-overview.json",  # a shipped one is never overwritten
        "juju_A_b.json",
        "juju_a_" + "x" * 41 + ".json",
    ],
)
def test_a_related_file_name_that_is_not_ours_writes_nothing_anywhere(
    where: paths.Paths, tmp_path: Path, name: str
):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "grafana-overview.json").write_text('{"title": "ours"}')
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    provisioning.write_dashboards(shipped, {name: '{"title": "injected"}'})

    after = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert after - before == {where.dashboards / "grafana-overview.json", where.dashboard_provider}
    assert (where.dashboards / "grafana-overview.json").read_text() == '{"title": "ours"}'


def test_datasources_file_is_written_once_0640_and_read_back(where: paths.Paths):
    text = provisioning.render_datasources([Source("lab_p_0", "lab/p/0")])
    assert provisioning.read_datasources() is None

    assert provisioning.write_datasources(text) is True
    assert provisioning.write_datasources(text) is False

    assert provisioning.read_datasources() == text
    stat = where.datasources.stat()
    assert (stat.st_mode & 0o777, stat.st_gid) == (0o640, os.getgid())


# --- the signing key, with a real gpg ---------------------------------------------------------

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[bytes, str]]]:
    """Two freshly generated keys: name -> (armored public key, fingerprint).

    Key generation starts a gpg-agent for the temporary home; it is stopped afterwards, so the
    test run leaves no process behind.
    """
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    made = {}
    for name in ("good", "other"):
        uid = f"{name} <{name}@example.invalid>"
        gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
        subprocess.run([*gpg, "--quick-gen-key", uid, "ed25519", "sign", "never"], check=True)
        armored = subprocess.run(
            [*gpg, "--armor", "--export", uid], check=True, capture_output=True
        ).stdout
        listing = subprocess.run(
            [*gpg, "--with-colons", "--fingerprint", uid], check=True, capture_output=True
        ).stdout.decode()
        fingerprint = next(
            line.split(":")[9]
            for line in listing.splitlines()
            if line.startswith(apt_source.FINGERPRINT_RECORD + ":")
        )
        made[name] = (armored, fingerprint)
    yield made
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@needs_gpg
def test_the_pinned_key_is_accepted(keys):
    key, fingerprint = keys["good"]

    apt_source.check_key(key, expected=fingerprint)


@needs_gpg
def test_another_key_is_refused_naming_both_fingerprints(keys):
    key, fingerprint = keys["other"]

    with pytest.raises(apt_source.KeyMismatchError) as refused:
        apt_source.check_key(key, expected=keys["good"][1])

    assert fingerprint in str(refused.value)
    assert keys["good"][1] in str(refused.value)


@needs_gpg
def test_the_pinned_key_bundled_with_another_is_refused(keys):
    with pytest.raises(apt_source.KeyMismatchError):
        apt_source.check_key(keys["good"][0] + keys["other"][0], expected=keys["good"][1])


@needs_gpg
def test_not_a_key_is_refused():
    with pytest.raises(apt_source.InstallError):
        apt_source.check_key(b"<html>captive portal</html>")


# --- the repository, the pin and apt ----------------------------------------------------------


def repository_files(where: paths.Paths) -> list[str]:
    """Which of Grafana's apt files exist: source, keyring, pin."""
    named = {"source": where.apt_source, "keyring": where.keyring, "pin": where.apt_preferences}
    return [name for name, path in named.items() if path.exists()]


@needs_gpg
def test_mismatching_download_installs_nothing(keys, where: paths.Paths, monkeypatch):
    monkeypatch.setattr(packages, "install", lambda *a, **k: pytest.fail("apt was called"))

    with pytest.raises(apt_source.KeyMismatchError):
        apt_source.install_from_repository(12, download=lambda url: keys["other"][0])

    assert repository_files(where) == []


@needs_gpg
def test_matching_download_writes_keyring_source_and_pin_before_apt_runs(
    keys, where: paths.Paths, monkeypatch
):
    key, fingerprint = keys["good"]
    monkeypatch.setattr(apt_source, "KEY_FINGERPRINT", fingerprint)
    installed = []

    def install(package: str, **kwargs: Any) -> None:
        installed.append((package, kwargs, repository_files(where)))

    monkeypatch.setattr(packages, "install", install)

    apt_source.install_from_repository(13, download=lambda url: key)

    assert installed == [("grafana", {}, ["source", "keyring", "pin"])]  # apt update first
    assert where.keyring.read_bytes() == key
    assert where.apt_source.read_text() == (
        f"deb [signed-by={where.keyring}] https://apt.grafana.com stable main\n"
    )
    assert "Pin: version 13.*\n" in where.apt_preferences.read_text()
    for path in (where.keyring, where.apt_source, where.apt_preferences):
        assert path.stat().st_mode & 0o777 == 0o644


def install_with_apt_failing(keys, monkeypatch, error: Exception) -> str:
    """Install from the repository (with the pinned key) while apt-get update fails; say why."""
    key, fingerprint = keys["good"]
    monkeypatch.setattr(apt_source, "KEY_FINGERPRINT", fingerprint)

    def update() -> None:
        raise error

    # charmlibs-apt's update, which lab_monitoring.packages.install runs first.
    monkeypatch.setattr(apt, "update", update)
    with pytest.raises(apt_source.InstallError) as failed:
        apt_source.install_from_repository(12, download=lambda url: key)
    return str(failed.value)


@needs_gpg
def test_apt_failing_removes_the_source_keyring_and_pin_and_says_what_apt_said(
    keys, where: paths.Paths, monkeypatch
):
    # charmlibs-apt's update: `apt-get update --error-on=any`, output captured (stderr bytes);
    # the lines are apt's own, as seen on a real machine (tests/machine/test_grafana.py).
    update_failed = subprocess.CalledProcessError(
        100,
        ["apt-get", "update", "--error-on=any"],
        stderr=b"E: Failed to fetch https://apt.grafana.com/dists/stable/InRelease  "
        b"Could not connect to apt.grafana.com:443 (127.0.0.1). - connect (111: Connection "
        b"refused)\nE: Some index files failed to download. They have been ignored, or old "
        b"ones used instead.\n",
    )

    said = install_with_apt_failing(keys, monkeypatch, update_failed)

    assert said == (
        "apt could not install grafana: E: Failed to fetch "
        "https://apt.grafana.com/dists/stable/InRelease  Could not connect to "
        "apt.grafana.com:443 (127.0.0.1). - connect (111: Connection refused)"
    )
    assert repository_files(where) == []


@needs_gpg
def test_apt_output_that_is_not_utf8_still_gives_its_error_line(
    keys, where: paths.Paths, monkeypatch
):
    # apt translates its messages; under a Latin-1 locale they are not UTF-8.
    stderr = b"E: Impossible de r\xe9cup\xe9rer grafana\n"

    said = install_with_apt_failing(
        keys, monkeypatch, subprocess.CalledProcessError(100, ["apt-get"], stderr=stderr)
    )

    assert said == "apt could not install grafana: E: Impossible de r\ufffdcup\ufffdrer grafana"


@needs_gpg
def test_a_package_apt_cannot_find_is_an_error_that_says_so(keys, where: paths.Paths, monkeypatch):
    key, fingerprint = keys["good"]
    monkeypatch.setattr(apt_source, "KEY_FINGERPRINT", fingerprint)
    monkeypatch.setattr(apt, "update", lambda: None)
    real_run = subprocess.run

    def run(command: list[str], *args: Any, **kwargs: Any) -> Any:
        if command[:2] == ["apt-get", "install"]:
            # What apt-get says when no configured source has the package.
            return subprocess.CompletedProcess(
                command, 100, "", "E: Unable to locate package grafana\n"
            )
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)

    with pytest.raises(apt_source.InstallError) as failed:
        apt_source.install_from_repository(12, download=lambda url: key)

    assert (
        str(failed.value) == "apt could not install grafana: E: Unable to locate package grafana"
    )
    assert repository_files(where) == []


def test_a_deb_file_is_installed_by_path_without_an_update_and_unpins_grafana(
    where: paths.Paths, tmp_path: Path, monkeypatch
):
    apt_source.pin(12)
    files.write(where.apt_source, apt_source.repository_line())
    installed = []
    monkeypatch.setattr(packages, "install", lambda package, **k: installed.append((package, k)))
    deb = tmp_path / "grafana_13.2.0_amd64.deb"
    deb.write_bytes(b"!<arch>\n")

    apt_source.install_from_file(deb)

    # A path with a slash is a file to apt-get, not a package name.
    assert installed == [(str(deb), {"update": False})]
    assert repository_files(where) == []


def test_a_deb_apt_refuses_is_an_error_naming_the_file(tmp_path: Path, where, monkeypatch):
    def refuse(package: str, **kwargs: Any) -> None:
        raise packages.InstallError("E: Unsupported file /x/grafana.deb given on commandline")

    monkeypatch.setattr(packages, "install", refuse)

    with pytest.raises(apt_source.InstallError) as failed:
        apt_source.install_from_file(tmp_path / "grafana.deb")

    assert str(failed.value) == (
        "apt could not install grafana.deb: "
        "E: Unsupported file /x/grafana.deb given on commandline"
    )


def test_the_pin_holds_the_major_below_the_priority_that_would_downgrade(where: paths.Paths):
    assert apt_source.pin(12) is True
    assert apt_source.pin(12) is False

    text = where.apt_preferences.read_text()
    fields = dict(line.split(": ", 1) for line in text.splitlines())
    assert fields["Package"] == "grafana"
    assert fields["Pin"] == "version 12.*"
    # apt_preferences(5): 990 < P < 1000 wins over the repository's 500 (and a Default-Release's
    # 990) but never downgrades; from 1000 up apt would take an installed 13 back to 12.
    assert 990 < int(fields["Pin-Priority"]) < 1000
    assert apt_source.pin(13) is True
    assert "Pin: version 13.*\n" in where.apt_preferences.read_text()


needs_apt = pytest.mark.skipif(shutil.which("apt-cache") is None, reason="apt is not installed")


@needs_apt
def test_apt_reads_the_pin_without_a_complaint(where: paths.Paths):
    apt_source.pin(12)

    policy = subprocess.run(
        [
            "apt-cache",
            f"-oDir::Etc::PreferencesParts={where.apt_preferences.parent}",
            "-oDir::Etc::Preferences=/dev/null",
            "policy",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert policy.returncode == 0, policy.stderr
    assert policy.stderr == ""


@needs_apt
def test_apt_complains_about_a_broken_pin_so_the_check_above_can_fail(where: paths.Paths):
    where.apt_preferences.parent.mkdir(parents=True)
    where.apt_preferences.write_text("Package: grafana\nPin: version 12.*\nPin-Priority: x\n")

    policy = subprocess.run(
        [
            "apt-cache",
            f"-oDir::Etc::PreferencesParts={where.apt_preferences.parent}",
            "-oDir::Etc::Preferences=/dev/null",
            "policy",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert policy.stderr != ""


def test_remove_repository_takes_source_keyring_and_pin_and_minds_nothing_missing(
    where: paths.Paths,
):
    apt_source.pin(12)
    files.write(where.apt_source, apt_source.repository_line())
    files.write(where.keyring, b"key")

    apt_source.remove_repository()
    apt_source.remove_repository()

    assert repository_files(where) == []


@pytest.mark.parametrize(
    ("version", "major"),
    [("12.3.1", 12), ("13.0.0+security-01", 13), ("1:10.4.3", 10), ("", None), ("grafana", None)],
)
def test_the_major_of_a_debian_version(version, major):
    assert apt_source.major_of(version) == major


def test_files_go_into_new_directories_mode_0755_whatever_the_umask(tmp_path: Path):
    previous = os.umask(0o077)
    try:
        files.write(tmp_path / "new" / "deeper" / "file", b"x", mode=0o644)
    finally:
        os.umask(previous)

    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "new" / "deeper").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "new" / "deeper" / "file").stat().st_mode & 0o777 == 0o644


# --- starting grafana-server: what start() makes of the service's fate -------------------------


def test_ready_means_grafanas_health_answers_with_its_database_ok(api_url, monkeypatch):
    port = int(api_url.rsplit(":", 1)[1])
    assert service.ready(port) is True

    # http_server.go apiHealthHandler: 503 and "failing" when the database is not healthy.
    failing = (False, 503, {"database": "failing"})
    monkeypatch.setitem(FakeGrafanaAPI.routes, ("GET", "/api/health"), failing)
    assert service.ready(port) is False
    assert service.ready(loopback.free_port()) is False


@pytest.mark.parametrize(
    ("outcome", "returned"),
    [(packaged_service.Outcome.UP, True), (packaged_service.Outcome.STARTING, False)],
)
def test_start_waits_on_grafana_server_for_its_start_timeout(monkeypatch, outcome, returned):
    asked = []

    def start(service: str, ready: Any, **kwargs: Any) -> packaged_service.Started:
        asked.append((service, kwargs))
        return packaged_service.Started(outcome)

    monkeypatch.setattr(packaged_service, "start", start)

    assert service.start(3000, restart=True) is returned
    assert asked == [("grafana-server", {"restart": True, "timeout": service.START_TIMEOUT})]


def test_a_grafana_server_that_died_is_a_start_error_with_the_reason_from_its_log(monkeypatch):
    log = [
        'logger=server t=2026-11-25T10:00:01Z level=error msg="Stopped background service" '
        'service=*api.HTTPServer reason="failed to open listener on address :3000: listen tcp '
        ':3000: bind: address already in use"',
    ]
    monkeypatch.setattr(
        packaged_service,
        "start",
        lambda *a, **k: packaged_service.Started(packaged_service.Outcome.FAILED, log),
    )

    with pytest.raises(packaged_service.StartError) as died:
        service.start(3000)

    assert str(died.value) == "grafana cannot listen on :3000: address already in use"


def test_systemctl_refusing_is_a_service_error_not_a_start_error(monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise packaged_service.systemd.SystemdError("Unit grafana-server.service not found.")

    monkeypatch.setattr(packaged_service, "start", refuse)

    with pytest.raises(service.ServiceError) as refused:
        service.start(3000)

    assert not isinstance(refused.value, packaged_service.StartError)
    assert "not found" in str(refused.value)


# --- the admin password goes through stdin, by the real runuser --------------------------------

# Stands in for /usr/share/grafana/bin/grafana: records who ran it, its arguments and stdin.
STUB = """#!/bin/sh
{ id -un; printf '%s\\n' "$@"; echo --stdin--; cat; } > "$(dirname "$0")/ran"
"""


@pytest.fixture
def grafana_binary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stub Grafana binary that user nobody can run, in a directory nobody can write."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser (util-linux) to run a command as another user")
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        home.chmod(0o755)
        (home / "bin").mkdir(mode=0o777)
        (home / "bin").chmod(0o777)  # the stub writes what it saw next to itself
        where = paths.Paths(home=home)
        where.binary.write_text(STUB)
        where.binary.chmod(0o755)
        monkeypatch.setattr(paths, "PATHS", where)
        monkeypatch.setattr(grafana, "USER", "nobody")
        yield where.binary


def test_the_cli_runs_as_grafanas_user_by_absolute_path_with_the_password_on_stdin(
    grafana_binary: Path,
):
    cli.set_admin_password("not-in-argv-123")

    user, *lines = (grafana_binary.parent / "ran").read_text().splitlines()
    args, stdin = lines[: lines.index("--stdin--")], lines[lines.index("--stdin--") + 1 :]
    assert user == "nobody"
    assert args == [
        "cli", "--homepath", str(paths.PATHS.home), "--config", "/etc/grafana/grafana.ini",
        "admin", "reset-admin-password", "--password-from-stdin",
    ]  # fmt: skip
    assert stdin == ["not-in-argv-123"]


def test_a_missing_binary_is_an_error_that_names_it(grafana_binary: Path):
    grafana_binary.unlink()

    with pytest.raises(cli.CLIError, match=re.escape(str(grafana_binary))):
        cli.set_admin_password("not-in-the-error-123")


def test_a_failing_cli_is_an_error_without_the_password(grafana_binary: Path):
    grafana_binary.write_text("#!/bin/sh\necho 'Error: weak password' >&2\nexit 1\n")

    with pytest.raises(cli.CLIError) as error:
        cli.set_admin_password("not-in-the-error-123")

    assert str(error.value) == "grafana cli could not set the admin password: Error: weak password"
    assert "not-in-the-error-123" not in str(error.value)


def test_the_binary_is_called_by_its_packaged_absolute_path():
    # The 11.x/12.x .debs put no `grafana` on PATH (GRAFANA-FACTS.md item 1).
    assert str(paths.PATHS.binary) == "/usr/share/grafana/bin/grafana"
    # What the CLI is told: the packaged unit's GRAFANA_HOME and CONF_FILE.
    assert str(paths.PATHS.home) == "/usr/share/grafana"
    assert str(paths.PATHS.config) == "/etc/grafana/grafana.ini"


# --- the HTTP client against a local server ---------------------------------------------------


class FakeGrafanaAPI(http.server.BaseHTTPRequestHandler):
    """Answers like Grafana for the routes the charm uses, and checks method and auth."""

    routes = {
        ("GET", "/api/health"): (False, 200, {"database": "ok", "version": "11.3.0"}),
        ("GET", "/api/user"): (True, 200, {"login": "admin"}),
        ("POST", "/api/admin/provisioning/datasources/reload"): (
            True, 200, {"message": "Datasources config reloaded"},
        ),
        ("POST", "/api/admin/provisioning/dashboards/reload"): (
            True, 200, {"message": "Dashboards config reloaded"},
        ),
    }  # fmt: skip
    password = "right-password"
    delay = 0.0
    requests: list[tuple[str, str, str | None]] = []

    def _answer(self) -> None:
        time.sleep(self.delay)
        auth = self.headers.get("Authorization")
        type(self).requests.append((self.command, self.path, auth))
        route = self.routes.get((self.command, self.path))
        if route is None:
            known_path = any(path == self.path for _, path in self.routes)
            self._send(405 if known_path else 404, {"message": "Not found"})
            return
        needs_auth, status, body = route
        expected = "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
        if needs_auth and auth != expected:
            self._send(401, {"message": "Invalid username or password"})
            return
        self._send(status, body)

    do_GET = do_POST = _answer  # noqa: N815

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    FakeGrafanaAPI.requests = []
    FakeGrafanaAPI.delay = 0.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafanaAPI)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_reloads_are_authenticated_posts_to_the_provisioning_api(api_url):
    client = api.GrafanaClient(api_url, "admin", "right-password")

    client.reload_datasources()
    client.reload_dashboards()

    expected = "Basic " + base64.b64encode(b"admin:right-password").decode()
    assert FakeGrafanaAPI.requests == [
        ("POST", "/api/admin/provisioning/datasources/reload", expected),
        ("POST", "/api/admin/provisioning/dashboards/reload", expected),
    ]


def test_rejected_credentials_raise_with_the_status_and_grafanas_message(api_url):
    client = api.GrafanaClient(api_url, "admin", "wrong")

    with pytest.raises(api.APIError) as error:
        client.reload_datasources()

    assert error.value.status == 401
    assert "Invalid username or password" in str(error.value)
    assert "wrong" not in str(error.value)


def test_login_check_tells_working_from_rejected_credentials(api_url):
    assert api.GrafanaClient(api_url, "admin", "right-password").login_works() is True
    assert api.GrafanaClient(api_url, "admin", "stale").login_works() is False


def test_health_needs_no_credentials(api_url):
    assert api.GrafanaClient(api_url).is_ready() is True
    assert FakeGrafanaAPI.requests == [("GET", "/api/health", None)]


def test_unreachable_grafana_is_a_clear_error():
    client = api.GrafanaClient("http://127.0.0.1:9", "admin", "x", timeout=2)

    with pytest.raises(
        api.APIError, match=re.escape("cannot reach Grafana at http://127.0.0.1:9")
    ):
        client.reload_datasources()
    assert client.is_ready() is False
    assert client.wait_ready(timeout=0.2, interval=0.05) is False


def test_slow_grafana_times_out(api_url):
    FakeGrafanaAPI.delay = 1.0
    client = api.GrafanaClient(api_url, "admin", "right-password", timeout=0.2)

    with pytest.raises(api.APIError, match="cannot reach Grafana"):
        client.reload_datasources()


class NotJSONHandler(http.server.BaseHTTPRequestHandler):
    """A proxy or a crashed Grafana: a 502 whose body is neither JSON nor UTF-8."""

    def do_POST(self) -> None:
        body = b"<h1>Bad gateway \xff\xfe</h1>"
        self.send_response(502)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_answer_that_is_not_json_nor_utf8_is_an_error_with_its_text():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotJSONHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        client = api.GrafanaClient(f"http://127.0.0.1:{server.server_address[1]}", "a", "b")
        with pytest.raises(api.APIError) as error:
            client.reload_datasources()
    finally:
        server.shutdown()
        server.server_close()

    assert error.value.status == 502
    assert str(error.value) == (
        "POST /api/admin/provisioning/datasources/reload returned 502: "
        "<h1>Bad gateway \ufffd\ufffd</h1>"
    )


def test_wait_ready_waits_for_a_grafana_that_is_still_migrating(api_url, monkeypatch):
    # Its first start migrates the database: /api/health says "failing" for a while.
    answers = iter([(False, 503, {"database": "failing"})] * 3)

    class Health(dict):
        def get(self, key, default=None):
            if key == ("GET", "/api/health"):
                return next(answers, FakeGrafanaAPI.routes[key])
            return super().get(key, default)

    monkeypatch.setattr(FakeGrafanaAPI, "routes", Health(FakeGrafanaAPI.routes))
    client = api.GrafanaClient(api_url)

    assert client.wait_ready(timeout=10, interval=0.05) is True
    assert FakeGrafanaAPI.requests.count(("GET", "/api/health", None)) == 4


def test_client_repr_hides_the_password():
    assert "secret-pw" not in repr(api.GrafanaClient("http://x", "admin", "secret-pw"))


# --- the package, as dpkg sees it -------------------------------------------------------------


def test_installed_package_and_its_version_come_from_dpkg(monkeypatch: pytest.MonkeyPatch):
    # No Grafana package here; the prometheus package the functional tests need stands in.
    monkeypatch.setattr(grafana, "PACKAGE", "prometheus")

    assert apt_source.installed()
    assert re.match(r"\d+\.\d+\.\d+", apt_source.installed_version())


def test_a_package_dpkg_does_not_know_is_not_installed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(grafana, "PACKAGE", "grafana-not-a-package")

    assert not apt_source.installed()
    assert apt_source.installed_version() == ""


def test_fetch_reads_no_more_than_a_key_could_be():
    # A signing key is a few kB: whatever serves the key URL cannot fill the disk or memory.
    with loopback.metrics_server(b"x" * (3 << 20)) as port:
        body = apt_source.fetch(f"http://127.0.0.1:{port}/metrics")

    assert len(body) == apt_source.MAX_KEY_BYTES == 1 << 20


def test_the_key_comes_from_grafana_s_documented_url():
    # https://grafana.com/docs/grafana/latest/setup-grafana/installation/debian/
    assert apt_source.KEY_URL == "https://apt.grafana.com/gpg.key"
    assert apt_source.repository_line() == (
        "deb [signed-by=/etc/apt/keyrings/grafana.asc] https://apt.grafana.com stable main\n"
    )
