"""asgi_ws.policy: origin, size and rate decisions as pure functions (contract §3)."""

from __future__ import annotations

import pytest

from asgi_ws import close_codes
from asgi_ws.policy import TokenBucket, check_message, header, message_size, origin_allowed


def test_header_finds_the_first_value() -> None:
    headers = [(b"host", b"a"), (b"origin", b"https://x"), (b"origin", b"https://y")]
    assert header(headers, b"origin") == "https://x"
    assert header(headers, b"cookie") is None


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "example.com", (), True),
        ("https://example.com", "example.com", (), True),
        ("HTTPS://EXAMPLE.COM/", "Example.com", (), True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", (), True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", (), False),
        ("https://evil.example", "example.com", (), False),
        ("https://example.com.evil.example", "example.com", (), False),
        ("null", "example.com", (), False),
        ("https://example.com", None, (), False),
        ("http://[::1", "[::1]", (), False),
        ("https://app.example", "api.example", ("https://app.example",), True),
        ("https://other.example", "api.example", ("https://app.example",), False),
        ("https://anything.example", "api.example", ("*",), True),
        ("null", "api.example", ("*",), True),
    ],
)
def test_origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok


def test_message_size_counts_utf8_bytes() -> None:
    assert message_size("abc", None) == 3
    assert message_size("é", None) == 2
    assert message_size("🎉", None) == 4
    assert message_size(None, b"\x00" * 7) == 7
    assert message_size(None, None) == 0
    assert message_size("\ud800", None) == 3  # a lone surrogate is counted, not a crash


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.05) is False  # half a token
    assert bucket.allow(0.1) is True  # one token refilled
    assert bucket.allow(0.1) is False


def test_token_bucket_never_saves_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=2, now=0.0)
    assert [bucket.allow(1000.0) for _ in range(3)] == [True, True, False]


def test_token_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.allow(10.0) is True
    assert bucket.allow(5.0) is False


def test_rate_zero_turns_the_bucket_off() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(10_000))


def test_check_message_size_comes_before_rate() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=0.0)
    assert check_message(message_size("x" * 11, None), 10, bucket, 0.0) is close_codes.MESSAGE_TOO_BIG
    assert check_message(message_size("x" * 10, None), 10, bucket, 0.0) is None
    assert check_message(message_size("x", None), 10, bucket, 0.0) is close_codes.RATE_LIMITED
    assert check_message(message_size(None, b"x" * 11), 10, bucket, 0.0) is close_codes.MESSAGE_TOO_BIG


def test_check_message_counts_bytes_not_characters() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert check_message(message_size("é" * 5, None), 10, bucket, 0.0) is None
    assert check_message(message_size("é" * 6, None), 10, bucket, 0.0) is close_codes.MESSAGE_TOO_BIG
