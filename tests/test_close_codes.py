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


@pytest.mark.parametrize(
    ("code", "label"),
    [
        (None, "none"),
        (1000, "1000"),
        (1001, "1001"),
        (1015, "1015"),
        (4429, "4429"),
        (4503, "4503"),
        (3000, "3xxx"),
        (3999, "3xxx"),
        (4000, "4xxx"),
        (4999, "4xxx"),
        (1016, "other"),
        (2999, "other"),
        (5000, "other"),
    ],
)
def test_code_label_names_a_bounded_set(code: int | None, label: str) -> None:
    assert close_codes.code_label(code) == label


def test_every_client_code_fits_in_a_few_labels() -> None:
    labels = {close_codes.code_label(code) for code in range(65536)}
    assert len(labels) <= 16 + 7 + 3  # the RFC's codes, the app's, 3xxx, 4xxx and other
