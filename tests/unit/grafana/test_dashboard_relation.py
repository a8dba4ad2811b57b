"""The Grafana charm on `grafana-dashboard`: related charms' dashboards become files, and go."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import lzma
from pathlib import Path
from typing import Any

import charm
import pytest
from grafana import provisioning
from grafana_testing import MODEL, FakeGrafana, peers, state
from lab_monitoring.interfaces import grafana_dashboard, grafana_source
from ops import testing

FIXTURES = Path(__file__).parents[1] / "lab_monitoring" / "fixtures"
# What Canonical's opentelemetry-collector writes on grafana-dashboards-provider (recorded by
# running its code, see the fixtures' README): four dashboards, one a marketplace export.
OTELCOL = json.loads((FIXTURES / "otelcol_grafana_dashboards_provider.json").read_text())
OTELCOL_DASHBOARDS = OTELCOL["local_app_data"]["dashboards"]
SOURCE_UID = grafana_source.datasource_uid("lab", "prometheus", 0)
SHIPPED = {p.name for p in charm.DASHBOARDS.glob("*.json")}


def dashboard(**fields: Any) -> dict[str, Any]:
    return {"title": "Lab", "uid": "lab-uid", "version": 1, "panels": [], **fields}


def databag(*dashboards: dict[str, Any], **template_fields: Any) -> dict[str, str]:
    templates = {
        f"file:d{i}": {"charm": "demo", "content": grafana_dashboard.encode(json.dumps(d))}
        | template_fields
        for i, d in enumerate(dashboards)
    }
    return {"dashboards": json.dumps({"templates": templates, "uuid": "1"})}


def sender(app: str = "demo", data: dict[str, str] | None = None, **kwargs) -> testing.Relation:
    return testing.Relation(
        "grafana-dashboard", remote_app_name=app, remote_app_data=data or {}, **kwargs
    )


def prometheus_source() -> testing.Relation:
    data = {"model": "lab", "model_uuid": MODEL.uuid, "application": "prometheus"}
    data |= {"type": "prometheus", "extra_fields": {}, "secure_extra_fields": {}}
    return testing.Relation(
        "grafana-source",
        remote_app_name="prometheus",
        remote_app_data={"grafana_source_data": json.dumps(data)},
        remote_units_data={0: {"grafana_source_host": "http://10.0.0.5:9090"}},
    )


def related(fake: FakeGrafana) -> dict[str, dict[str, Any]]:
    """The dashboard files from relations on the machine, parsed: file name -> dashboard."""
    return {n: json.loads(c) for n, c in fake.dashboards.items() if n not in SHIPPED}


def settled(ctx, fake: FakeGrafana, *relations: testing.Relation, **kwargs) -> testing.State:
    """A unit that provisioned what `relations` send, with the machine's log then cleared."""
    out = ctx.run(
        ctx.on.update_status(),
        state(relations=[peers(), prometheus_source(), *relations], **kwargs),
    )
    fake.settle()
    return out


# --- a dashboard arrives ----------------------------------------------------------------------


def test_a_sent_dashboard_is_written_bound_to_our_data_source_and_reloaded(ctx, installed):
    panel = {
        "type": "timeseries",
        "title": "up",
        "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
        "targets": [{"expr": "up", "datasource": {"type": "prometheus", "uid": SOURCE_UID}}],
    }
    relation = sender(data=databag(dashboard(panels=[panel]), inject_dropdowns=False))
    before = settled(ctx, installed)

    ctx.run(
        ctx.on.relation_changed(relation),
        dataclasses.replace(before, relations=[*before.relations, relation]),
    )

    assert set(installed.dashboards) == SHIPPED | {"juju_demo_lab-uid.json"}
    written = related(installed)["juju_demo_lab-uid.json"]
    assert (written["uid"], written["title"]) == ("lab-uid", "Lab")
    [panel] = written["panels"]
    # An unknown data source becomes the variable of its type; ours stays as it is.
    assert panel["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}
    assert panel["targets"][0]["datasource"] == {"type": "prometheus", "uid": SOURCE_UID}
    variables = [v["name"] for v in written["templating"]["list"]]
    assert variables == ["prometheusds", "lokids"]
    assert installed.api_calls == ["reload dashboards"]


def test_the_collectors_dashboards_are_all_provisioned_with_the_topology_dropdowns(ctx, installed):
    relation = sender("otelcol", {"dashboards": OTELCOL_DASHBOARDS})

    settled(ctx, installed, relation)

    titles = {d["title"] for d in related(installed).values()}
    assert titles == {
        "System Resources",
        "MySQL overview",
        "System Resources - Subordinates",
        "OpenTelemetry Collector VM",
    }
    for name, content in related(installed).items():
        assert name == f"juju_otelcol_{content['uid']}.json"
        names = [v["name"] for v in content["templating"]["list"]]
        # Added where asked (every template here asks), unless the dashboard has them.
        assert {"juju_model", "juju_model_uuid", "juju_application", "juju_unit"} <= set(names)
        assert "DS_PROMETHEUS" not in json.dumps(content)


def test_topology_dropdowns_are_added_when_the_sender_asks(ctx, installed):
    relation = sender(data=databag(dashboard(), inject_dropdowns=True))

    settled(ctx, installed, relation)

    content = related(installed)["juju_demo_lab-uid.json"]
    names = [v["name"] for v in content["templating"]["list"]]
    assert names == [
        "juju_model", "juju_model_uuid", "juju_application", "juju_unit", "prometheusds", "lokids"
    ]  # fmt: skip


def test_a_dashboard_that_did_not_change_is_not_written_or_reloaded_again(ctx, installed):
    relation = sender(data=databag(dashboard()))
    out = settled(ctx, installed, relation)

    ctx.run(ctx.on.relation_changed(out.get_relation(relation.id)), out)

    assert installed.actions == []
    assert installed.api_calls == []


def test_the_leader_tells_the_sender_nothing_was_refused(ctx, installed):
    relation = sender(data=databag(dashboard()))

    out = settled(ctx, installed, relation)

    event = json.loads(out.get_relation(relation.id).local_app_data["event"])
    assert event == {"errors": [], "valid": True}


def test_a_follower_provisions_the_dashboards_but_does_not_answer(ctx, installed):
    relation = sender(data=databag(dashboard()))

    out = settled(ctx, installed, relation, leader=False)

    assert "juju_demo_lab-uid.json" in installed.dashboards
    assert "event" not in out.get_relation(relation.id).local_app_data


# --- the relation or the sender goes ----------------------------------------------------------


def test_relation_broken_removes_its_dashboards_and_reloads(ctx, installed):
    relation = sender(data=databag(dashboard()))
    out = settled(ctx, installed, relation)
    assert "juju_demo_lab-uid.json" in installed.dashboards

    ctx.run(ctx.on.relation_broken(out.get_relation(relation.id)), out)

    assert set(installed.dashboards) == SHIPPED
    assert installed.api_calls == ["reload dashboards"]


def test_a_dashboard_the_sender_stops_sending_is_removed(ctx, installed):
    relation = sender(data=databag(dashboard(), dashboard(uid="other", title="Other")))
    out = settled(ctx, installed, relation)
    assert "juju_demo_other.json" in installed.dashboards

    fewer = dataclasses.replace(
        out.get_relation(relation.id), remote_app_data=databag(dashboard())
    )
    ctx.run(
        ctx.on.relation_changed(fewer),
        dataclasses.replace(
            out, relations=[*(r for r in out.relations if r.id != relation.id), fewer]
        ),
    )

    assert set(related(installed)) == {"juju_demo_lab-uid.json"}


def test_only_the_dashboards_of_the_relation_that_went_are_removed(ctx, installed):
    staying = sender("prometheus", databag(dashboard(uid="prom", title="Prometheus")))
    leaving = sender("otelcol", {"dashboards": OTELCOL_DASHBOARDS})
    out = settled(ctx, installed, staying, leaving)

    ctx.run(ctx.on.relation_broken(out.get_relation(leaving.id)), out)

    assert set(related(installed)) == {"juju_prometheus_prom.json"}


# --- hostile or broken databags ---------------------------------------------------------------


def bomb() -> str:
    """64 MiB of spaces in a few KB: an LZMA bomb in the format's own encoding."""
    compressor = lzma.LZMACompressor()
    chunks = [compressor.compress(b" " * 2**20) for _ in range(64)] + [compressor.flush()]
    return base64.b64encode(b"".join(chunks)).decode()


def template(content: str, **fields: Any) -> dict[str, Any]:
    return {"charm": "demo", "content": content, **fields}


def templates(*items: tuple[str, dict[str, Any]]) -> dict[str, str]:
    return {"dashboards": json.dumps({"templates": dict(items), "uuid": "1"})}


GOOD = ("file:good", template(grafana_dashboard.encode(json.dumps(dashboard()))))
HOSTILE = {
    "an LZMA bomb": (
        templates(("file:bomb", template(bomb())), GOOD),
        "decompresses to more than",
    ),
    "content that is not JSON": (
        templates(("file:bad", template(grafana_dashboard.encode("{not json"))), GOOD),
        "content is not JSON",
    ),
    "content that is not base64": (
        templates(("file:bad", template("../../etc/passwd")), GOOD),
        "content is not base64",
    ),
    "a dashboard without a title": (
        templates(("file:bad", template(grafana_dashboard.encode('{"panels": []}'))), GOOD),
        "no usable title",
    ),
    "content longer than the limit": (
        templates(("file:huge", template("A" * (grafana_dashboard.MAX_ENCODED + 4))), GOOD),
        "longer than",
    ),
}


@pytest.mark.parametrize(("data", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_bad_template_is_skipped_with_its_reason_and_the_good_one_provisioned(
    ctx, installed, caplog, data: dict[str, str], reason: str
):
    relation = sender(data=data)
    caplog.set_level(logging.WARNING)

    out = settled(ctx, installed, relation)

    assert set(related(installed)) == {"juju_demo_lab-uid.json"}
    assert reason in caplog.text
    event = json.loads(out.get_relation(relation.id).local_app_data["event"])
    assert event["valid"] is False
    [error] = event["errors"]
    assert reason in error["error"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not JSON"),
        (json.dumps(["templates"]), "no object of templates"),
        (json.dumps({"templates": "x"}), "no object of templates"),
        ("x" * (grafana_dashboard.MAX_DATABAG + 1), "longer than"),
    ],
    ids=["bad JSON", "a list", "templates not an object", "a huge databag"],
)
def test_a_databag_that_is_not_one_is_ignored_without_a_crash(
    ctx, installed, caplog, raw: str, reason: str
):
    caplog.set_level(logging.WARNING)

    out = settled(ctx, installed, sender(data={"dashboards": raw}))

    assert set(installed.dashboards) == SHIPPED
    assert reason in caplog.text
    assert out.unit_status == testing.ActiveStatus("serving on :3000 with 1 data source")


@pytest.mark.parametrize(
    ("uid", "key"),
    [
        ("../../../etc/cron.d/evil", "file:x"),
        ("a/b", "file:../../x"),
        ("..", "file:/etc/passwd"),
        ("x\u0000y", "file:\nz"),
        ("$(touch /tmp/owned)", "file:${HOME}"),
    ],
)
def test_path_like_uids_and_keys_never_reach_a_file_name(ctx, installed, uid: str, key: str):
    data = templates((key, template(grafana_dashboard.encode(json.dumps(dashboard(uid=uid))))))

    settled(ctx, installed, sender(data=data))

    [(name, content)] = related(installed).items()
    assert provisioning.RELATED_NAME.fullmatch(name)
    # The uid is replaced by the template's alternative uid, a hash (as COS does).
    assert content["uid"] == grafana_dashboard.alt_uid("demo", key)
    assert name == f"juju_demo_{content['uid']}.json"


# --- duplicates and collisions ----------------------------------------------------------------


def test_of_two_senders_with_one_uid_the_higher_version_is_kept(ctx, installed):
    old = sender("alpha", databag(dashboard(version=3, title="Old")), id=11)
    new = sender("beta", databag(dashboard(version=4, title="New")), id=2)

    settled(ctx, installed, old, new)

    assert {n: d["title"] for n, d in related(installed).items()} == {
        "juju_beta_lab-uid.json": "New"
    }


def test_of_two_senders_with_one_uid_and_version_the_later_relation_wins(ctx, installed):
    # Relation ids compared as numbers: 10 is later than 9 (COS compares them as strings).
    nine = sender("alpha", databag(dashboard(title="Nine")), id=9)
    ten = sender("beta", databag(dashboard(title="Ten")), id=10)

    settled(ctx, installed, nine, ten)

    assert {n: d["title"] for n, d in related(installed).items()} == {
        "juju_beta_lab-uid.json": "Ten"
    }


def test_a_sent_dashboard_with_the_uid_of_one_we_ship_is_skipped(ctx, installed, caplog):
    [ours] = provisioning.shipped_uids(charm.DASHBOARDS)
    caplog.set_level(logging.WARNING)

    settled(ctx, installed, sender(data=databag(dashboard(uid=ours, title="Impostor"))))

    assert set(installed.dashboards) == SHIPPED
    assert f"uid {ours} is a dashboard this charm ships" in caplog.text
