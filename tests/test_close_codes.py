"""asgi_ws.close_codes: the codes of contract §3 and the RFC 6455 reason limit."""

from __future__ import annotations

import pytest

from asgi_ws import close_codes
from asgi_ws.close_codes import Close


def test_codes_and_reasons_match_the_spec() -> None:
    table = {
        close_codes.NORMAL: (1000, ""),
        close_codes.UNSUPPORTED_DATA: (4400, "unsupported data"),
        close_codes.IDLE_TIMEOUT: (4408, "idle timeout"),
        close_codes.MESSAGE_TOO_BIG: (4413, "message too big"),
        close_codes.RATE_LIMITED: (4429, "rate limited"),
        close_codes.INTERNAL_ERROR: (4500, "internal error"),
        close_codes.SLOW_CONSUMER: (4503, "slow consumer"),
    }
    assert {close: (close.code, close.reason) for close in table} == table


def test_rejection_statuses() -> None:
    assert close_codes.NOT_FOUND.status == 404
    assert close_codes.BAD_ORIGIN.status == 403
    assert close_codes.BAD_ROOM.status == close_codes.BAD_COUNT.status == 400
    assert close_codes.TOO_MANY_CONNECTIONS.status == 503


def test_reasons_longer_than_123_bytes_are_refused() -> None:
    Close(4000, "é" * 61)  # 122 bytes
    with pytest.raises(ValueError, match="123 bytes"):
        Close(4000, "é" * 62)
