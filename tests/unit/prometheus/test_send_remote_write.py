"""Sending samples elsewhere: the send-remote-write relation and the remote-write-* options.

Receivers' URLs come from the relation (COS format) and from remote-write-urls; credentials for
the option's URLs come from a Juju user secret and reach Prometheus only as a file.
"""

from __future__ import annotations

import json
import logging

import hypothesis
import ops
import pytest
from hypothesis import strategies as st
from ops import testing

UUID = "2f5e6d0a-9b1c-4e3f-8a7d-1c2b3a4d5e6f"
MODEL = testing.Model(name="lab", uuid=UUID)
STORE = "https://mimir.example.com/api/v1/push"
PASSWORD = "hunter2-very-secret"
TOKEN = "tok-0123456789abcdef"
QUEUE = {
    "capacity": 10000,
    "max_shards": 50,
    "min_shards": 1,
    "max_samples_per_send": 2000,
    "batch_send_deadline": "5s",
    "min_backoff": "30ms",
    "max_backoff": "5s",
    "retry_on_http_429": True,
}
REPLICA = [
    {
        "source_labels": ["prometheus_replica"],
        "regex": "",
        "target_label": "prometheus_replica",
        "replacement": "lab/prometheus/0",
    }
]


def receiver(units: dict[int, dict[str, str]] | None = None) -> testing.Relation:
    """A COS Prometheus (or Mimir) related on send-remote-write, as its units publish."""
    if units is None:
        units = {
            0: {"remote_write": json.dumps({"url": "http://10.0.0.7:9090/api/v1/write"})},
            1: {"remote_write": json.dumps({"url": "http://10.0.0.8:9090/api/v1/write"})},
        }
    return testing.Relation("send-remote-write", remote_app_name="cos", remote_units_data=units)


def user_secret(**content: str) -> testing.Secret:
    """A user secret the operator added and granted to this application."""
    return testing.Secret(tracked_content=content)


def state(*relations, secrets=(), **config) -> testing.State:
    return testing.State(
        model=MODEL,
        leader=True,
        relations=list(relations),
        secrets=list(secrets),
        config={key.replace("_", "-"): value for key, value in config.items()},
    )


def remote_writes(fake) -> list[dict]:
    return fake.parsed_config().get("remote_write", [])


def test_each_receiver_unit_becomes_a_remote_write_with_queue_and_replica_label(ctx, fake):
    rel = receiver()

    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    assert remote_writes(fake) == [
        {
            "url": f"http://10.0.0.{n}:9090/api/v1/write",
            "remote_timeout": "30s",
            "write_relabel_configs": REPLICA,
            "queue_config": QUEUE,
        }
        for n in (7, 8)
    ]
    # Rules stay here: nothing is offered to the receiver (COS's consumer would send them).
    assert out.get_relation(rel.id).local_app_data == {}
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_units_behind_one_address_and_a_bad_unit_give_one_entry(ctx, fake, caplog):
    same = json.dumps({"url": "http://10.0.0.7:9090/api/v1/write"})
    units = {
        0: {"remote_write": same},
        1: {"remote_write": same},
        2: {"remote_write": json.dumps({"url": "http://admin:pw@10.0.0.9/api/v1/write"})},
        3: {"remote_write": "{not json"},
        4: {},
    }
    rel = receiver(units)

    with caplog.at_level(logging.WARNING):
        ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))

    assert [entry["url"] for entry in remote_writes(fake)] == ["http://10.0.0.7:9090/api/v1/write"]
    assert "credentials are refused" in caplog.text
    assert "pw@" not in caplog.text


def test_the_receiver_leaving_stops_the_sending_with_a_reload(ctx, fake, settled):
    rel = receiver()
    settled(state(rel))

    ctx.run(ctx.on.relation_broken(rel), state(rel))

    assert remote_writes(fake) == []
    assert fake.actions == ["reload"]


def test_option_urls_are_sent_to_without_credentials_when_none_are_named(ctx, fake):
    ctx.run(ctx.on.config_changed(), state(remote_write_urls=f"{STORE}, http://10.1.0.1:8428"))

    assert [entry["url"] for entry in remote_writes(fake)] == [STORE, "http://10.1.0.1:8428"]
    assert all("basic_auth" not in entry for entry in remote_writes(fake))
    assert fake.credential_files == {}


def test_basic_auth_from_the_secret_goes_to_a_file_and_only_its_path_to_the_config(ctx, fake):
    secret = user_secret(username="prom", password=PASSWORD)
    rel = receiver()
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}

    out = ctx.run(ctx.on.config_changed(), state(rel, secrets=[secret], **config))

    store, *relation_entries = remote_writes(fake)
    assert store["url"] == STORE
    assert store["basic_auth"] == {
        "username": "prom",
        "password_file": "/etc/prometheus/juju-remote-write/password",
    }
    assert fake.credential_files == {"password": PASSWORD}
    assert PASSWORD not in fake.config
    # Receivers in Juju get no credentials: they are not the option's store.
    assert [e.get("basic_auth") for e in relation_entries] == [None, None]
    assert out.unit_status == testing.ActiveStatus("serving 1 scrape job on :9090")


def test_a_token_in_the_secret_becomes_a_bearer_credentials_file(ctx, fake):
    secret = user_secret(token=TOKEN)
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}

    ctx.run(ctx.on.config_changed(), state(secrets=[secret], **config))

    [store] = remote_writes(fake)
    assert store["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/etc/prometheus/juju-remote-write/token",
    }
    assert fake.credential_files == {"token": TOKEN}
    assert TOKEN not in fake.config


def test_a_url_both_in_the_option_and_from_the_relation_is_sent_to_once(ctx, fake):
    url = "http://10.0.0.7:9090/api/v1/write"
    secret = user_secret(token=TOKEN)
    config = {"remote_write_urls": url, "remote_write_credentials": secret.id}

    ctx.run(ctx.on.config_changed(), state(receiver(), secrets=[secret], **config))

    urls = [entry["url"] for entry in remote_writes(fake)]
    assert urls == [url, "http://10.0.0.8:9090/api/v1/write"]
    assert "authorization" in remote_writes(fake)[0]


def test_a_new_secret_revision_rewrites_the_file_without_a_reload(ctx, fake, settled):
    secret = user_secret(username="prom", password=PASSWORD)
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}
    settled(state(secrets=[secret], **config))
    rotated = testing.Secret(
        id=secret.id,
        tracked_content=secret.tracked_content,
        latest_content={"username": "prom", "password": "rotated-password"},
    )

    ctx.run(ctx.on.secret_changed(rotated), state(secrets=[rotated], **config))

    assert fake.credential_files == {"password": "rotated-password"}
    # Prometheus reads password_file on every request: the config did not change.
    assert fake.writes == []
    assert fake.actions == []


def missing_secret_message(secret_id: str) -> str:
    return (
        f"remote-write-credentials: secret {secret_id} not found or not granted"
        " (juju grant-secret <name> prometheus); not sending to remote-write-urls"
    )


def test_a_missing_secret_blocks_naming_the_option_and_everything_else_goes_on(ctx, fake):
    secret_id = "secret:d5cc2q7mp25c77b8d3vg"
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret_id}

    out = ctx.run(ctx.on.config_changed(), state(receiver(), **config))

    assert out.unit_status == testing.BlockedStatus(missing_secret_message(secret_id))
    # The relation's receivers, the scrape jobs and the service carry on.
    assert STORE not in [entry["url"] for entry in remote_writes(fake)]
    assert len(remote_writes(fake)) == 2
    assert list(fake.jobs()) == ["prometheus"]
    assert fake.is_running


def test_a_revoked_secret_stops_the_sending_and_removes_the_password(ctx, fake, settled):
    secret = user_secret(username="prom", password=PASSWORD)
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}
    settled(state(secrets=[secret], **config))
    assert fake.credential_files

    out = ctx.run(ctx.on.update_status(), state(**config))

    assert out.unit_status == testing.BlockedStatus(missing_secret_message(secret.id))
    assert remote_writes(fake) == []
    assert fake.credential_files == {}
    assert fake.actions == ["reload"]


def test_a_secret_juju_refuses_to_read_blocks_with_jujus_words(ctx, fake, monkeypatch):
    secret = user_secret(token=TOKEN)
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}

    def denied(*_args, **_kwargs):
        raise ops.ModelError("ERROR permission denied")

    monkeypatch.setattr(ops.Secret, "get_content", denied)
    out = ctx.run(ctx.on.config_changed(), state(secrets=[secret], **config))

    assert out.unit_status == testing.BlockedStatus(
        f"remote-write-credentials: secret {secret.id} cannot be read: ERROR permission denied;"
        " not sending to remote-write-urls"
    )
    assert remote_writes(fake) == []


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"password": PASSWORD}, "must hold username and password, or token (it holds password)"),
        ({"username": "u", "token": TOKEN}, "or token (it holds token, username)"),
        (
            {"username": "u", "password": PASSWORD, "token": TOKEN},
            "must hold username and password, or token (it holds password, token, username)",
        ),
        ({"username": "u", "password": f"{PASSWORD}\n"}, "password is empty, holds control"),
        ({"username": "a:b", "password": PASSWORD}, "username holds a colon"),
        ({"token": f" {TOKEN}"}, "token is empty, holds control characters or starts or ends"),
    ],
)
def test_a_secret_without_usable_credentials_blocks_and_shows_no_value(ctx, fake, content, why):
    secret = user_secret(**content)
    config = {"remote_write_urls": STORE, "remote_write_credentials": secret.id}

    out = ctx.run(ctx.on.config_changed(), state(secrets=[secret], **config))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"remote-write-credentials: secret {secret.id}: ")
    assert why in out.unit_status.message
    assert PASSWORD not in out.unit_status.message
    assert TOKEN not in out.unit_status.message
    assert remote_writes(fake) == []
    assert fake.credential_files == {}


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ("ftp://store.lab/write", 'URL 1: url must start with http:// or https://, got "ftp'),
        (f"{STORE} store.lab:9090", "URL 2: url must start with http:// or https://"),
        ("https://prom:hunter2@mimir.lab/push", "URL 1: url has an @ (credentials are refused"),
        ("https://mimir.lab/push?token=abc", "URL 1: url must not carry a query or a fragment"),
        ("http://", "URL 1: url has no host"),
    ],
)
def test_a_bad_url_blocks_naming_the_option_and_its_position(ctx, fake, urls, message):
    out = ctx.run(ctx.on.config_changed(), state(remote_write_urls=urls))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"remote-write-urls: {message}")
    assert "hunter2" not in out.unit_status.message
    assert "token=abc" not in out.unit_status.message  # a query may hold a secret
    assert fake.config is None  # an invalid option writes nothing


def test_a_secret_id_that_is_not_one_blocks(ctx, fake):
    config = {"remote_write_urls": STORE, "remote_write_credentials": "prom:hunter2"}

    out = ctx.run(ctx.on.config_changed(), state(**config))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(
        "remote-write-credentials: the value is not a secret ID"
    )
    assert "hunter2" not in out.unit_status.message


@hypothesis.given(
    content=st.dictionaries(
        st.sampled_from(["username", "password", "token", "user", "pass", "extra"]),
        st.text(min_size=0, max_size=12).map(lambda text: f"V\u00a7{text}"),
        max_size=4,
    )
)
def test_no_secret_content_makes_a_message_that_shows_a_value(content):
    from prometheus import remote_storage

    keys = set(content)
    usable = keys in ({"username", "password"}, {"token"})
    if not usable:
        with pytest.raises(ValueError, match="the secret") as refused:
            remote_storage.parse_credentials(content)
        assert "V\u00a7" not in str(refused.value)
