"""asgi_ws.messages: the exact payload formats of contract §1."""

from __future__ import annotations

import json

from asgi_ws.messages import broadcast_text, json_reply, stream_payloads, ws_reply


def test_ws_reply() -> None:
    assert ws_reply("t") == "Message text was: t"
    assert ws_reply("") == "Message text was: "


def test_broadcast_text() -> None:
    assert broadcast_text("t") == "New message: t"


def test_json_reply_wraps_any_json_value() -> None:
    assert json.loads(json_reply('{"a": 1}')) == {"message": "Received JSON data", "data": {"a": 1}}
    assert json.loads(json_reply("null")) == {"message": "Received JSON data", "data": None}


def test_json_reply_reports_invalid_json() -> None:
    reply = json.loads(json_reply("{oops"))
    assert reply["error"] == "invalid_json"
    assert "line 1 column 2" in reply["detail"]


def test_json_reply_survives_deep_nesting() -> None:
    assert json.loads(json_reply("[" * 100_000))["error"] == "invalid_json"
    assert json.loads(json_reply("[" * 100_000 + "]" * 100_000))["error"] == "invalid_json"


def test_json_reply_does_not_escape_non_ascii() -> None:
    assert json_reply('"é"') == '{"message": "Received JSON data", "data": "é"}'


def test_stream_payloads_plain() -> None:
    assert list(stream_payloads("go", 3)) == ["1", "2", "3"]
    assert list(stream_payloads('{"message": 5}', 2)) == ["1", "2"]  # not a string
    assert list(stream_payloads('["message"]', 2)) == ["1", "2"]  # not an object
    assert list(stream_payloads("[" * 100_000, 1)) == ["1"]


def test_stream_payloads_labelled() -> None:
    payloads = [json.loads(p) for p in stream_payloads('{"message": "ü"}', 2)]
    assert payloads == [{"message": "ü - 1", "number": 1}, {"message": "ü - 2", "number": 2}]


def test_stream_payloads_is_lazy() -> None:
    payloads = stream_payloads("go", 1_000_000)
    assert next(payloads) == "1"


def test_json_reply_refuses_nan_and_infinity() -> None:
    for text in ["NaN", "[1, Infinity]", '{"x": -Infinity}']:
        reply = json.loads(json_reply(text))
        assert reply["error"] == "invalid_json"
        assert "is not valid JSON" in reply["detail"]


def test_json_reply_turns_huge_numbers_into_valid_json_or_an_error() -> None:
    # 1e999 parses to float("inf"), which must not be written back as Infinity.
    reply = json_reply("[1e999]")
    assert "Infinity" not in reply
    assert json.loads(reply)["error"] == "invalid_json"


def test_json_reply_escapes_a_lone_surrogate_so_the_reply_is_utf8() -> None:
    reply = json_reply('["\\ud800", "é"]')
    reply.encode()  # would raise on a raw lone surrogate
    assert json.loads(reply) == {"message": "Received JSON data", "data": ["\ud800", "é"]}


def test_stream_label_with_a_lone_surrogate_is_escaped() -> None:
    payloads = list(stream_payloads('{"message": "\\udc00x"}', 2))
    for payload in payloads:
        payload.encode()
    assert json.loads(payloads[1]) == {"message": "\udc00x - 2", "number": 2}


def test_stream_request_with_nan_is_not_a_label() -> None:
    assert list(stream_payloads('{"message": "m", "x": NaN}', 2)) == ["1", "2"]


def test_json_reply_answers_an_integer_past_pythons_digit_limit() -> None:
    # Python 3.11+ refuses to convert integers of more than 4300 digits (sys.int_info), with a
    # ValueError: a 60,000-digit number, within the size limit, is invalid_json, never a 4500.
    reply = json.loads(json_reply("1" * 60_000))
    assert reply["error"] == "invalid_json"
    assert "60000 digits" in reply["detail"]
    assert json.loads(json_reply("1" * 4000))["data"] == int("1" * 4000)
