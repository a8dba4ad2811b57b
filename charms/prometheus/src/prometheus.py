"""The Prometheus workload: the Ubuntu package, its files, promtool and the running service.

Nothing here knows about Juju. Files are written compare-then-write and every writer reports
whether it changed anything, so the charm reloads or restarts only when it must. Where the files
live is `PATHS`; tests point it at a temporary directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import json.encoder
import os
import re
import secrets
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from charmlibs import systemd
from lab_monitoring import files, loopback, packaged_service, packages

PACKAGE = "prometheus"
SERVICE = "prometheus"
# The system group the package creates; Prometheus runs with it.
GROUP = "prometheus"
RULES_DIR_NAME = "juju-rules"
_HEADER = "# Managed by the prometheus charm: edits are overwritten. Use its config instead.\n"
_RULES_FILE = re.compile(r"[A-Za-z0-9_.-]+\.rules")
# libyaml's emitter and parser when PyYAML has them (its wheels do): a prometheus.yml for
# thousands of targets is read several times faster, and what the charm's own writer leaves to
# PyYAML (see _dump) is written faster.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Prometheus's own record of its last reload, on its /metrics page.
_RELOAD_OK = "prometheus_config_last_reload_successful"
_RELOAD_OK_AT = "prometheus_config_last_reload_success_timestamp_seconds"
# What Prometheus logs when a reload fails: each error (level=error, logfmt), then this line.
# cmd/prometheus/main.go, the SIGHUP case that calls reloadConfig, in 2.31.2 and 2.42.0 alike.
_RELOAD_FAILED = 'msg="Error reloading config"'
_LOGFMT_ERR = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')
RELOAD_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the workload's files live (the Debian/Ubuntu package's layout by default)."""

    config_dir: Path = Path("/etc/prometheus")
    defaults: Path = Path("/etc/default/prometheus")
    tsdb: Path = Path("/var/lib/prometheus/metrics2")

    @property
    def config(self) -> Path:
        """prometheus.yml."""
        return self.config_dir / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        """The directory of rule files the charm owns (and prunes)."""
        return self.config_dir / RULES_DIR_NAME


PATHS = Paths()


class ConfigError(Exception):
    """promtool rejected a configuration; the message is promtool's."""


class ReloadError(Exception):
    """Prometheus refused to reload its configuration; the message is Prometheus's."""


# Prometheus did not come up; the message says why, from its own log.
StartError = packaged_service.StartError
InstallError = packages.InstallError


@dataclasses.dataclass(frozen=True)
class Installed:
    """What `install_config` did."""

    changed: bool
    rejected_rules: Mapping[str, str] = dataclasses.field(default_factory=dict)


def installed() -> bool:
    """Return True if the prometheus package is installed."""
    return packages.installed(PACKAGE)


def install() -> None:
    """Install the archive's prometheus package, without its recommended packages.

    It recommends prometheus-node-exporter, which this charm does not manage.

    Raises:
        InstallError: apt failed; the message is apt's own error line.
    """
    packages.install(PACKAGE)


def version() -> str | None:
    """Return the version of the installed binary, such as `2.31.2+ds1`, or None."""
    try:
        out = subprocess.run(
            ["prometheus", "--version"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else None


def render_config(
    *,
    scrape_interval: str,
    scrape_timeout: str,
    evaluation_interval: str,
    external_labels: Mapping[str, str],
    scrape_configs: Sequence[Mapping[str, Any]],
) -> str:
    """Return prometheus.yml for these settings and (already validated) scrape configs."""
    global_config: dict[str, Any] = {
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_timeout,
        "evaluation_interval": evaluation_interval,
    }
    if external_labels:
        global_config["external_labels"] = dict(external_labels)
    config = {
        "global": global_config,
        # Relative to prometheus.yml, so a staged copy checks against staged rules.
        "rule_files": [f"{RULES_DIR_NAME}/*.rules"],
        "scrape_configs": [dict(job) for job in scrape_configs],
    }
    return _HEADER + _dump(config)


def render_rules(groups: Mapping[str, Any]) -> str:
    """Return a rules file for `{"groups": [...]}`."""
    return _HEADER + _dump(dict(groups))


# prometheus.yml is mostly what scrape.py builds from relation data: dicts with str keys, lists,
# str and int, nothing else. PyYAML makes a Python node object of every one of them before
# libyaml writes it out, which for thousands of targets takes longer than promtool's whole check,
# so such "plain" data is written directly, in PyYAML's block layout:
#
# - Every string is a JSON string with only ASCII in it. A JSON string literal is a YAML
#   double-quoted scalar: JSON's escapes (\" \\ \b \f \n \r \t \uXXXX) are all YAML 1.1 escapes
#   (gopkg.in/yaml.v2 v2.4.0, which Prometheus reads prometheus.yml with, scannerc.go lines
#   2379-2429). JSON writes a character beyond U+FFFF as a surrogate pair, which yaml.v2 refuses
#   ("found invalid Unicode character escape code", scannerc.go line 2452), so those become
#   YAML's \UXXXXXXXX; a string holding a lone surrogate is not plain (YAML cannot carry it).
#   On one line and all ASCII, no string can hit YAML's line folding, its characters that are
#   not allowed in a file (readerc.go line 342) or its line breaks beyond \n (U+0085, U+2028).
# - A key is written bare when it is an identifier that YAML 1.1 reads as a string. In yaml.v2
#   (resolve.go, resolveTable and resolveMapList) and PyYAML's resolver, a bare word starting
#   with a letter or `_` is something else only as one of _YAML11_WORDS (bools and nulls: y,
#   on, NULL, ...), so those are quoted in any case: Prometheus would still read such a label
#   name as text (it decodes keys into strings), but PyYAML, and any YAML 1.1 reader decoding
#   into generic types, would not. Other keys are JSON strings.
# - An int is written in decimal, as PyYAML writes it.
#
# Anything else (the operator's scrape-jobs: floats, bools, nulls, dates, anchors) is left to
# PyYAML. See _dump.
_QUOTE = json.encoder.encode_basestring_ascii  # json.dumps's own C function for a str
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
_ASTRAL = re.compile("([\U00010000-\U0010ffff])")
# PyYAML's emitter writes a key longer than this as an explicit `? key`; both readers refuse a
# plain (implicit) key over 1024 characters.
_MAX_KEY = 128
_KEYS: dict[str, str] = {}  # each key as written, for the few the charm repeats thousands of times


class _NotPlainError(Exception):
    """The data holds something the plain writer leaves to PyYAML."""


def _dump(data: dict[str, Any]) -> str:
    """Return `data` as a YAML document: plain data by the plain writer, the rest by PyYAML.

    When only some items of a top-level list are not plain (an operator's scrape job with a
    boolean), PyYAML writes the document with each plain item swapped for a token, and the
    plain writer's text of that item replaces the token's line: one PyYAML call, so its anchors
    stay unique in the document. If the tokens are not found where expected, PyYAML writes it all.
    """
    try:
        return _plain(data, set())
    except _NotPlainError:
        pass
    token = f"plain-{secrets.token_hex(8)}-"
    plain: list[str] = []
    seen: set[int] = set()  # across items too: nothing is written twice (see _see)
    skeleton: dict[str, Any] = {}
    for key, value in data.items():
        if type(value) is list:
            value = [_plain_or_token(item, token, plain, seen) for item in value]
        skeleton[key] = value
    # Items of a top-level list are written at column 0 (PyYAML's indentless block lists).
    parts = re.split(rf"^- {token}(\d+)\n", _pyyaml(skeleton), flags=re.MULTILINE)
    if parts[1::2] != [str(n) for n in range(len(plain))]:
        return _pyyaml(data)
    parts[1::2] = plain
    return "".join(parts)


def _plain_or_token(item: object, token: str, plain: list[str], seen: set[int]) -> object:
    """Return a token for `item`, its text kept in `plain`; or `item` itself if it is not plain."""
    out: list[str] = []
    try:
        _item(item, "- ", "  ", out, seen)
    except _NotPlainError:
        return item
    plain.append("".join(out))
    return f"{token}{len(plain) - 1}"


def _pyyaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=False)


def _plain(data: dict[str, Any] | list[Any], seen: set[int]) -> str:
    """Return `data` as block YAML if it is plain data; raise _NotPlainError otherwise."""
    out: list[str] = []
    if type(data) is dict and data:
        _mapping(data, "", "", out, seen)
    elif type(data) is list and data:
        _sequence(data, "", "", out, seen)
    else:
        out.append(f"{_flow(data)}\n")
    return "".join(out)


def _mapping(
    data: dict[Any, Any], indent: str, first: str, out: list[str], seen: set[int]
) -> None:
    """Write a non-empty dict's lines, its keys at `indent` (the first line starts `first`)."""
    _see(data, seen)
    inner = indent + "  "
    prefix = first
    for key, value in data.items():
        name = _KEYS.get(key) if type(key) is str else None
        if name is None:
            name = _key(key)
        kind = type(value)
        if kind is str:
            out.append(f"{prefix}{name}: {_string(value)}\n")
        elif kind is dict and value:
            out.append(f"{prefix}{name}:\n")
            _mapping(value, inner, inner, out, seen)
        elif kind is list and value:
            out.append(f"{prefix}{name}:\n")
            _sequence(value, indent, indent, out, seen)  # indentless, as PyYAML writes it
        else:
            out.append(f"{prefix}{name}: {_flow(value)}\n")
        prefix = indent


def _sequence(data: list[Any], indent: str, first: str, out: list[str], seen: set[int]) -> None:
    """Write a non-empty list's lines, its `- ` at `indent` (the first line starts `first`)."""
    _see(data, seen)
    inner = indent + "  "
    dash = indent + "- "
    prefix = first + "- "
    for item in data:
        _item(item, prefix, inner, out, seen)
        prefix = dash


def _item(item: object, prefix: str, inner: str, out: list[str], seen: set[int]) -> None:
    """Write one list item: its first line starts `prefix` (`- ` included), the rest `inner`."""
    if type(item) is str:
        out.append(f"{prefix}{_string(item)}\n")
    elif type(item) is dict and item:
        _mapping(item, inner, prefix, out, seen)
    elif type(item) is list and item:
        _sequence(item, inner, prefix, out, seen)
    else:
        out.append(f"{prefix}{_flow(item)}\n")


def _see(container: object, seen: set[int]) -> None:
    """Raise _NotPlainError for a dict or list already written (or being written) in this document.

    Such a one is shared, or contains itself: PyYAML writes it once, with an anchor, where
    copies could multiply (a few lines of YAML aliases in scrape-jobs can stand for billions).
    """
    if id(container) in seen:
        raise _NotPlainError
    seen.add(id(container))


def _flow(value: object) -> str:
    """Return a scalar or an empty collection as written on one line."""
    if type(value) is str:
        return _string(value)
    if type(value) is int:
        return str(value)
    if type(value) is dict and not value:
        return "{}"
    if type(value) is list and not value:
        return "[]"
    raise _NotPlainError


def _string(text: str) -> str:
    quoted = _QUOTE(text)
    # Rare: a surrogate pair (or a literal backslash before "ud", which takes the same path).
    return _astral(text) if "\\ud" in quoted else quoted


def _astral(text: str) -> str:
    """Quote `text` with its characters beyond the Basic Multilingual Plane as 8-digit escapes."""
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise _NotPlainError
    parts = _ASTRAL.split(text)  # even: runs of other characters; odd: one astral character
    escaped = [
        f"\\U{ord(part):08x}" if n % 2 else _QUOTE(part)[1:-1] for n, part in enumerate(parts)
    ]
    return f'"{"".join(escaped)}"'


def _key(key: object) -> str:
    """Return a mapping key as written; raise _NotPlainError for a key PyYAML must write."""
    if type(key) is not str:
        raise _NotPlainError
    bare = _IDENTIFIER.fullmatch(key) and key.lower() not in _YAML11_WORDS
    name = key if bare else _string(key)
    if len(name) > _MAX_KEY:
        raise _NotPlainError
    if len(_KEYS) < 1000:
        _KEYS[key] = name
    return name


def flags(
    *,
    port: int,
    retention_time: str,
    retention_size: str,
    external_url: str,
    log_level: str,
) -> list[str]:
    """Return the command-line flags for these settings (only flags Prometheus 2.31 knows)."""
    args = [
        f"--config.file={PATHS.config}",
        f"--storage.tsdb.path={PATHS.tsdb}",
        f"--storage.tsdb.retention.time={retention_time}",
        f"--web.listen-address=:{port}",
        # No --web.enable-lifecycle: it would let anyone who reaches the port POST /-/quit.
        # The charm reloads with SIGHUP instead (see reload).
        f"--log.level={log_level}",
    ]
    if retention_size:
        args.append(f"--storage.tsdb.retention.size={retention_size}")
    if external_url:
        args.append(f"--web.external-url={external_url}")
    return args


def write_flags(args: Sequence[str]) -> bool:
    """Write the flags to the file the packaged systemd unit reads; return True if it changed.

    Raises:
        ValueError: a flag would not survive systemd's word splitting (a bug in the caller).
    """
    return files.write(PATHS.defaults, files.args_line(args, _HEADER))


def install_config(config: str, rules: Mapping[str, str]) -> Installed:
    """Check prometheus.yml and rule files with promtool, then install what passed.

    Everything is staged in a temporary directory first. A rule file promtool rejects is left
    out (and reported in `rejected_rules`); if prometheus.yml itself is rejected nothing is
    written and ConfigError is raised. Stale rule files in the charm's rules directory are
    removed. Nothing is checked or written when the live files already match.

    Raises:
        ConfigError: promtool rejected prometheus.yml (the message is promtool's).
    """
    for name in rules:
        if not _RULES_FILE.fullmatch(name):
            raise ValueError(f"bad rules file name {name!r}")
    live_rules = _live_rules()
    if rules == live_rules and files.read(PATHS.config) == config:
        return Installed(changed=False)

    rejected: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="prometheus-charm-") as tmp:
        stage = Path(tmp)
        (stage / RULES_DIR_NAME).mkdir()
        for name, text in rules.items():
            staged = stage / RULES_DIR_NAME / name
            staged.write_text(text)
            # Files identical to live ones passed this check when they were installed.
            if live_rules.get(name) != text:
                error = _promtool(stage, "check", "rules", f"{RULES_DIR_NAME}/{name}")
                if error:
                    rejected[name] = error
                    staged.unlink()
        (stage / "prometheus.yml").write_text(config)
        error = _promtool(stage, "check", "config", "prometheus.yml")
        if error:
            raise ConfigError(error)

    kept = {name: text for name, text in rules.items() if name not in rejected}
    changed = _sync_rules(kept, live_rules)
    # 0640 and group prometheus: scrape-jobs may hold credentials.
    changed |= files.write(PATHS.config, config, mode=0o640, group=GROUP)
    return Installed(changed=changed, rejected_rules=rejected)


def check_live_config() -> str | None:
    """Run promtool on the live prometheus.yml (and its rules); return its error, or None."""
    return _promtool(PATHS.config_dir, "check", "config", PATHS.config.name)


def job_count() -> int:
    """Return how many scrape jobs the live prometheus.yml has (0 if it is not there)."""
    try:
        config = yaml.load(files.read(PATHS.config) or "", Loader=_LOADER) or {}  # noqa: S506
    except yaml.YAMLError:
        return 0
    return len(config.get("scrape_configs") or [])


def tsdb_filesystem_size() -> int:
    """Return the size in bytes of the filesystem that holds (or will hold) the TSDB."""
    path = PATHS.tsdb
    # Before the package is installed the TSDB directory does not exist yet.
    while not path.exists():
        path = path.parent
    stat = os.statvfs(path)
    return stat.f_blocks * stat.f_frsize


def health() -> packaged_service.Health:
    """Return whether Prometheus is up, starting, failing (crashing) or stopped."""
    return packaged_service.health(SERVICE, ready)


def ready() -> bool:
    """Return True if Prometheus answers /-/ready (it has loaded its TSDB and serves queries)."""
    return loopback.get_status(_local_url("/-/ready"), timeout=2) == 200


def start() -> bool:
    """Enable and start the service; return True once it is ready, False if still starting.

    Raises:
        StartError: it died (a taken port, a broken flag, ...); the message says why.
    """
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason)


def restart() -> bool:
    """Restart the service (needed for new flags); return and raise as `start` does."""
    return packaged_service.confirmed_start(SERVICE, ready, failure_reason, restart=True)


def allow_low_ports(port: int) -> bool:
    """Let Prometheus bind `port` if it is below 1024; return True if the service needs a restart.

    The packaged unit runs as user prometheus with no capabilities (ENVIRONMENT.md), so a
    systemd drop-in grants CAP_NET_BIND_SERVICE for such a port and is removed otherwise.
    """
    return packaged_service.allow_low_ports(SERVICE, port < 1024, PACKAGE)


def stop() -> None:
    """Stop and disable the service, and remove the charm's drop-in (gone already is fine)."""
    packaged_service.stop(SERVICE, PACKAGE)


# The Go error for a port that cannot be bound: "listen tcp :80: bind: permission denied".
_LISTEN_ERROR = re.compile(r"listen tcp (?P<host>\S*?):(?P<port>\d+): bind: (?P<why>.+)")


def failure_reason(log: Sequence[str]) -> str:
    """Say in one line why Prometheus died, from its own log lines (oldest first)."""
    for line in reversed(log):
        fields = packaged_service.logfmt(line)
        if fields.get("level", "error") not in ("error", "fatal"):
            continue  # an info or warning line
        # A line that is not logfmt is a usage error printed before logging starts
        # ("prometheus: error: unknown long flag ...").
        text = ": ".join(filter(None, (fields.get("msg"), fields.get("err")))) or line.strip()
        listen = _LISTEN_ERROR.search(text)
        if listen:
            where = f"{listen['host']}:{listen['port']}"
            return f"prometheus cannot listen on {where}: {listen['why']}"
        return f"prometheus failed to start: {text}"
    return "prometheus failed to start (see journalctl -u prometheus)"


def reload(timeout: float = RELOAD_TIMEOUT) -> float:
    """Make Prometheus re-read prometheus.yml and its rules; return how long it took (seconds).

    The signal goes through systemd (`systemctl reload`, the packaged unit's ExecReload sends
    SIGHUP), then the charm waits for Prometheus's own word. A reload that worked moves
    `prometheus_config_last_reload_success_timestamp_seconds` (and leaves
    `prometheus_config_last_reload_successful` at 1). A refused one cannot be told from one not
    done yet by the metrics alone: after a first refusal they stay as they are. So the journal
    is read too, from a cursor taken before the signal, for the error lines Prometheus logs
    when it refuses (at every log level: they are errors); they are its reason.

    Raises:
        ReloadError: Prometheus refused the configuration (the message is Prometheus's), did
            not confirm the reload within `timeout` seconds, or was not running to get it
            (systemctl's words: a process dying between two hooks' checks, say).
    """
    before = _reload_metrics()
    _, cursor = journal(None)
    started = time.monotonic()
    try:
        signal_reload()
    except systemd.SystemdError as e:
        raise ReloadError(f"systemctl could not reload prometheus: {_stderr(e)}") from None
    while True:
        after = _reload_metrics()
        if after and after[0] == 1 and (before is None or after[1] > before[1]):
            return time.monotonic() - started
        reason = _refusal(journal(cursor)[0])
        if reason is not None:
            raise ReloadError(reason)
        if time.monotonic() - started > timeout:
            raise ReloadError(
                f"Prometheus did not confirm the reload within {timeout:.0f}s"
                " (see journalctl -u prometheus)"
            )
        time.sleep(0.05)


def signal_reload() -> None:
    """Ask systemd to reload Prometheus: the packaged unit's `ExecReload=/bin/kill -HUP $MAINPID`.

    The unit is Debian's debian/prometheus.service, the same in jammy's 2.31.2+ds1 (its
    changelog from 2.31.1+ds1-1 to 2.42.0+ds-5 changes the unit only by After=time-sync.target).
    """
    systemd.service_reload(SERVICE)


def _stderr(error: systemd.SystemdError) -> str:
    """Return systemctl's own complaint from a SystemdError (its stderr line), else the error."""
    text = str(error)
    return text.rpartition("stderr:")[2].strip() or text


def journal(after: str | None) -> tuple[list[str], str]:
    """Read Prometheus's own journal lines after cursor `after`; return them and the cursor.

    `after=None` reads nothing and only takes a cursor (before the reload is signalled);
    `after=""` (the journal was empty when the cursor was taken) reads all of them.
    """
    if after is None:
        return [], packaged_service.journal_cursor() or ""
    return packaged_service.service_log(SERVICE, after or None), after


def _reload_metrics() -> tuple[float, float] | None:
    """Return Prometheus's (last reload successful, its time), or None if it does not answer."""
    try:
        # Built from our own flags file, the URL is always http://127.0.0.1:<port>/...
        with loopback.open_url(_local_url("/metrics"), timeout=5) as response:
            text = response.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (_RELOAD_OK, _RELOAD_OK_AT):
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    if len(values) < 2:
        return None
    return values[_RELOAD_OK], values[_RELOAD_OK_AT]


def _refusal(lines: Sequence[str]) -> str | None:
    """Return Prometheus's reason if these log lines hold a refused reload, else None."""
    errors = []
    for line in lines:
        if "level=error" not in line:
            continue
        match = _LOGFMT_ERR.search(line)
        if match:
            with contextlib.suppress(ValueError):
                errors.append(json.loads(f'"{match.group(1)}"'))  # logfmt quotes as JSON does
        if _RELOAD_FAILED in line:
            return "; ".join(dict.fromkeys(errors)) or line
    return None


def _local_url(path: str) -> str:
    """Return the loopback URL of `path` for the running flags (port and route prefix)."""
    flags = dict(arg.partition("=")[::2] for arg in files.read_args(PATHS.defaults))
    port = flags.get("--web.listen-address", ":9090").rpartition(":")[2] or "9090"
    prefix = urllib.parse.urlsplit(flags.get("--web.external-url", "")).path.rstrip("/")
    return f"http://127.0.0.1:{port}{prefix}{path}"


def _promtool(cwd: Path, *args: str) -> str | None:
    """Run promtool in `cwd`; return its complaint as one line, or None if it is satisfied."""
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    lines = (line.strip() for line in (result.stderr or result.stdout).splitlines())
    return " ".join(line.removeprefix("FAILED:").strip() for line in lines if line) or (
        f"promtool exited with {result.returncode}"
    )


def _live_rules() -> dict[str, str]:
    if not PATHS.rules_dir.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(PATHS.rules_dir.glob("*.rules"))}


def _sync_rules(rules: Mapping[str, str], live: Mapping[str, str]) -> bool:
    """Make the rules directory hold exactly `rules`; return True if anything changed."""
    PATHS.rules_dir.mkdir(parents=True, exist_ok=True)
    changed = False
    for name in live.keys() - rules.keys():
        (PATHS.rules_dir / name).unlink()
        changed = True
    for name, text in rules.items():
        changed |= files.write(PATHS.rules_dir / name, text)
    return changed
