"""The workload's pure functions: alertmanager.yml and the flags, as the charm renders them.

That amtool and Alertmanager accept what they render is checked against the real binaries in
tests/functional/test_alertmanager_workload.py.
"""

from __future__ import annotations

import pytest
import yaml
from alertmanager import configuration, flags

OWN = "# receivers of the lab\nroute:\n  receiver: chat\nreceivers:\n  - name: chat\n"


def test_the_default_starts_with_the_header_and_says_it_notifies_nobody():
    text = configuration.render("", "")

    assert text.startswith(configuration.HEADER)
    assert "notify nobody" in text
    assert yaml.safe_load(text)["route"]["receiver"] == "nobody"


def test_an_operator_config_is_kept_as_written():
    assert configuration.render(OWN, "") == configuration.HEADER + OWN


def test_an_operator_config_gets_one_final_newline():
    assert configuration.render(OWN + "\n\n", "") == configuration.HEADER + OWN
    assert configuration.render(OWN.rstrip("\n"), "") == configuration.HEADER + OWN


def test_templates_are_named_once_even_if_already_listed():
    own = OWN + "templates: [alertmanager.tmpl]\n"

    text = configuration.render(own, '{{ define "x" }}{{ end }}')

    assert yaml.safe_load(text)["templates"] == ["alertmanager.tmpl"]


def test_a_single_template_path_becomes_a_list_with_the_charm_s():
    text = configuration.render(OWN + "templates: /srv/a.tmpl\n", "x")

    assert yaml.safe_load(text)["templates"] == ["/srv/a.tmpl", "alertmanager.tmpl"]


def test_unicode_survives_the_rewrite_with_templates():
    text = configuration.render(OWN + "global:\n  smtp_from: 'Läb <am@lab>'\n", "x")

    assert "Läb" in text


@pytest.mark.parametrize("text", ["[", "a: b: c", "key: 'unclosed\n"])
def test_parse_refuses_what_is_not_yaml(text: str):
    with pytest.raises(ValueError, match=r"^not YAML: .*\(line \d+, column \d+\)$"):
        configuration.parse(text)


def test_flags_with_peers_name_each_once_sorted():
    cluster = flags.Cluster(
        "10.0.0.10:9094", ("10.0.0.12:9094", "10.0.0.11:9094", "10.0.0.12:9094")
    )

    args = flags.flags(port=9093, external_url="", log_level="info", cluster=cluster)

    assert args[-4:] == [
        "--cluster.listen-address=0.0.0.0:9094",
        "--cluster.advertise-address=10.0.0.10:9094",
        "--cluster.peer=10.0.0.11:9094",
        "--cluster.peer=10.0.0.12:9094",
    ]


def test_flags_survive_the_args_line():
    cluster = flags.Cluster("[fd00::10]:9094", ("[fd00::11]:9094",))
    args = flags.flags(
        port=80, external_url="https://lab.example/am/", log_level="warn", cluster=cluster
    )

    line = flags.files.args_line(args, flags.HEADER)

    assert line.endswith(f'ARGS="{" ".join(args)}"\n')
    assert "--web.external-url=https://lab.example/am/" in args


def test_local_url_follows_the_written_port_and_route_prefix(tmp_path, monkeypatch):
    from alertmanager import paths

    monkeypatch.setattr(paths, "PATHS", paths.Paths(defaults=tmp_path / "defaults"))
    assert flags.local_url("/-/ready") == "http://127.0.0.1:9093/-/ready"

    flags.write(
        flags.flags(port=9193, external_url="http://x/am/", log_level="info", cluster=None)
    )

    assert flags.local_url("/-/ready") == "http://127.0.0.1:9193/am/-/ready"
