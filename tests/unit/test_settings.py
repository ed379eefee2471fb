"""Config loading: the spec's shape is accepted, bad values are named, secrets stay out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import SERVER_NAMES, RuntimeEnv, load_config, parse_config


def test_shipped_config_lists_all_ten_servers_with_deltatask_required() -> None:
    config = load_config()
    assert set(config.servers) == set(SERVER_NAMES)
    assert config.servers["deltatask"].required
    assert config.sync_interval == 300
    assert config.health_check_interval == 60
    assert config.circuit_breaker_threshold == 5


def test_the_specifications_minimal_shape_is_accepted_as_is() -> None:
    spec = {
        "servers": {
            "deltatask": {"enabled": True, "priority": 1, "timeout": 30, "retry_attempts": 3},
            "memory": {"enabled": False, "priority": 2, "timeout": 10, "retry_attempts": 2},
        },
        "sync_interval": 300,
        "health_check_interval": 60,
        "circuit_breaker_threshold": 5,
        "monitoring_enabled": True,
        "security": {
            "api_key_required": True,
            "rate_limiting": {"enabled": True, "requests_per_minute": 100},
        },
        "notifications": {"telegram": {"bot_token": "${BOT_TOKEN}", "chat_id": "${ADMIN_CHAT_ID}"}},
    }
    config = parse_config(spec)
    assert list(config.enabled_servers()) == ["deltatask"]
    assert config.security.rate_limiting.requests_per_minute == 100


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"servers": {"deltatask": {"priority": 0}}}, "servers.deltatask.priority"),
        ({"servers": {"deltatask": {"timeout": -1}}}, "servers.deltatask.timeout"),
        (
            {"servers": {"deltatask": {"retry_attempts": "many"}}},
            "servers.deltatask.retry_attempts",
        ),
        ({"servers": {"jira": {}}}, "servers"),
        ({"circuit_breaker_threshold": 0}, "circuit_breaker_threshold"),
        ({"servers": {"deltatask": {"enabld": True}}}, "servers.deltatask.enabld"),
        ({"servers": {"deltatask": {"transport": "http"}}}, "servers.deltatask"),
    ],
)
def test_a_bad_value_is_reported_with_its_path(patch: dict[str, object], where: str) -> None:
    data: dict[str, object] = {"servers": {"deltatask": {}}}
    data.update(patch)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="test.json")
    assert where in str(caught.value)
    assert "test.json" in str(caught.value)


def test_a_literal_bot_token_in_the_file_is_refused_without_echoing_it() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    data = {"servers": {}, "notifications": {"telegram": {"bot_token": token}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert "environment" in str(caught.value)
    assert token not in str(caught.value)


def test_a_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "servers": {,\n}', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        load_config(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.json")


def test_runtime_env_reads_ids_and_never_shows_the_token() -> None:
    env = RuntimeEnv.from_environ(
        {
            "BOT_TOKEN": "42:secret-token-value",
            "ADMIN_IDS": "1, 2;3",
            "ALLOWED_USER_IDS": "",
            "ADMIN_CHAT_ID": "-100500",
            "TASKBOT_DATA_DIR": "/tmp/x",
        }
    )
    assert env.admin_ids == {1, 2, 3}
    assert env.admin_chat_id == -100500
    assert env.allowed_user_ids == frozenset()
    assert "secret-token-value" not in repr(env)
    assert "secret-token-value" not in str(env.model_dump(exclude={"bot_token"}))


def test_an_admin_id_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a Telegram id"):
        RuntimeEnv.from_environ({"ADMIN_IDS": "alice"})


def test_with_servers_changes_one_entry_and_keeps_the_rest() -> None:
    config = load_config()
    changed = config.with_servers(memory={"enabled": False})
    assert not changed.servers["memory"].enabled
    assert config.servers["memory"].enabled
    assert changed.servers["git"] == config.servers["git"]
    assert json.loads(changed.model_dump_json())["sync_interval"] == 300


@pytest.mark.parametrize(
    ("server", "secret"),
    [
        ({"env": {"HPKV_API_KEY": "hpkv_live_abcdef123456"}}, "hpkv_live_abcdef123456"),
        ({"url": "https://user:p4ssw0rdSECRET@mcp.example/mcp"}, "p4ssw0rdSECRET"),
    ],
)
def test_a_literal_secret_in_a_server_entry_is_refused_without_echoing_it(
    server: dict[str, object], secret: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"servers": {"hpkv-memory": server}})
    assert "environment" in str(caught.value) or "api_key_env" in str(caught.value)
    assert secret not in str(caught.value)


def test_an_environment_reference_in_a_server_entry_is_accepted() -> None:
    config = parse_config({"servers": {"hpkv-memory": {"env": {"HPKV_API_KEY": "${HPKV_KEY}"}}}})
    assert config.servers["hpkv-memory"].env == {"HPKV_API_KEY": "${HPKV_KEY}"}


def test_an_unknown_server_is_named_together_with_the_other_errors() -> None:
    data = {"servers": {"deltatask": {"priority": 0}, "bogus": {}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="test.json")
    assert "servers.deltatask.priority" in str(caught.value)
    assert "unknown server(s) ['bogus']" in str(caught.value)
