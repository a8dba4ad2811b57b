"""The Grafana charm on a real systemd machine, for everything that needs no Grafana binary.

No registry here ships a Grafana package, and this tier builds none: installing Grafana, the
packaged grafana-server unit and its start/restart/stop stay in tests/integration. What runs
here is real: the charm's hooks (driven by juju.Unit, nothing patched), its workload package
(`run_workload`), gpg, apt-get, dpkg, systemd as PID 1, file modes and owners at the real
paths. apt.grafana.com is made unreachable on purpose (/etc/hosts points it at 127.0.0.1, where
nothing listens on 443), so the outcome is the same on a host with full network (CI) and here;
where apt must install from it, a repository laid out like it, holding stand-in `grafana`
packages and signed with a key made here, answers for it on 127.0.0.1:443.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.server
import json
import pathlib
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from juju import Status, Unit, run_workload
from machine import Machine

KEYRING = "/etc/apt/keyrings/grafana.asc"
SOURCES = "/etc/apt/sources.list.d/grafana.list"
PIN = "/etc/apt/preferences.d/grafana"
PINNED = "B53AE77BADB630A683046005963FA27710458545"
SHIPPED_DASHBOARDS = "/lab/charms/grafana/src/dashboards"
GNUPG = "/root/lab-gnupg"
# No grafana-deb attached: what the charm gets is an empty file (GRAFANA-FACTS item 10).
NO_DEB = {"grafana-deb": "/dev/null"}


WORKLOAD = (
    "import json, pathlib\n"
    "import grafana\n"
    "from grafana import apt_source, ini, paths, provisioning, service\n"
)


def workload(machine: Machine, code: str) -> Any:
    """Run steps of the grafana package inside the machine; return what they printed, as JSON."""
    out = run_workload(machine, "grafana", WORKLOAD + code)
    return json.loads(out) if out.strip() else None


def stat(machine: Machine, path: str) -> str:
    """`<octal mode> <user>:<group>` of a path inside the machine."""
    return machine.run("stat", "-c", "%a %U:%G", path).stdout.strip()


def apt_grafana_com_on_loopback(machine: Machine) -> None:
    """Resolve apt.grafana.com to 127.0.0.1 inside the machine (the host's loopback too)."""
    machine.sh("echo '127.0.0.1 apt.grafana.com' >> /etc/hosts")


def apt_grafana_unreachable(machine: Machine) -> None:
    """Make apt.grafana.com unreachable: on loopback, where nothing listens on 443."""
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", 443)) != 0, "something listens on 127.0.0.1:443"
    apt_grafana_com_on_loopback(machine)


def generated_key(machine: Machine) -> tuple[str, str]:
    """Generate an OpenPGP key with the machine's gpg; return (armored key path, fingerprint)."""
    # gpg needs its agent to make a secret key; the image has gpg (the charm's key check) only.
    machine.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "gpg-agent")
    uid = "Not Grafana <lab@example.invalid>"
    gpg = f"gpg --homedir {GNUPG} --batch --passphrase ''"
    machine.sh(
        f"install -d -m 700 {GNUPG}\n"
        f"{gpg} --quick-gen-key '{uid}' ed25519 sign never\n"
        f"{gpg} --armor --export '{uid}' > /root/not-grafana.asc\n"
    )
    listing = machine.sh(f"{gpg} --with-colons --fingerprint '{uid}'")
    fingerprint = next(
        line.split(":")[9]
        for line in listing.splitlines()
        if line.startswith("fpr:")  # codespell:ignore fpr
    )
    return "/root/not-grafana.asc", fingerprint


def nothing_of_grafana_written(machine: Machine) -> list[str]:
    """The files an install from the repository writes that exist (there should be none)."""
    paths = [KEYRING, SOURCES, PIN, "/etc/grafana/grafana.ini", "/etc/grafana/admin-password"]
    found = [p for p in paths if machine.path(p).exists()]
    status = machine.run("dpkg-query", "-W", "-f=${Status}", "grafana", check=False).stdout
    if "installed" in status:
        found.append(f"dpkg: grafana {status}")
    return found


@contextlib.contextmanager
def apt_grafana_com(machine: Machine, files: Mapping[str, bytes]) -> Iterator[None]:
    """Make https://apt.grafana.com answer, inside the machine, with `files` (by URL path).

    As a network that intercepts the lab's traffic would: the machine resolves apt.grafana.com
    to 127.0.0.1 and trusts a CA made here, whose certificate for apt.grafana.com the server on
    127.0.0.1:443 presents (the machine shares the host's network, so the test serves it).
    """
    directory = "/root/impostor"
    machine.sh(
        f"mkdir -p {directory} && cd {directory}\n"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-keyout ca.key -out ca.crt -subj '/CN=Impostor CA' "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
        "2>/dev/null\n"
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout site.key -out site.csr -subj /CN=apt.grafana.com 2>/dev/null\n"
        "printf 'subjectAltName=DNS:apt.grafana.com\\nextendedKeyUsage=serverAuth\\n' > site.ext\n"
        "openssl x509 -req -in site.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
        "-extfile site.ext -out site.crt 2>/dev/null\n"
        "cp ca.crt /usr/local/share/ca-certificates/impostor.crt\n"
        "update-ca-certificates >/dev/null\n"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        machine.path(f"{directory}/site.crt"), machine.path(f"{directory}/site.key")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 443), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    apt_grafana_com_on_loopback(machine)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def impostor(machine: Machine, key_path: str) -> contextlib.AbstractContextManager[None]:
    """Make https://apt.grafana.com/gpg.key answer, inside the machine, with another key."""
    return apt_grafana_com(machine, {"/gpg.key": machine.path(key_path).read_bytes()})


# Stand-ins for Grafana's .debs: packages named grafana that install one text file. Two releases
# of major 12, one older and one newer major: what the pin must choose between.
STAND_IN_RELEASES = ("11.6.0", "12.0.0", "12.1.0", "13.0.0")
STAND_IN_CONTROL = """\
Package: grafana
Version: {version}
Architecture: amd64
Maintainer: lab <lab@example.invalid>
Description: stand-in for Grafana {version} (tests/machine), not Grafana
"""


def stand_in_repository(machine: Machine) -> dict[str, bytes]:
    """Build apt.grafana.com's layout inside the machine, signed with the generated key.

    `stable main` holds a stand-in grafana package of each STAND_IN_RELEASES; its InRelease is
    signed with generated_key's key (which the caller pins in place of Grafana's). Returns the
    repository's files by URL path, for apt_grafana_com.
    """
    root = "/root/repo"
    pool = "pool/main/g/grafana"
    stanzas = []
    for version in STAND_IN_RELEASES:
        build = f"/root/build/grafana_{version}"
        machine.path(f"{build}/DEBIAN").mkdir(parents=True)
        machine.path(f"{build}/DEBIAN/control").write_text(
            STAND_IN_CONTROL.format(version=version)
        )
        machine.path(f"{build}/usr/share/doc/grafana").mkdir(parents=True)
        machine.path(f"{build}/usr/share/doc/grafana/stand-in").write_text(version)
        deb = f"{pool}/grafana_{version}_amd64.deb"
        machine.run("mkdir", "-p", f"{root}/{pool}")
        machine.run("dpkg-deb", "--build", "--root-owner-group", build, f"{root}/{deb}")
        data = machine.path(f"{root}/{deb}").read_bytes()
        stanzas.append(
            STAND_IN_CONTROL.format(version=version)
            + f"Filename: {deb}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    index = "\n".join(stanzas).encode()
    machine.path(f"{root}/dists/stable/main/binary-amd64").mkdir(parents=True)
    machine.path(f"{root}/dists/stable/main/binary-amd64/Packages").write_bytes(index)
    release = (
        "Origin: stand-in\nSuite: stable\nCodename: stable\nArchitectures: amd64\n"
        f"Components: main\nDate: {email.utils.formatdate(usegmt=True)}\nSHA256:\n"
        f" {hashlib.sha256(index).hexdigest()} {len(index)} main/binary-amd64/Packages\n"
    )
    machine.path(f"{root}/dists/stable/Release").write_text(release)
    machine.sh(
        f"gpg --homedir {GNUPG} --batch --yes --pinentry-mode loopback --passphrase '' "
        f"--clearsign -o {root}/dists/stable/InRelease {root}/dists/stable/Release"
    )
    served = ["dists/stable/InRelease", "dists/stable/main/binary-amd64/Packages"]
    served += [f"{pool}/grafana_{version}_amd64.deb" for version in STAND_IN_RELEASES]
    return {f"/{path}": machine.path(f"{root}/{path}").read_bytes() for path in served}


def installed_version(machine: Machine) -> str:
    """The grafana package's version as dpkg has it installed."""
    return machine.run("dpkg-query", "-W", "-f=${Version}", "grafana").stdout.strip()


# --- a key that is not Grafana's --------------------------------------------------------------


def test_a_key_that_is_not_grafanas_is_refused_with_nothing_written(machine: Machine):
    key, fingerprint = generated_key(machine)

    refused = workload(
        machine,
        f"key = pathlib.Path({key!r}).read_bytes()\n"
        "try:\n"
        "    apt_source.install_from_repository(12, download=lambda url: key)\n"
        "except apt_source.KeyMismatchError as e:\n"
        "    print(json.dumps(str(e)))\n",
    )

    assert refused == (
        f"https://apt.grafana.com/gpg.key served {fingerprint}, not the pinned Grafana key "
        f"{PINNED}; nothing installed"
    )
    assert nothing_of_grafana_written(machine) == []


def test_the_install_hook_blocks_on_a_key_that_is_not_grafanas(machine: Machine):
    key, fingerprint = generated_key(machine)
    grafana = Unit(machine, "grafana", resources=NO_DEB)

    with impostor(machine, key):
        result = grafana.run("install")

    assert result.status == Status(
        "blocked",
        f"https://apt.grafana.com/gpg.key served {fingerprint}, not the pinned Grafana key "
        f"{PINNED}; nothing installed",
    )
    assert nothing_of_grafana_written(machine) == []


# --- the pinned key, a repository apt cannot reach -------------------------------------------


def test_the_pinned_key_gets_a_keyring_source_and_pin_root_0644(machine: Machine):
    key, fingerprint = generated_key(machine)

    workload(
        machine,
        f"apt_source.KEY_FINGERPRINT = {fingerprint!r}\n"
        f"apt_source.add_repository(download=lambda url: pathlib.Path({key!r}).read_bytes())\n"
        "apt_source.pin(12)\n",
    )

    assert stat(machine, KEYRING) == "644 root:root"
    assert stat(machine, SOURCES) == "644 root:root"
    assert stat(machine, PIN) == "644 root:root"
    assert machine.path(KEYRING).read_bytes() == machine.path(key).read_bytes()
    assert machine.path(SOURCES).read_text() == (
        f"deb [signed-by={KEYRING}] https://apt.grafana.com stable main\n"
    )
    # apt reads the pin without a complaint (it warns about a record it cannot parse).
    assert machine.run("apt-cache", "policy").stderr == ""


def test_an_unreachable_grafana_source_breaks_strict_apt_updates_on_the_machine(
    machine: Machine,
):
    # What the charm's rollback (next test) is for. With the source in place and
    # apt.grafana.com unreachable, plain apt only warns and other installs still work, but
    # charmlibs-apt's update (`--error-on=any`), which the Prometheus and node-exporter charms
    # run before they install, fails: a node-exporter unit on the Grafana machine could not
    # install.
    key, fingerprint = generated_key(machine)
    apt_grafana_unreachable(machine)
    workload(
        machine,
        f"apt_source.KEY_FINGERPRINT = {fingerprint!r}\n"
        f"apt_source.add_repository(download=lambda url: pathlib.Path({key!r}).read_bytes())\n",
    )

    plain = machine.run("apt-get", "update", check=False)
    other = machine.run(
        "apt-get", "install", "-y", "--no-install-recommends", "javascript-common", check=False
    )
    strict = workload(
        machine,
        "import subprocess\n"
        "from charmlibs import apt\n"
        "try:\n"
        "    apt.update()\n"
        "except subprocess.CalledProcessError as e:\n"
        "    print(json.dumps(e.returncode))\n",
    )

    assert plain.returncode == 0
    assert "W: Failed to fetch https://apt.grafana.com/dists/stable/InRelease" in plain.stderr
    assert other.returncode == 0, other.stderr
    assert strict == 100


def test_apt_failing_is_a_grafana_error_with_apts_reason_and_the_source_is_removed(
    machine: Machine,
):
    key, fingerprint = generated_key(machine)
    apt_grafana_unreachable(machine)

    outcome = workload(
        machine,
        f"apt_source.KEY_FINGERPRINT = {fingerprint!r}\n"
        f"key = pathlib.Path({key!r}).read_bytes()\n"
        "try:\n"
        "    apt_source.install_from_repository(12, download=lambda url: key)\n"
        "except grafana.GrafanaError as e:\n"
        "    print(json.dumps([type(e).__name__, str(e)]))\n",
    )

    assert outcome is not None
    kind, message = outcome
    assert kind == "InstallError"
    assert message.startswith(
        "apt could not install grafana: E: Failed to fetch "
        "https://apt.grafana.com/dists/stable/InRelease"
    )
    assert nothing_of_grafana_written(machine) == []
    # The machine's apt is as it was: charmlibs-apt's strict update works again.
    workload(machine, "from charmlibs import apt\napt.update()\n")


# --- the version pin, read by the real apt ------------------------------------------------------


def install_from_stand_in(machine: Machine, key: str, fingerprint: str, *majors: int) -> Any:
    """Install each major in turn from the stand-in repository; return the versions installed."""
    return workload(
        machine,
        f"apt_source.KEY_FINGERPRINT = {fingerprint!r}\n"
        f"key = pathlib.Path({key!r}).read_bytes()\n"
        "installed = []\n"
        f"for major in {list(majors)!r}:\n"
        "    apt_source.install_from_repository(major, download=lambda url: key)\n"
        "    installed.append(apt_source.installed_version())\n"
        "print(json.dumps(installed))\n",
    )


def test_the_pin_installs_the_newest_of_its_major_and_a_higher_one_upgrades_in_place(
    machine: Machine,
):
    key, fingerprint = generated_key(machine)

    with apt_grafana_com(machine, stand_in_repository(machine)):
        installed = install_from_stand_in(machine, key, fingerprint, 12, 13)

    # 12.1.0, not 13.0.0 (newer) nor 12.0.0; then 13 over it, by apt, in place.
    assert installed == ["12.1.0", "13.0.0"]
    assert machine.path("/usr/share/doc/grafana/stand-in").read_text() == "13.0.0"
    assert "Pin: version 13.*\n" in machine.path(PIN).read_text()


def test_a_lower_pin_never_takes_apt_back_a_major_and_1001_would(machine: Machine):
    key, fingerprint = generated_key(machine)

    with apt_grafana_com(machine, stand_in_repository(machine)):
        install_from_stand_in(machine, key, fingerprint, 13)
        # What the charm refuses to write: the pin of a lower major than the installed one.
        workload(machine, "apt_source.pin(12)\n")
        machine.run("apt-get", "install", "-y", "grafana")
        machine.run("apt-get", "install", "-y", "--only-upgrade", "grafana")
        kept = installed_version(machine)
        # The priority the charm does not use: from 1000 up apt downgrades to the pinned major.
        pin = machine.path(PIN).read_text()
        machine.path(PIN).write_text(pin.replace("Pin-Priority: 999", "Pin-Priority: 1001"))
        machine.run("apt-get", "install", "-y", "--allow-downgrades", "grafana")
        downgraded = installed_version(machine)

    assert kept == "13.0.0"
    assert downgraded == "12.1.0"


# --- removal ----------------------------------------------------------------------------------


def test_the_remove_hook_takes_grafanas_source_keyring_and_pin_away(machine: Machine):
    key, fingerprint = generated_key(machine)
    apt_grafana_unreachable(machine)
    workload(
        machine,
        f"apt_source.KEY_FINGERPRINT = {fingerprint!r}\n"
        f"apt_source.add_repository(download=lambda url: pathlib.Path({key!r}).read_bytes())\n"
        "apt_source.pin(12)\n",
    )
    assert machine.run("apt-get", "update", "--error-on=any", check=False).returncode != 0
    grafana = Unit(machine, "grafana", resources=NO_DEB)

    result = grafana.run("remove")

    assert result.status == Status("maintenance", "removing: grafana-server stopped and disabled")
    assert nothing_of_grafana_written(machine) == []
    # The other charms' strict updates on this machine work again.
    workload(machine, "from charmlibs import apt\napt.update()\n")


# --- the install hook without apt.grafana.com ------------------------------------------------


def test_the_install_hook_without_apt_grafana_com_blocks_and_retries_with_nothing_written(
    machine: Machine,
):
    apt_grafana_unreachable(machine)
    grafana = Unit(machine, "grafana", resources=NO_DEB)

    installing = grafana.run("install")
    retried = grafana.run("update_status")

    for result in (installing, retried):
        assert result.status.name == "blocked", result.status
        assert result.status.message.startswith(
            "install failed, retrying: cannot download https://apt.grafana.com/gpg.key: "
        )
        assert "Connection refused" in result.status.message
    assert nothing_of_grafana_written(machine) == []
    assert not machine.path("/etc/grafana").exists()
    assert not machine.path("/var/lib/grafana").exists()
    assert grafana.opened_ports == []


# --- dashboards on a fresh machine -----------------------------------------------------------


def test_dashboards_on_a_fresh_machine_create_their_directories_and_files(machine: Machine):
    assert not machine.path("/var/lib/grafana").exists()

    changed = workload(
        machine,
        f"first = provisioning.write_dashboards(pathlib.Path({SHIPPED_DASHBOARDS!r}))\n"
        f"again = provisioning.write_dashboards(pathlib.Path({SHIPPED_DASHBOARDS!r}))\n"
        "print(json.dumps([first, again]))\n",
    )

    assert changed == [True, False]
    shipped = sorted(
        p.name
        for p in pathlib.Path(__file__).parents[2].glob("charms/grafana/src/dashboards/*.json")
    )
    written = sorted(p.name for p in machine.path("/var/lib/grafana/dashboards/juju").iterdir())
    assert written == shipped
    for directory in (
        "/var/lib/grafana",
        "/var/lib/grafana/dashboards",
        "/var/lib/grafana/dashboards/juju",
        "/etc/grafana",
        "/etc/grafana/provisioning",
        "/etc/grafana/provisioning/dashboards",
    ):
        assert stat(machine, directory) == "755 root:root", directory
    provider = "/etc/grafana/provisioning/dashboards/juju.yaml"
    assert stat(machine, provider) == "644 root:root"
    for name in written:
        assert stat(machine, f"/var/lib/grafana/dashboards/juju/{name}") == "644 root:root"
    # The provider points Grafana at the directory the dashboards are in (the shipped value).
    path = workload(
        machine,
        "import yaml\n"
        f"doc = yaml.safe_load(pathlib.Path({provider!r}).read_text())\n"
        "print(json.dumps(doc['providers'][0]['options']['path']))\n",
    )
    assert path == "/var/lib/grafana/dashboards/juju"


# --- the low-port drop-in, read by the real systemd -------------------------------------------

# NOT Grafana's unit and nothing runs from it: the test installs a unit named grafana-server only
# as a carrier for the charm's drop-in, with the two lines of the packaged unit (10.x-13.x,
# packaging/deb/systemd/grafana-server.service) that would keep the grafana user from binding a
# port below 1024. It is never started.
CARRIER = """\
[Unit]
Description=Carrier for the grafana charm's drop-in (tests/machine), not Grafana
[Service]
Type=simple
ExecStart=/bin/false
CapabilityBoundingSet=
PrivateUsers=true
[Install]
WantedBy=multi-user.target
"""
DROPIN = "/etc/systemd/system/grafana-server.service.d/juju-low-ports.conf"


def capabilities(machine: Machine) -> dict[str, str]:
    out = machine.run(
        "systemctl",
        "show",
        "grafana-server",
        "--property=AmbientCapabilities,CapabilityBoundingSet,PrivateUsers",
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture
def carrier(machine: Machine) -> Machine:
    machine.path("/usr/lib/systemd/system/grafana-server.service").write_text(CARRIER)
    machine.run("systemctl", "daemon-reload")
    assert capabilities(machine) == {
        "AmbientCapabilities": "",
        "CapabilityBoundingSet": "",
        "PrivateUsers": "yes",
    }
    return machine


def test_a_port_below_1024_gets_a_drop_in_systemd_reads(carrier: Machine):
    machine = carrier

    changed = workload(
        machine,
        "print(json.dumps([service.allow_low_ports(80), service.allow_low_ports(80)]))\n",
    )

    assert changed == [True, False]
    assert stat(machine, DROPIN) == "644 root:root"
    # The charm reloaded systemd itself: nothing else ran between.
    assert capabilities(machine) == {
        "AmbientCapabilities": "cap_net_bind_service",
        "CapabilityBoundingSet": "cap_net_bind_service",
        "PrivateUsers": "no",
    }


def test_moving_back_above_1024_removes_the_drop_in(carrier: Machine):
    machine = carrier
    workload(machine, "service.allow_low_ports(80)\n")

    changed = workload(machine, "print(json.dumps(service.allow_low_ports(3000)))\n")

    assert changed is True
    assert not machine.path(DROPIN).exists()
    assert capabilities(machine)["PrivateUsers"] == "yes"
    assert capabilities(machine)["AmbientCapabilities"] == ""


def test_stop_disables_the_unit_and_removes_the_drop_in(carrier: Machine):
    machine = carrier
    machine.run("systemctl", "enable", "grafana-server")
    workload(machine, "service.allow_low_ports(80)\n")

    workload(machine, "service.stop()\n")

    enabled = machine.run("systemctl", "is-enabled", "grafana-server", check=False).stdout
    assert enabled.strip() == "disabled"
    assert not machine.path(DROPIN).exists()
    assert capabilities(machine)["AmbientCapabilities"] == ""


# --- the files that hold secrets, at their real paths ----------------------------------------


def test_files_with_secrets_are_root_grafana_0640_and_only_grafana_reads_them(machine: Machine):
    # The user and group the .deb's postinst creates (packaging/deb/control/postinst), made here
    # as it does: this machine has no Grafana package.
    machine.run("addgroup", "--system", "grafana")
    machine.run(
        "adduser", "--system", "--ingroup", "grafana", "--no-create-home",
        "--home", "/usr/share/grafana", "--shell", "/bin/false", "grafana",
    )  # fmt: skip

    workload(
        machine,
        "import dataclasses\n"
        "@dataclasses.dataclass\n"
        "class Source:\n"
        "    uid: str = 'lab_prometheus2_0'\n"
        "    name: str = 'lab/prometheus2/0'\n"
        "    type: str = 'prometheus'\n"
        "    url: str = 'http://10.0.0.7:9090'\n"
        "    basic_auth_user: str = 'scraper'\n"
        "    basic_auth_password: str = 'datasource-secret'\n"
        "    json_data: dict = dataclasses.field(default_factory=dict)\n"
        "ini.write_admin_password('admin-secret')\n"
        "ini.write_secret_key('key-secret')\n"
        "from grafana import database\n"
        "database.write_password('postgresql-secret')\n"
        "ini.write_config(ini.render_config(\n"
        "    port=3000, admin_user='admin', allow_anonymous_access=False,\n"
        "    anonymous_role='Viewer', root_url='', log_level='info', secret_key=True))\n"
        "provisioning.write_datasources(provisioning.render_datasources([Source()]))\n",
    )

    secrets = {
        "/etc/grafana/admin-password": "admin-secret",
        "/etc/grafana/grafana.ini": "admin_password = $__file{/etc/grafana/admin-password}",
        "/etc/grafana/secret-key": "key-secret",
        "/etc/grafana/database-password": "postgresql-secret",
        "/etc/grafana/provisioning/datasources/juju.yaml": "datasource-secret",
    }
    for path, content in secrets.items():
        assert stat(machine, path) == "640 root:grafana", path
        as_grafana = machine.run("runuser", "-u", "grafana", "--", "cat", path, check=False)
        assert as_grafana.returncode == 0, as_grafana.stderr
        assert content in as_grafana.stdout
        as_nobody = machine.run("runuser", "-u", "nobody", "--", "cat", path, check=False)
        assert as_nobody.returncode != 0
        assert "Permission denied" in as_nobody.stderr
