"""grafana_dashboard, both halves, against what Canonical's charms write and read."""

from __future__ import annotations

import base64
import json
import lzma
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import ops
import pytest
from dashboard_checks import FILE_NAME, unresolved
from lab_monitoring.interfaces import grafana_dashboard
from ops import testing

FIXTURES = Path(__file__).parent / "fixtures"
OTELCOL = json.loads((FIXTURES / "otelcol_grafana_dashboards_provider.json").read_text())
COS_READS_OTELCOL = json.loads((FIXTURES / "cos_grafana_consumes_otelcol.json").read_text())
COS_PROVIDER = json.loads((FIXTURES / "cos_provider_prometheus.json").read_text())
MODEL = testing.Model(name="lab", uuid="2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f")
PROMETHEUS_UID = "lab_prometheus_0"
DATASOURCES = {PROMETHEUS_UID: "prometheus"}


def dashboard(**fields: Any) -> dict[str, Any]:
    return {"title": "Lab", "uid": "lab-uid", "version": 1, "panels": [], **fields}


def databag(*dashboards: dict[str, Any], **template_fields: Any) -> str:
    templates = {
        f"file:d{i}": {"charm": "demo", "content": grafana_dashboard.encode(json.dumps(d))}
        | template_fields
        for i, d in enumerate(dashboards)
    }
    return json.dumps({"templates": templates, "uuid": "1"})


def read(
    raw: str | None, datasources=DATASOURCES, errors=None
) -> list[grafana_dashboard.Dashboard]:
    return grafana_dashboard.from_app_data(raw, "demo", 3, datasources, errors=errors)


def read_one(**fields: Any) -> dict[str, Any]:
    (found,) = read(databag(dashboard(**fields)))
    return json.loads(found.content)


def names(content: dict[str, Any]) -> list[str]:
    return [v["name"] for v in content["templating"]["list"]]


# The format


def test_what_cos_encodes_decodes_to_the_dashboard():
    templates = json.loads(OTELCOL["local_app_data"]["dashboards"])["templates"]

    titles = {
        json.loads(grafana_dashboard.decode(t["content"]))["title"] for t in templates.values()
    }

    assert titles == {
        "System Resources",
        "MySQL overview",
        "System Resources - Subordinates",
        "OpenTelemetry Collector VM",
    }


def test_encoding_is_lzma_then_base64_as_cos_does():
    encoded = grafana_dashboard.encode('{"title": "é"}')

    assert lzma.decompress(base64.b64decode(encoded)).decode() == '{"title": "é"}'


def test_an_lzma_bomb_is_refused_without_being_inflated():
    compressor = lzma.LZMACompressor()
    chunks = [compressor.compress(b" " * 2**20) for _ in range(32)] + [compressor.flush()]
    bomb = base64.b64encode(b"".join(chunks)).decode()  # 32 MiB in 7 KB
    assert len(bomb) < 10_000

    tracemalloc.start()
    with pytest.raises(ValueError, match="decompresses to more than 1048576 bytes"):
        grafana_dashboard.decode(bomb, limit=2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # The decoder's 8 MiB dictionary and twice the limit, not the 32 MiB of the bomb.
    assert peak < 14 * 2**20


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "not a string"),
        (12, "not a string"),
        ("not base64!", "not base64"),
        (base64.b64encode(b'{"title": "plain JSON"}').decode(), "not LZMA"),
        ("QUJDRA==", "truncated"),
        ("é", "not base64"),
        (base64.b64encode(lzma.compress(b"{}"))[:-12].decode(), "not base64|truncated"),
        (base64.b64encode(lzma.compress(b"\xff\xfe")).decode(), "not UTF-8"),
        ("A" * (grafana_dashboard.MAX_ENCODED + 1), "longer than"),
    ],
)
def test_content_that_is_not_an_encoded_text_is_refused(content: object, reason: str):
    with pytest.raises(ValueError, match=reason):
        grafana_dashboard.decode(content)


def test_a_stream_asking_for_a_huge_dictionary_is_refused():
    # A .lzma header: properties, a 4 GiB dictionary, an unknown size; then a little data.
    header = b"\x5d" + (2**32 - 1).to_bytes(4, "little") + b"\xff" * 8 + b"\x00" * 32

    with pytest.raises(ValueError, match="Memory usage limit exceeded"):
        grafana_dashboard.decode(base64.b64encode(header).decode())


# Provider half


class DashboardProvider(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.changed: bool | None = None
        framework.observe(self.on.update_status, self._reconcile)

    def _reconcile(self, _: ops.EventBase):
        directory = self.charm_dir / "src" / "grafana_dashboards"
        self.changed = grafana_dashboard.publish(self, directory)


@pytest.fixture
def provider_ctx(tmp_path: Path) -> testing.Context[DashboardProvider]:
    directory = tmp_path / "src" / "grafana_dashboards"
    directory.mkdir(parents=True)
    shutil.copy(
        FIXTURES / "input-prometheus-overview.json", directory / "prometheus-overview.json"
    )
    meta = {
        "name": "prometheus",
        "provides": {"grafana-dashboard": {"interface": "grafana_dashboard"}},
    }
    return testing.Context(DashboardProvider, meta=meta, charm_root=tmp_path)


def provide(ctx, relation: testing.Relation, *, leader: bool = True):
    state = testing.State(model=MODEL, leader=leader, relations=[relation])
    with ctx(ctx.on.update_status(), state) as manager:
        out = manager.run()
        return manager.charm.changed, out.get_relation(relation.id)


def test_our_provider_writes_what_cos_provider_writes_field_by_field(provider_ctx):
    changed, relation = provide(provider_ctx, testing.Relation("grafana-dashboard"))

    ours = json.loads(relation.local_app_data["dashboards"])
    theirs = json.loads(COS_PROVIDER["local_app_data"]["dashboards"])
    assert changed is True
    assert set(ours) == set(theirs) == {"templates", "uuid"}
    assert set(ours["templates"]) == set(theirs["templates"]) == {"file:prometheus-overview"}
    for key, template in theirs["templates"].items():
        mine = ours["templates"][key]
        assert set(mine) == set(template)
        for field in ("charm", "juju_topology", "inject_dropdowns", "dashboard_alt_uid"):
            assert mine[field] == template[field], field
        assert json.loads(grafana_dashboard.decode(mine["content"])) == json.loads(
            grafana_dashboard.decode(template["content"])
        )
    # The nonce as COS's LIBPATCH 51 computes it: it changes with the templates only.
    assert (
        ours["uuid"]
        == json.loads(grafana_dashboard.app_data(ours["templates"])["dashboards"])["uuid"]
    )


def test_what_we_write_cos_grafana_reads_as_it_reads_its_own(provider_ctx):
    _, relation = provide(provider_ctx, testing.Relation("grafana-dashboard"))

    (theirs,) = COS_PROVIDER["consumed_by_cos_grafana"]["dashboards"]
    (ours,) = grafana_dashboard.from_app_data(
        relation.local_app_data["dashboards"], "prometheus", 7, DATASOURCES
    )
    assert (ours.uid, ours.title, ours.version) == (
        theirs["dashboard_uid"],
        theirs["dashboard_title"],
        theirs["dashboard_version"],
    )
    mine = json.loads(ours.content)
    cos = json.loads(grafana_dashboard.decode(theirs["content"]))
    # The same dashboard: its own variable `datasource` is replaced by ${prometheusds} as COS
    # does; the added variables come in another order; and COS leaves the targets pointing at
    # the variable it removed, where ours point at ${prometheusds} (see the module docstring).
    assert sorted(names(mine)) == sorted(names(cos))
    paths = differences(
        {k: v for k, v in mine.items() if k != "templating"},
        {k: v for k, v in cos.items() if k != "templating"},
    )
    assert paths
    assert all(p.endswith("/targets/0/datasource/uid") for p in paths), paths
    assert unresolved(mine, DATASOURCES) == []
    assert sorted(unresolved(cos, DATASOURCES)) == sorted(p.removesuffix("/uid") for p in paths)


def test_publishing_the_same_files_again_changes_nothing(provider_ctx):
    _, first = provide(provider_ctx, testing.Relation("grafana-dashboard"))

    changed, second = provide(provider_ctx, first)

    assert changed is False
    assert second.local_app_data == first.local_app_data


def test_a_follower_publishes_nothing(provider_ctx):
    changed, relation = provide(provider_ctx, testing.Relation("grafana-dashboard"), leader=False)

    assert changed is False
    assert "dashboards" not in relation.local_app_data


def test_without_dropdowns_the_topology_is_left_out(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard(uid="a" * 40)))

    templates = grafana_dashboard.templates_from_files(
        [path], charm="demo", charm_dir=tmp_path, topology={"model": "lab"}, inject_dropdowns=False
    )

    template = templates["file:d"]
    assert template["juju_topology"] == {}
    assert template["inject_dropdowns"] is False
    # An uid that is already a Path-40 one is kept, as COS keeps it.
    assert json.loads(grafana_dashboard.decode(template["content"]))["uid"] == "a" * 40


# Requirer: what the collector writes, as COS's Grafana reads it


def differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = [f"{path}/{k}" for k in set(ours) ^ set(theirs)]
        for key in set(ours) & set(theirs):
            found += differences(ours[key], theirs[key], f"{path}/{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for d in differences(a, b, f"{path}/{i}")
        ]
    return [] if ours == theirs else [path]


def test_we_read_the_collectors_dashboards_as_cos_grafana_does():
    ours = {d.uid: d for d in read(OTELCOL["local_app_data"]["dashboards"])}

    theirs = {d["dashboard_uid"]: d for d in COS_READS_OTELCOL["dashboards"]}
    assert set(ours) == set(theirs)
    for uid, cos in theirs.items():
        mine = ours[uid]
        assert (mine.title, mine.version) == (cos["dashboard_title"], cos["dashboard_version"])
        content = json.loads(mine.content)
        cos_content = json.loads(grafana_dashboard.decode(cos["content"]))
        assert sorted(names(content)) == sorted(names(cos_content))
        # Outside the variables, the two differ only where COS left a reference unresolved.
        for path in differences(
            {k: v for k, v in content.items() if k != "templating"},
            {k: v for k, v in cos_content.items() if k != "templating"},
        ):
            assert "/datasource" in path, path
        assert unresolved(content, DATASOURCES) == []


def test_cos_leaves_a_marketplace_exports_placeholders_and_we_bind_them():
    (cos,) = [
        d for d in COS_READS_OTELCOL["dashboards"] if d["dashboard_title"] == "MySQL overview"
    ]
    cos_content = json.loads(grafana_dashboard.decode(cos["content"]))
    (ours,) = [
        d for d in read(OTELCOL["local_app_data"]["dashboards"]) if d.title == "MySQL overview"
    ]

    assert unresolved(cos_content, DATASOURCES) != []
    content = json.loads(ours.content)
    assert unresolved(content, DATASOURCES) == []
    assert "DS_PROMETHEUS" not in ours.content
    assert "__inputs" not in content
    host = next(v for v in content["templating"]["list"] if v["name"] == "host")
    assert host["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}


def test_the_dropdowns_come_first_in_their_natural_order():
    content = read_one(templating={"list": [{"name": "host", "type": "query"}]})

    assert names(content) == [
        "juju_model",
        "juju_model_uuid",
        "juju_application",
        "juju_unit",
        "prometheusds",
        "lokids",
        "host",
    ]


def test_without_inject_dropdowns_only_the_data_source_variables_are_added():
    (found,) = read(databag(dashboard(), inject_dropdowns=False))

    assert names(json.loads(found.content)) == ["prometheusds", "lokids"]


def test_a_dashboards_own_variable_of_a_dropdowns_name_is_kept():
    own = {"name": "juju_model", "type": "custom", "query": "lab"}

    content = read_one(templating={"list": [own]})

    assert content["templating"]["list"].count(own) == 1
    assert names(content).count("juju_model") == 1


def _exprs(content: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in content["panels"] for t in p.get("targets", [])]


# The shape of the MySQL machine charm's "MySQL Handlers" query (canonical/mysql-operator
# 8b73ff3 src/grafana_dashboards/mysql-metrics.json): equality matchers on the dropdowns.
HANDLERS = (
    'rate(mysql_global_status_handlers_total{instance=~"$instance",'
    'juju_application="$juju_application",juju_model = "$juju_model",'
    'juju_model_uuid="${juju_model_uuid}",juju_unit="$juju_unit",'
    'handler!~"commit|rollback"}[$__interval])'
)


def test_an_equality_on_a_dropdown_becomes_a_regex_so_that_all_matches():
    # The dropdowns' "All" is `.*`: `juju_application=".*"` matches no series at all.
    row = {"type": "row", "collapsed": True, "panels": [{"targets": [{"expr": HANDLERS}]}]}

    content = read_one(panels=[{"targets": [{"expr": HANDLERS}]}, row])

    expected = (
        'rate(mysql_global_status_handlers_total{instance=~"$instance",'
        'juju_application=~"$juju_application",juju_model =~"$juju_model",'
        'juju_model_uuid=~"${juju_model_uuid}",juju_unit=~"$juju_unit",'
        'handler!~"commit|rollback"}[$__interval])'
    )
    assert _exprs(content) == [expected]
    assert content["panels"][1]["panels"][0]["targets"][0]["expr"] == expected


@pytest.mark.parametrize(
    "expr",
    [
        'up{juju_unit!="$juju_unit"}',  # a negation stays one
        'up{juju_unit=~"$juju_unit"}',  # already a regex
        'up{job="$job"}',  # not a dropdown of ours
        'up{juju_unit="$juju_units"}',  # another variable whose name starts like one
        'up{juju_unit="juju_unit"}',  # a literal, not a variable
    ],
)
def test_other_matchers_are_left_as_written(expr: str):
    assert _exprs(read_one(panels=[{"targets": [{"expr": expr}]}])) == [expr]


def test_without_dropdowns_the_expressions_are_left_as_written():
    panels = [{"targets": [{"expr": HANDLERS}]}]

    (found,) = read(databag(dashboard(panels=panels), inject_dropdowns=False))

    assert _exprs(json.loads(found.content)) == [HANDLERS]


# Requirer: data source binding


@pytest.mark.parametrize(
    ("reference", "bound"),
    [
        ("${DS_PROMETHEUS}", "${prometheusds}"),
        ("$DS_PROMETHEUS", "${prometheusds}"),
        ("Prometheus", "${prometheusds}"),
        ("my-loki", "${lokids}"),
        ({"type": "prometheus", "uid": "gone"}, {"type": "prometheus", "uid": "${prometheusds}"}),
        ({"type": "loki", "uid": "${DS_LOKI}"}, {"type": "loki", "uid": "${lokids}"}),
        ({"type": "tempo", "uid": "gone"}, {"type": "tempo", "uid": "${tempods}"}),
        # Kept: this Grafana's own data source, built-ins, the default, our variables.
        (PROMETHEUS_UID, PROMETHEUS_UID),
        (
            {"type": "prometheus", "uid": PROMETHEUS_UID},
            {"type": "prometheus", "uid": PROMETHEUS_UID},
        ),
        ("-- Grafana --", "-- Grafana --"),
        ({"type": "datasource", "uid": "grafana"}, {"type": "datasource", "uid": "grafana"}),
        ({"type": "__expr__", "uid": "__expr__"}, {"type": "__expr__", "uid": "__expr__"}),
        (None, None),
        ("${prometheusds}", "${prometheusds}"),
        # Neither a name nor an object: Grafana's default instead.
        (["x"], None),
        (7, None),
    ],
)
def test_each_reference_is_bound_everywhere_grafana_reads_one(reference, bound):
    placed = {
        "panels": [
            {"datasource": reference, "targets": [{"datasource": reference}]},
            {"type": "row", "panels": [{"datasource": reference}]},
        ],
        "rows": [{"panels": [{"datasource": reference}]}],
        "templating": {"list": [{"name": "q", "type": "query", "datasource": reference}]},
        "annotations": {"list": [{"name": "a", "datasource": reference}]},
        "__inputs": [
            {"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"},
            {"name": "DS_LOKI", "type": "datasource", "pluginId": "loki"},
        ],
    }

    content = read_one(**placed)

    assert content["panels"][0]["datasource"] == bound
    assert content["panels"][0]["targets"][0]["datasource"] == bound
    assert content["panels"][1]["panels"][0]["datasource"] == bound
    assert content["rows"][0]["panels"][0]["datasource"] == bound
    query = next(v for v in content["templating"]["list"] if v["name"] == "q")
    assert query["datasource"] == bound
    assert content["annotations"]["list"][0]["datasource"] == bound
    assert unresolved(content, DATASOURCES) == []


def test_a_dashboards_own_data_source_variable_is_replaced_as_cos_replaces_it():
    own = {"name": "datasource", "type": "datasource", "query": "prometheus"}

    content = read_one(
        templating={"list": [own]},
        panels=[{"datasource": {"type": "prometheus", "uid": "${datasource}"}}],
    )

    assert "datasource" not in names(content)
    assert content["panels"][0]["datasource"]["uid"] == "${prometheusds}"


def test_a_data_source_variable_of_another_type_is_left_to_grafana():
    own = {"name": "traces", "type": "datasource", "query": "tempo"}

    content = read_one(templating={"list": [own]}, panels=[{"datasource": "${traces}"}])

    assert "traces" in names(content)
    assert content["panels"][0]["datasource"] == "${traces}"


def test_a_placeholder_of_another_type_gets_a_variable_of_its_type():
    placeholder = {"name": "DS_TRACES", "type": "datasource", "pluginId": "tempo"}

    content = read_one(__inputs=[placeholder], panels=[{"datasource": "${DS_TRACES}"}])

    assert content["panels"][0]["datasource"] == "${tempods}"
    tempods = next(v for v in content["templating"]["list"] if v["name"] == "tempods")
    assert (tempods["type"], tempods["query"]) == ("datasource", "tempo")
    assert unresolved(content, DATASOURCES) == []


def test_a_reference_to_a_variable_of_the_dashboard_is_kept():
    own = {"name": "ds", "type": "custom", "query": "a,b"}

    content = read_one(templating={"list": [own]}, panels=[{"datasource": "$ds"}])

    assert content["panels"][0]["datasource"] == "$ds"


# Requirer: uids, names, duplicates


def test_a_dashboard_without_uid_gets_the_alternative_uid():
    (found,) = read(databag(dashboard(uid=None), dashboard_alt_uid="0123456789abcdef"))

    assert found.uid == "0123456789abcdef"
    assert json.loads(found.content)["uid"] == "0123456789abcdef"
    assert found.file_name == "juju_demo_0123456789abcdef.json"


@pytest.mark.parametrize("uid", ["../../etc/passwd", "a/b", "x" * 41, "$__file{/etc/shadow}", 5])
def test_a_uid_grafana_would_refuse_is_replaced_and_the_file_name_stays_safe(uid):
    (found,) = read(databag(dashboard(uid=uid), dashboard_alt_uid="../x"))

    assert found.uid == grafana_dashboard.alt_uid("demo", "file:d0")
    assert FILE_NAME.fullmatch(found.file_name)


def test_two_dashboards_with_one_uid_keep_the_highest_version_then_relation():
    older = read(databag(dashboard(version=1, title="old")))
    newer = grafana_dashboard.from_app_data(
        databag(dashboard(version=2, title="new")), "other", 1, DATASOURCES
    )
    tie = grafana_dashboard.from_app_data(
        databag(dashboard(version=2, title="tie")), "third", 10, DATASOURCES
    )

    assert [d.title for d in grafana_dashboard.resolve_duplicates(older + newer)] == ["new"]
    # Relation ids compare as numbers: 10 beats 1 (COS compares them as strings).
    assert [d.title for d in grafana_dashboard.resolve_duplicates(newer + tie)] == ["tie"]


# Requirer: hostile templates, each skipped with its reason next to a good one


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("not an object", "not an object"),
        ({"content": grafana_dashboard.encode("{")}, "not JSON"),
        ({"content": grafana_dashboard.encode("[" * 100_000)}, "not JSON"),
        ({"content": grafana_dashboard.encode("[]")}, "not a JSON object"),
        ({"content": grafana_dashboard.encode('{"title": "t"}')}, "neither panels nor rows"),
        ({"content": grafana_dashboard.encode('{"title": "t", "panels": {}}')}, "must be lists"),
        ({"content": grafana_dashboard.encode('{"panels": []}')}, "no usable title"),
        ({"content": grafana_dashboard.encode('{"title": " ", "panels": []}')}, "no usable title"),
        (
            {"content": grafana_dashboard.encode('{"title": "t", "panels": [], "templating": 1}')},
            "templating",
        ),
        (
            {
                "content": grafana_dashboard.encode(
                    '{"title": "t", "panels": [], "templating": {"list": 1}}'
                )
            },
            "templating",
        ),
        ({"content": "!!"}, "not base64"),
    ],
)
def test_an_unusable_template_is_skipped_with_its_reason(template, reason, caplog):
    good = {"charm": "demo", "content": grafana_dashboard.encode(json.dumps(dashboard()))}
    raw = json.dumps({"templates": {"file:good": good, "file:bad": template}})
    errors: list[dict[str, str]] = []

    found = read(raw, errors=errors)

    assert [d.template for d in found] == ["file:good"]
    assert errors[0]["dashboard_id"] == '"file:bad"'
    assert reason in errors[0]["error"]
    assert "skipping" in caplog.text


@pytest.mark.parametrize(
    "raw",
    [None, "", "{", "[]", '{"templates": []}', '{"templates": "x"}', "[" * 100_000],
)
def test_an_unusable_databag_gives_no_dashboards(raw):
    assert read(raw) == []


def test_too_many_templates_are_refused_whole():
    templates = {f"file:{i}": {} for i in range(grafana_dashboard.MAX_TEMPLATES + 1)}

    assert read(json.dumps({"templates": templates})) == []


def test_the_total_decompressed_size_is_bounded(monkeypatch):
    monkeypatch.setattr(grafana_dashboard, "MAX_TOTAL", 600)
    big = dashboard(description="x" * 400)

    budget = grafana_dashboard._Budget(grafana_dashboard.MAX_TOTAL)
    errors: list[dict[str, str]] = []
    dashboards = grafana_dashboard.from_app_data(
        databag(big, big | {"uid": "other"}), "demo", 3, DATASOURCES, budget=budget, errors=errors
    )

    assert len(dashboards) == 1
    assert "decompresses to more than" in errors[0]["error"]


# Requirer: the charm-facing half


class Grafana(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.requirer = grafana_dashboard.GrafanaDashboardRequirer(self)
        self.dashboards: list[grafana_dashboard.Dashboard] = []
        self.reported: bool | None = None
        framework.observe(self.on.update_status, self._reconcile)

    def _reconcile(self, _: ops.EventBase):
        self.dashboards = self.requirer.dashboards(DATASOURCES)
        self.reported = self.requirer.publish_errors()


def grafana(*relations: testing.Relation, leader: bool = True):
    meta = {
        "name": "grafana",
        "requires": {"grafana-dashboard": {"interface": "grafana_dashboard"}},
    }
    ctx = testing.Context(Grafana, meta=meta)
    state = testing.State(model=MODEL, leader=leader, relations=list(relations))
    with ctx(ctx.on.update_status(), state) as manager:
        out = manager.run()
        return manager.charm, out


def test_grafana_reads_every_related_application_and_reports_refusals():
    collector = testing.Relation(
        "grafana-dashboard", remote_app_name="otelcol", remote_app_data=OTELCOL["local_app_data"]
    )
    broken = testing.Relation(
        "grafana-dashboard",
        remote_app_name="broken",
        remote_app_data={"dashboards": json.dumps({"templates": {"file:x": {"content": "!"}}})},
    )

    charm, out = grafana(collector, broken)

    assert sorted(d.title for d in charm.dashboards) == sorted(
        d["dashboard_title"] for d in COS_READS_OTELCOL["dashboards"]
    )
    assert all(FILE_NAME.fullmatch(d.file_name) for d in charm.dashboards)
    assert json.loads(out.get_relation(collector.id).local_app_data["event"]) == {
        "errors": [],
        "valid": True,
    }
    event = json.loads(out.get_relation(broken.id).local_app_data["event"])
    assert event["valid"] is False
    assert event["errors"][0]["dashboard_id"] == '"file:x"'
    assert charm.reported is True


def test_a_follower_reads_but_writes_nothing_back():
    collector = testing.Relation(
        "grafana-dashboard", remote_app_name="otelcol", remote_app_data=OTELCOL["local_app_data"]
    )

    charm, out = grafana(collector, leader=False)

    assert len(charm.dashboards) == len(COS_READS_OTELCOL["dashboards"])
    assert "event" not in out.get_relation(collector.id).local_app_data
    assert charm.reported is False
