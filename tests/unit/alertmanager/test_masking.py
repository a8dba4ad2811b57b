"""The masking rule (show-config) and the redaction of messages, on the workload module alone."""

from __future__ import annotations

import pytest
import yaml
from alertmanager import masking


@pytest.mark.parametrize(
    "key",
    [
        "smtp_auth_password",
        "auth_password",
        "password",
        "smtp_auth_secret",
        "auth_secret",
        "api_secret",
        "client_secret",
        "token",
        "bot_token",
        "bearer_token",
        "credentials",
        "api_key",
        "service_key",
        "routing_key",
        "user_key",
        "opsgenie_api_key",
        "victorops_api_key",
        "key",
        "url",
        "webhook_url",
        "api_url",
        "slack_api_url",
        "telegram_api_url",
        "Password",
        "API_KEY",
    ],
)
def test_secret_keys(key: str):
    assert masking.is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "password_file",
        "auth_password_file",
        "credentials_file",
        "bearer_token_file",
        "api_key_file",
        "api_url_file",
        "url_file",
        "key_file",
        "cert_file",
        "smtp_auth_username",
        "username",
        "smtp_smarthost",
        "proxy_url",
        "channel",
        "to",
        "receiver",
        "group_by",
        "keys",
        "monkey",
        0,
        None,
    ],
)
def test_not_secret_keys(key: object):
    assert not masking.is_secret_key(key)


def test_a_secret_key_masks_a_whole_list_or_mapping_under_it():
    data = {"http_headers": {"secrets": ["a-secret-one", "a-secret-two"]}, "token": {"x": "y1"}}

    masked, found = masking.mask(data)

    assert masked == {
        "http_headers": {"secrets": ["<secret>", "<secret>"]},
        "token": {"x": "<secret>"},
    }
    assert found == {"a-secret-one", "a-secret-two", "y1"}


def test_numbers_and_empty_values_under_secret_keys():
    masked, found = masking.mask({"api_key": 12345, "password": "", "token": None})

    assert masked == {"api_key": "<secret>", "password": "", "token": None}
    assert found == {"12345"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw-secret@proxy.lab:3128/", "http://<secret>@proxy.lab:3128/"),
        ("https://api.lab/v1?api_key=abcd1234&x=1", "https://api.lab/v1?<secret>"),
        ("https://u@h/p?q=12345#frag", "https://<secret>@h/p?<secret>#frag"),
        ("https://mail.lab:587/", "https://mail.lab:587/"),
        ("http://[fd00::1]:9093/", "http://[fd00::1]:9093/"),
    ],
)
def test_any_other_url_loses_its_userinfo_and_query(url: str, shown: str):
    masked, found = masking.mask({"receivers": [{"name": "x", "proxy_url": url}]})

    assert masked["receivers"][0]["proxy_url"] == shown
    if shown != url:
        assert url in found


def test_the_password_of_a_url_and_its_long_query_values_are_redacted_alone_too():
    _, found = masking.mask({"x": "http://user:pw-secret@h/?token=abcd1234&v=1"})

    assert {"pw-secret", "user:pw-secret", "abcd1234", "token=abcd1234&v=1"} <= found
    assert "1" not in found
    assert "token" not in found


def test_a_url_that_does_not_parse_is_masked_whole():
    masked, found = masking.mask({"proxy_url": "http://[broken/x"})

    assert masked == {"proxy_url": "<secret>"}
    assert found == {"http://[broken/x"}


def test_masked_yaml_keeps_the_structure_and_order():
    text = "route:\n  receiver: x\nglobal:\n  smtp_auth_password: hunter2\n"

    shown = masking.masked_yaml(text)

    assert shown == "route:\n  receiver: x\nglobal:\n  smtp_auth_password: <secret>\n"
    assert yaml.safe_load(shown)["global"]["smtp_auth_password"] == "<secret>"


def test_masked_yaml_of_text_that_is_not_yaml_says_where_without_quoting():
    with pytest.raises(
        ValueError, match=r"found unexpected end of stream \(line 3, column 1\)"
    ) as raised:
        masking.masked_yaml('a: 1\nb: "hunter2-secret\n')

    assert "hunter2" not in str(raised.value)


def test_secrets_of_text_that_does_not_parse_is_empty():
    assert masking.secrets_of("a: [") == set()
    assert masking.secrets_of(None) == set()
    assert masking.secrets_of("") == set()


@pytest.mark.parametrize(
    ("message", "secret", "redacted"),
    [
        ('parse "https://h/tok123": bad', "https://h/tok123", 'parse "<secret>": bad'),
        # Go and JSON escape quotes and backslashes alike.
        ('err="pa\\"ss"', 'pa"ss', 'err="<secret>"'),
        # gopkg.in/yaml.v2 shows a value longer than ten characters by its first seven.
        (
            "line 3: cannot unmarshal !!str `hunter2...` into int",
            "hunter2-is-long",
            "line 3: cannot unmarshal !!str <secret> into int",
        ),
        (
            "line 3: cannot unmarshal !!str `short` into int",
            "short",
            "line 3: cannot unmarshal !!str `<secret>` into int",
        ),
    ],
)
def test_redact_finds_the_forms_secrets_take_in_messages(message, secret, redacted):
    assert masking.redact(message, {secret}) == redacted


def test_redact_never_searches_inside_a_mask_it_wrote():
    assert masking.redact("e and secret", {"e", "secret"}) == "<secret> and <secret>"


def test_redact_without_secrets_changes_nothing():
    assert masking.redact("undefined receiver", set()) == "undefined receiver"
    assert masking.redact("undefined receiver", {""}) == "undefined receiver"
