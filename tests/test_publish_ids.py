"""Publish ids: which feed texts carry one, the ack's wire text, and the memory broker's window (contract §8.1)."""

from __future__ import annotations

import json

import pytest

from asgi_ws import close_codes
from asgi_ws.publish_ids import Ack, IdPublish, SeenIds, parse_publish


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('{"id": "m1", "data": "hi"}', IdPublish("m1", "hi")),
        ('{"data": "", "id": "a.b:c-d_9"}', IdPublish("a.b:c-d_9", "")),
        ('{"id": "' + "x" * 64 + '", "data": "{}"}', IdPublish("x" * 64, "{}")),
        # plain text, as before: not an object, no "id", or not JSON at all
        ("hello", None),
        (' {"id": "m1", "data": "hi"}', None),  # only a text that starts with "{" is looked at
        ('{"data": "no id"}', None),
        ("[1, 2]", None),
        ("{not json", None),
        ("{" * 100_000, None),  # nesting past the recursion limit: plain text, not an error
        # an object with "id" that is not {"id": ID, "data": TEXT}: the client meant an id
        ('{"id": "", "data": "x"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "' + "x" * 65 + '", "data": "x"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "a b", "data": "x"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "é", "data": "x"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": 7, "data": "x"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "m1"}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "m1", "data": 5}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "m1", "data": "x", "extra": 1}', close_codes.INVALID_PUBLISH_ID),
        ('{"id": "m1\\n", "data": "x"}', close_codes.INVALID_PUBLISH_ID),  # \Z, not $: no trailing newline
    ],
)
def test_parse_publish(text: str, parsed: object) -> None:
    assert parse_publish(text) == parsed


def test_invalid_publish_id_is_a_4400_with_its_own_reason() -> None:
    assert close_codes.Close(4400, "invalid publish id") == close_codes.INVALID_PUBLISH_ID
    assert close_codes.INVALID_PUBLISH_ID.label == "invalid_publish_id"


def test_an_ack_names_the_id_the_epoch_and_the_offset() -> None:
    ack = Ack("m1", "e1", 42)
    assert json.loads(ack.text) == {"ack": "m1", "epoch": "e1", "offset": 42}
    assert ack.outgoing() == ({"type": "websocket.send", "text": ack.text, "bytes": None}, len(ack.text.encode()))


def test_an_id_is_remembered_per_room_for_the_window_from_its_first_publish() -> None:
    seen = SeenIds(window=120.0, max_ids=100)
    assert seen.ack_of("r", "m1", now=0.0) is None
    seen.remember("r", Ack("m1", "e", 1), now=0.0)
    assert seen.ack_of("r", "m1", now=119.9) == Ack("m1", "e", 1)
    assert seen.ack_of("other", "m1", now=119.9) is None  # rooms count apart
    assert seen.ack_of("r", "m1", now=120.0) is None  # the window has passed
    assert len(seen) == 0


def test_expired_ids_go_first_and_the_newer_stay() -> None:
    seen = SeenIds(window=10.0, max_ids=100)
    for number in range(5):
        seen.remember("r", Ack(f"m{number}", "e", number + 1), now=float(number))
    assert seen.ack_of("r", "m4", now=12.0) == Ack("m4", "e", 5)
    assert len(seen) == 2  # m0, m1 and m2 expired at 10, 11 and 12; m3 and m4 are left
    assert seen.evicted == 0  # expiry is not eviction


def test_past_max_ids_the_oldest_are_forgotten_and_counted() -> None:
    seen = SeenIds(window=120.0, max_ids=3)
    for number in range(5):
        seen.remember("r", Ack(f"m{number}", "e", number + 1), now=0.0)
    assert len(seen) == 3
    assert seen.evicted == 2
    assert seen.ack_of("r", "m0", now=0.0) is None
    assert seen.ack_of("r", "m1", now=0.0) is None
    assert seen.ack_of("r", "m2", now=0.0) == Ack("m2", "e", 3)
