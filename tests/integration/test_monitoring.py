"""The deployed bundle does what a user checks by hand: log in, see data, scale, upgrade.

Every test leaves the model as it found it (one unit of each application, related), so each one
also runs alone (`tox -e integration -- -k refresh`).
"""

import base64
import json
import pathlib
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import jubilant
import pytest
import yaml
from lab_monitoring.interfaces import grafana_source

T = TypeVar("T")

GRAFANA_PORT = 3000
PROMETHEUS_PORT = 9090
RELATION = ("prometheus:grafana-source", "grafana:grafana-source")


# --- helpers --------------------------------------------------------------------------------


class Login:
    """Grafana's admin login as get-admin-password returns it; never printed."""

    def __init__(self, results: dict[str, Any]):
        self.user: str = results["username"]
        self._password: str = results["admin-password"]

    def with_password(self, password: str) -> "Login":
        return Login({"username": self.user, "admin-password": password})

    def password_param(self) -> dict[str, str]:
        """The reset-admin-password parameter that sets this login's password."""
        return {"password": self._password}

    def same_password(self, other: "Login") -> bool:
        """Compare without letting pytest print either password."""
        return self._password == other._password

    def header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self._password}".encode()).decode()
        return f"Basic {token}"

    def __repr__(self) -> str:
        return f"Login(user={self.user!r})"


def admin_login(juju: jubilant.Juju) -> Login:
    return Login(juju.run("grafana/leader", "get-admin-password").results)


def address(juju: jubilant.Juju, app: str) -> str:
    """The address of the application's first unit."""
    units = juju.status().apps[app].units
    return units[min(units, key=unit_number)].public_address


def unit_number(unit: str) -> int:
    return int(unit.rsplit("/", 1)[1])


def get_json(url: str, login: Login | None = None, **query: str) -> Any:
    if query:
        url = f"{url}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url)
    if login is not None:
        request.add_header("Authorization", login.header())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def grafana(juju: jubilant.Juju, path: str, login: Login | None, **query: str) -> Any:
    return get_json(f"http://{address(juju, 'grafana')}:{GRAFANA_PORT}{path}", login, **query)


def prometheus_sources(juju: jubilant.Juju, login: Login) -> dict[str, dict[str, Any]]:
    """Grafana's Prometheus data sources by uid."""
    sources = grafana(juju, "/api/datasources", login)
    return {source["uid"]: source for source in sources if source["type"] == "prometheus"}


def expected_uids(status: jubilant.Status) -> set[str]:
    """The uid the Grafana charm gives each Prometheus unit, computed by the shared library."""
    return {
        grafana_source.datasource_uid(status.model.name, "prometheus", unit_number(unit))
        for unit in status.apps["prometheus"].units
    }


def poll(fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 180) -> T:
    """Fetch until `until` holds or the timeout passes, and return the last value.

    Grafana and Prometheus apply a change a few seconds after Juju reports the hooks done, and
    restart or reload meanwhile; the caller asserts on what this returns.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fetch()
            if until(value) or time.monotonic() > deadline:
                return value
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(5)


def uids_in_grafana(juju: jubilant.Juju, login: Login, expected: set[str]) -> set[str]:
    """Grafana's Prometheus data source uids, once they are `expected` (or after 3 minutes)."""
    return set(poll(lambda: prometheus_sources(juju, login), lambda s: set(s) == expected))


def settled(status: jubilant.Status) -> bool:
    return jubilant.all_active(status) and jubilant.all_agents_idle(status)


def prometheus_process(juju: jubilant.Juju) -> tuple[str, str]:
    """The PID of the running Prometheus and when that process started."""
    pid = juju.ssh("prometheus/0", "systemctl show --property=MainPID --value prometheus").strip()
    assert pid not in ("", "0"), "prometheus is not running"
    return pid, juju.ssh("prometheus/0", f"ps -o lstart= -p {pid}").strip()


# --- tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login(juju: jubilant.Juju) -> Login:
    return admin_login(juju)


def test_get_admin_password_logs_in_to_grafana_api(juju: jubilant.Juju, login: Login):
    user = grafana(juju, "/api/user", login)

    assert user["login"] == login.user
    assert user["isGrafanaAdmin"] is True


def test_grafana_refuses_its_default_admin_password(juju: jubilant.Juju, login: Login):
    # The charm never lets Grafana start before the password file is in place, so Grafana's
    # default admin/admin never existed (GRAFANA-FACTS.md item 4).
    with pytest.raises(urllib.error.HTTPError) as refused:
        grafana(juju, "/api/user", Login({"username": "admin", "admin-password": "admin"}))

    assert refused.value.code == 401
    assert grafana(juju, "/api/user", login)["login"] == login.user


def test_admin_password_file_is_readable_by_grafana_only(juju: jubilant.Juju):
    stat = juju.ssh("grafana/0", "sudo stat -c '%a %U %G' /etc/grafana/admin-password").strip()
    ini = juju.ssh("grafana/0", "sudo grep '^admin_password' /etc/grafana/grafana.ini").strip()

    assert stat == "640 root grafana"
    assert ini == "admin_password = $__file{/etc/grafana/admin-password}"


def test_reset_admin_password_takes_effect_through_grafanas_cli(juju: jubilant.Juju, login: Login):
    # The CLI runs by absolute path, which 11.x and 12.x need; the action confirms by a login.
    new = login.with_password("integration-" + secrets.token_urlsafe(12))
    juju.run("grafana/leader", "reset-admin-password", new.password_param())
    try:
        assert grafana(juju, "/api/user", new)["login"] == login.user
        with pytest.raises(urllib.error.HTTPError) as refused:
            grafana(juju, "/api/user", login)
        assert refused.value.code == 401
        assert admin_login(juju).same_password(new)
    finally:
        juju.run("grafana/leader", "reset-admin-password", login.password_param())

    assert grafana(juju, "/api/user", login)["login"] == login.user


def test_grafana_api_refuses_requests_without_login(juju: jubilant.Juju):
    with pytest.raises(urllib.error.HTTPError) as refused:
        grafana(juju, "/api/datasources", None)

    assert refused.value.code == 401


def test_grafana_lists_prometheus_with_the_expected_uid(juju: jubilant.Juju, login: Login):
    status = juju.status()
    expected = expected_uids(status)

    sources = poll(lambda: prometheus_sources(juju, login), lambda s: set(s) == expected)

    assert set(sources) == expected
    url = urllib.parse.urlsplit(next(iter(sources.values()))["url"])
    assert url.hostname == status.apps["prometheus"].units["prometheus/0"].public_address
    assert url.port == PROMETHEUS_PORT


def test_query_through_grafana_returns_up_series(juju: jubilant.Juju, login: Login):
    (uid,) = expected_uids(juju.status())
    path = f"/api/datasources/proxy/uid/{uid}/api/v1/query"

    answer = poll(
        lambda: grafana(juju, path, login, query="up"),
        lambda a: bool(a.get("data", {}).get("result")),
    )

    assert answer["status"] == "success"
    up = {series["metric"]["job"]: series["value"][1] for series in answer["data"]["result"]}
    assert up["prometheus"] == "1"


def test_prometheus_scrapes_grafana(juju: jubilant.Juju):
    url = f"http://{address(juju, 'prometheus')}:{PROMETHEUS_PORT}/api/v1/targets"

    def grafana_targets() -> list[dict[str, Any]]:
        targets = get_json(url)["data"]["activeTargets"]
        return [t for t in targets if t["labels"].get("juju_application") == "grafana"]

    targets = poll(grafana_targets, lambda ts: bool(ts) and all(t["health"] == "up" for t in ts))

    assert targets, "no target labelled juju_application=grafana"
    assert [t["health"] for t in targets] == ["up"] * len(targets)
    hosts = {urllib.parse.urlsplit(t["scrapeUrl"]).hostname for t in targets}
    assert hosts == {address(juju, "grafana")}


def test_scrape_interval_change_is_applied_without_restart(juju: jubilant.Juju):
    before = prometheus_process(juju)
    config_url = f"http://{address(juju, 'prometheus')}:{PROMETHEUS_PORT}/api/v1/status/config"
    juju.config("prometheus", {"scrape-interval": "23s"})
    try:
        juju.wait(settled, error=jubilant.any_error)
        on_disk = yaml.safe_load(
            juju.ssh("prometheus/0", "sudo cat /etc/prometheus/prometheus.yml")
        )
        running = poll(
            lambda: yaml.safe_load(get_json(config_url)["data"]["yaml"]),
            lambda config: config["global"]["scrape_interval"] == "23s",
        )

        assert on_disk["global"]["scrape_interval"] == "23s"
        assert running["global"]["scrape_interval"] == "23s"
        assert prometheus_process(juju) == before
    finally:
        juju.config("prometheus", reset="scrape-interval")
        juju.wait(settled, error=jubilant.any_error)


def test_each_prometheus_unit_is_a_data_source(juju: jubilant.Juju, login: Login):
    juju.add_unit("prometheus")
    status = juju.wait(
        lambda s: len(s.apps["prometheus"].units) == 2 and settled(s), error=jubilant.any_error
    )
    both = expected_uids(status)
    added = max(status.apps["prometheus"].units, key=unit_number)

    assert len(both) == 2
    assert uids_in_grafana(juju, login, both) == both

    juju.remove_unit(added)
    status = juju.wait(
        lambda s: len(s.apps["prometheus"].units) == 1 and settled(s), error=jubilant.any_error
    )
    remaining = expected_uids(status)

    assert remaining < both
    assert uids_in_grafana(juju, login, remaining) == remaining


def test_removing_the_relation_removes_the_data_source(juju: jubilant.Juju, login: Login):
    uids = expected_uids(juju.status())
    juju.remove_relation(*RELATION)
    try:
        # Without a data source Grafana may show another status: wait for the hooks to finish.
        juju.wait(
            lambda s: (
                "grafana-source" not in s.apps["grafana"].relations and jubilant.all_agents_idle(s)
            ),
            error=jubilant.any_error,
        )

        assert uids_in_grafana(juju, login, set()) == set()
    finally:
        juju.integrate(*RELATION)
        juju.wait(settled, error=jubilant.any_error)

    assert uids_in_grafana(juju, login, uids) == uids


@pytest.mark.parametrize("app", ["prometheus", "grafana"])
def test_refresh_keeps_admin_password_and_data_source_uids(
    juju: jubilant.Juju, login: Login, charm_files: dict[str, pathlib.Path], app: str
):
    uids = expected_uids(juju.status())
    assert uids_in_grafana(juju, login, uids) == uids
    revision = juju.status().apps[app].charm_rev

    # Juju gives a local charm a new revision on every refresh, so this runs upgrade-charm just
    # as a rebuilt .charm would.
    juju.refresh(app, path=charm_files[app])
    juju.wait(lambda s: s.apps[app].charm_rev > revision and settled(s), error=jubilant.any_error)

    unchanged = admin_login(juju).same_password(login)
    assert unchanged, "get-admin-password returns a different password after the refresh"
    assert grafana(juju, "/api/user", login)["login"] == login.user
    assert uids_in_grafana(juju, login, uids) == uids


# --- alerting -------------------------------------------------------------------------------

ALERTMANAGER_PORT = 9093


def test_prometheus_sends_its_alerts_to_the_alertmanager_unit(juju: jubilant.Juju):
    url = f"http://{address(juju, 'prometheus')}:{PROMETHEUS_PORT}/api/v1/alertmanagers"
    wanted = f"http://{address(juju, 'alertmanager')}:{ALERTMANAGER_PORT}/api/v2/alerts"

    def active() -> list[str]:
        return [a["url"] for a in get_json(url)["data"]["activeAlertmanagers"]]

    assert poll(active, lambda urls: urls == [wanted]) == [wanted]


def test_the_watchdog_reaches_the_alertmanager_with_prometheus_s_topology(juju: jubilant.Juju):
    url = f"http://{address(juju, 'alertmanager')}:{ALERTMANAGER_PORT}/api/v2/alerts"

    def watchdogs() -> list[dict[str, Any]]:
        return [a for a in get_json(url) if a["labels"]["alertname"] == "Watchdog"]

    # Prometheus sends a firing alert again every minute; 3 minutes cover a missed first send.
    found = poll(watchdogs, bool)

    assert [a["labels"]["juju_application"] for a in found] == ["prometheus"]
    assert found[0]["labels"]["juju_model"] == juju.status().model.name


def test_grafana_lists_the_alertmanager_data_source(juju: jubilant.Juju, login: Login):
    status = juju.status()
    uid = grafana_source.datasource_uid(status.model.name, "alertmanager", 0)

    def alertmanagers() -> dict[str, dict[str, Any]]:
        sources = grafana(juju, "/api/datasources", login)
        return {s["uid"]: s for s in sources if s["type"] == "alertmanager"}

    sources = poll(alertmanagers, lambda s: uid in s)

    assert set(sources) == {uid}
    assert sources[uid]["jsonData"]["implementation"] == "prometheus"
    url = urllib.parse.urlsplit(sources[uid]["url"])
    assert url.hostname == address(juju, "alertmanager")
    assert url.port == ALERTMANAGER_PORT


# Alertmanager sends it over grafana-dashboard; its uid is the one COS's provider gives the file
# (shake_256 of "alertmanager-src/grafana_dashboards/alertmanager-overview.json").
ALERTMANAGER_OVERVIEW = "abe02f9597471092f3e5d179f282a75418c6c007"


def test_grafana_provisions_the_alertmanager_overview_with_live_data(
    juju: jubilant.Juju, login: Login
):
    dashboard = poll(
        lambda: grafana(juju, f"/api/search?dashboardUIDs={ALERTMANAGER_OVERVIEW}", login),
        lambda found: len(found) == 1,
    )
    assert dashboard[0]["title"] == "Alertmanager overview"
    (uid,) = expected_uids(juju.status())

    # The "Alertmanagers" panel, through the Prometheus data source as the panel asks it: the
    # bundle's one unit, scraped over metrics-endpoint.
    answer = poll(
        lambda: grafana(
            juju,
            f"/api/datasources/proxy/uid/{uid}/api/v1/query",
            login,
            query="count(alertmanager_build_info)",
        ),
        lambda a: bool(a["data"]["result"]),
    )
    assert answer["data"]["result"][0]["value"][1] == "1"
