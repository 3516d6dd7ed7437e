"""asgi_ws.settings: environment variables, CLI flags, validation and messages (contract §3)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from asgi_ws.policy import origin_allowed
from asgi_ws.settings import Settings, SettingsError, add_arguments


def parse_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_match_the_spec() -> None:
    settings = Settings()
    assert settings.allowed_origins == ()
    assert settings.max_message_size == 64 * 1024
    assert settings.rate_limit == 100
    assert settings.rate_burst == 200
    assert settings.idle_timeout == 300
    assert settings.max_connections == 10_000
    assert settings.outbox_size == 1024
    assert settings.outbox_bytes == 1024 * 1024
    assert settings.max_pending_pushes == 4
    assert settings.broker == "memory://"
    assert settings.log_level == "info"


# Every variable of the contract: as written in the environment, and the value it gives its setting.
VARIABLES = [
    ("ASGI_WS_ALLOWED_ORIGINS", "https://a.example, https://B.example/", ("https://a.example", "https://b.example")),
    ("ASGI_WS_MAX_MESSAGE_SIZE", "1024", 1024),
    ("ASGI_WS_RATE_LIMIT", "2.5", 2.5),
    ("ASGI_WS_RATE_BURST", "7", 7),
    ("ASGI_WS_IDLE_TIMEOUT", "0.25", 0.25),
    ("ASGI_WS_MAX_CONNECTIONS", "3", 3),
    ("ASGI_WS_OUTBOX_SIZE", "16", 16),
    ("ASGI_WS_OUTBOX_BYTES", "4096", 4096),
    ("ASGI_WS_MAX_PENDING_PUSHES", "2", 2),
    ("ASGI_WS_HISTORY_SIZE", "50", 50),
    ("ASGI_WS_HISTORY_TTL", "2.5", 2.5),
    ("ASGI_WS_HISTORY_BYTES", "65536", 65536),
    ("ASGI_WS_DEDUPE_WINDOW", "30", 30.0),
    ("ASGI_WS_DEDUPE_IDS", "500", 500),
    ("ASGI_WS_PRESENCE_TTL", "3", 3.0),
    ("ASGI_WS_BROKER", "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("ASGI_WS_LOG_LEVEL", "DEBUG", "debug"),
    ("ASGI_WS_LOG_FORMAT", "JSON", "json"),
    ("ASGI_WS_TOKEN_SECRET", "s" * 32, "s" * 32),
    ("ASGI_WS_TOKEN_ALL", "yes", True),
]


def test_the_table_names_every_setting() -> None:
    assert [variable for variable, _, _ in VARIABLES] == [
        "ASGI_WS_" + setting.name.upper() for setting in dataclasses.fields(Settings)
    ]


@pytest.mark.parametrize(("variable", "raw", "value"), VARIABLES, ids=[variable for variable, _, _ in VARIABLES])
def test_every_variable_of_the_contract_is_read(variable: str, raw: str, value: object) -> None:
    setting = variable.removeprefix("ASGI_WS_").lower()
    assert Settings.from_env({variable: raw}) == Settings(**{setting: value})  # that setting, the others untouched


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "ASGI_WS_UNKNOWN": "x"}) == Settings()


def test_zero_turns_rate_limit_and_idle_timeout_off() -> None:
    settings = Settings.from_env({"ASGI_WS_RATE_LIMIT": "0", "ASGI_WS_IDLE_TIMEOUT": "0"})
    assert settings.rate_limit == 0
    assert settings.idle_timeout == 0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASGI_WS_MAX_MESSAGE_SIZE", "abc", "positive integer"),
        ("ASGI_WS_MAX_MESSAGE_SIZE", "0", "positive integer"),
        ("ASGI_WS_MAX_MESSAGE_SIZE", "-5", "positive integer"),
        ("ASGI_WS_RATE_LIMIT", "fast", "number >= 0"),
        ("ASGI_WS_RATE_LIMIT", "-1", "number >= 0"),
        ("ASGI_WS_RATE_LIMIT", "nan", "number >= 0"),
        ("ASGI_WS_IDLE_TIMEOUT", "inf", "number >= 0"),
        ("ASGI_WS_RATE_BURST", "1.5", "positive integer"),
        ("ASGI_WS_MAX_CONNECTIONS", "", "positive integer"),
        ("ASGI_WS_OUTBOX_SIZE", "0", "positive integer"),
        ("ASGI_WS_OUTBOX_BYTES", "0", "positive integer"),
        ("ASGI_WS_OUTBOX_BYTES", "1MiB", "positive integer"),
        ("ASGI_WS_MAX_PENDING_PUSHES", "-1", "integer >= 0"),
        ("ASGI_WS_MAX_PENDING_PUSHES", "2.5", "integer >= 0"),
        ("ASGI_WS_MAX_PENDING_PUSHES", "", "integer >= 0"),
        ("ASGI_WS_BROKER", "kafka://x", "memory://"),
        ("ASGI_WS_BROKER", "memory", "expected memory:// or redis://"),
        ("ASGI_WS_BROKER", "kafka://host", "expected memory:// or redis://"),
        ("ASGI_WS_BROKER", "redis://", "expected memory:// or redis://"),
        ("ASGI_WS_BROKER", "redis://host:port/0", "port is not a number"),
        ("ASGI_WS_BROKER", "redis://host:6379/zero", "database must be a number"),
        ("ASGI_WS_LOG_LEVEL", "loud", "debug"),
        ("ASGI_WS_ALLOWED_ORIGINS", "example.com", "https://example.com"),
        ("ASGI_WS_HISTORY_SIZE", "0", "positive integer"),
        ("ASGI_WS_HISTORY_SIZE", "-1", "positive integer"),
        ("ASGI_WS_HISTORY_SIZE", "1e3", "positive integer"),
        ("ASGI_WS_HISTORY_SIZE", "", "positive integer"),
        ("ASGI_WS_HISTORY_TTL", "0", "number > 0"),
        ("ASGI_WS_HISTORY_TTL", "-5", "number > 0"),
        ("ASGI_WS_HISTORY_TTL", "inf", "number > 0"),
        ("ASGI_WS_HISTORY_TTL", "nan", "number > 0"),
        ("ASGI_WS_HISTORY_TTL", "5m", "number > 0"),
        ("ASGI_WS_HISTORY_BYTES", "0", "positive integer"),
        ("ASGI_WS_HISTORY_BYTES", "64MiB", "positive integer"),
        ("ASGI_WS_DEDUPE_WINDOW", "0", "number > 0"),
        ("ASGI_WS_DEDUPE_IDS", "-1", "positive integer"),
        ("ASGI_WS_TOKEN_ALL", "maybe", "expected 1 or 0"),
    ],
)
def test_bad_variable_names_the_variable_and_the_value(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    message = str(error.value)
    assert message.startswith(f"{variable}={value!r}:")
    assert expected in message


def test_flags_override_the_environment() -> None:
    args = parse_flags("--max-message-size", "10", "--allowed-origins", "*")
    settings = Settings.from_sources(args, {"ASGI_WS_MAX_MESSAGE_SIZE": "99", "ASGI_WS_OUTBOX_SIZE": "5"})
    assert settings.max_message_size == 10
    assert settings.outbox_size == 5
    assert settings.allowed_origins == ("*",)


def test_zero_pending_pushes_is_allowed_and_the_new_bounds_follow_the_same_precedence() -> None:
    args = parse_flags("--max-pending-pushes", "0", "--outbox-bytes", "2048")
    environ = {"ASGI_WS_MAX_PENDING_PUSHES": "9", "ASGI_WS_OUTBOX_BYTES": "99"}
    assert Settings.from_env(environ).max_pending_pushes == 9
    settings = Settings.from_sources(args, environ)
    assert (settings.max_pending_pushes, settings.outbox_bytes) == (0, 2048)


def test_bad_flag_names_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--rate-burst='many': expected a positive integer"):
        Settings.from_sources(parse_flags("--rate-burst", "many"), {})


def test_values_built_in_code_are_validated_too() -> None:
    with pytest.raises(SettingsError, match="outbox_size = 0"):
        Settings(outbox_size=0)
    with pytest.raises(SettingsError, match="outbox_bytes = 0"):
        Settings(outbox_bytes=0)
    with pytest.raises(SettingsError, match="max_pending_pushes = -1: expected an integer >= 0"):
        Settings(max_pending_pushes=-1)


def test_to_env_round_trips() -> None:
    settings = Settings(allowed_origins=("https://a.example", "*"), rate_limit=0.5, idle_timeout=0, log_level="debug")
    assert Settings.from_env(settings.to_env()) == settings


def test_python_log_level() -> None:
    assert Settings(log_level="warning").python_log_level == 30


def test_values_built_in_code_are_normalised_like_the_environment() -> None:
    in_code = Settings(allowed_origins=("https://App.example.com/",))
    from_env = Settings.from_env({"ASGI_WS_ALLOWED_ORIGINS": "https://App.example.com/"})
    assert in_code.allowed_origins == from_env.allowed_origins == ("https://app.example.com",)
    assert origin_allowed("https://app.example.com", "other.example", in_code.allowed_origins)


def test_the_feed_history_settings_have_their_defaults_and_variables() -> None:
    defaults = Settings()
    assert (defaults.history_size, defaults.history_ttl, defaults.history_bytes) == (1000, 300.0, 64 * 1024 * 1024)
    settings = Settings.from_env(
        {"ASGI_WS_HISTORY_SIZE": "50", "ASGI_WS_HISTORY_TTL": "2.5", "ASGI_WS_HISTORY_BYTES": "65536"}
    )
    assert (settings.history_size, settings.history_ttl, settings.history_bytes) == (50, 2.5, 65536)
    assert Settings.from_env(settings.to_env()) == settings


def test_history_flags_override_the_environment() -> None:
    args = parse_flags("--history-size", "7", "--history-ttl", "0.5")
    settings = Settings.from_sources(args, {"ASGI_WS_HISTORY_SIZE": "99", "ASGI_WS_HISTORY_BYTES": "4096"})
    assert (settings.history_size, settings.history_ttl, settings.history_bytes) == (7, 0.5, 4096)


def test_a_short_token_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"ASGI_WS_TOKEN_SECRET": "hunter2"})
    assert str(error.value) == (
        "ASGI_WS_TOKEN_SECRET=***: expected at least 32 bytes: an HS256 key is 256 bits or more (RFC 7518)"
    )
    with pytest.raises(SettingsError, match=r"token_secret = \*\*\*"):
        Settings(token_secret="hunter2")


def test_the_token_secret_stays_out_of_the_repr_and_has_no_flag() -> None:
    settings = Settings(token_secret="s" * 32, token_all=True)
    assert "sss" not in repr(settings)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "--token-secret" not in parser.format_help()
    assert "--token-all" in parser.format_help()
    assert settings.to_env()["ASGI_WS_TOKEN_ALL"] == "1"
    assert Settings.from_env(settings.to_env()) == settings
