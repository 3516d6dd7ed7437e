"""bench.deflate: the default each server's figures call for, the launcher's defaults that follow it, and the page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_ws.servers import SERVERS
from bench import deflate, run
from bench.run import BENCH_DIR


def costs(after_on: float, negotiated: str = "permessage-deflate", after_off: float = 20.0) -> dict[str, Any]:
    """One server's figures, with what matters to the choice given and the rest plausible."""

    def cost(after: float, accepted: str, chat: float) -> dict[str, Any]:
        wire = {kind: chat for kind in deflate.KINDS}
        return {
            "negotiated": accepted,
            "idle_kib": after - 1,
            "after_message_kib": after,
            "cpu_us_per_echo": 40.0,
            "wire_bytes": wire,
            "payload_bytes": {kind: 42.0 for kind in deflate.KINDS},
        }

    return {"off": cost(after_off, "", 44.0), "on": cost(after_on, negotiated, 23.0 if negotiated else 44.0)}


@pytest.mark.parametrize(
    ("figures", "on"),
    [
        (costs(deflate.BUDGET_KIB), True),
        (costs(deflate.BUDGET_KIB + 0.1), False),
        (costs(25.0, negotiated=""), False),  # a server that declines: nothing to turn on
    ],
    ids=["at the budget", "over it", "declined"],
)
def test_deflate_is_chosen_only_where_a_connection_that_received_a_message_fits_the_budget(
    figures: dict[str, Any], on: bool
) -> None:
    assert deflate.choice(figures) is on


def test_the_reason_gives_the_growth_the_budget_and_the_saving() -> None:
    why = deflate.reason("uvicorn", costs(61.4, after_off=24.0))
    assert (
        why
        == "deflate costs +37.4 KiB per connection after one message (61.4 KiB, budget 40) and saves 48% of a chat line"
    )
    assert deflate.reason("hypercorn", costs(118.5)).endswith("100,000 browsers hold 11.3 GiB")
    assert deflate.reason("daphne", costs(22.0, negotiated="")) == "declines every offer: nothing to choose"


def test_the_page_has_a_row_per_server_and_offer_and_a_default_per_server() -> None:
    figures = {"date": "2026-12-07", "servers": {"uvicorn": costs(61.4), "daphne": costs(22.0, negotiated="")}}
    figures["versions"] = {"uvicorn": {"uvicorn": "0.55.0"}, "daphne": {"daphne": "4.2.3"}}
    page = deflate.markdown(figures)
    assert "| uvicorn | offers nothing | nothing | 19.0 KiB | 20.0 KiB | 40.0 µs | 44 B | 44 B | 44 B | 44 B |" in page
    assert "| uvicorn | offers deflate | permessage-deflate | 60.4 KiB | 61.4 KiB |" in page
    assert "| uvicorn | `--ws-per-message-deflate false` | off |" in page
    assert "| daphne | none | (none) | declines every offer: nothing to choose |" in page
    assert "Measured on 2026-12-07 with daphne 4.2.3, uvicorn 0.55.0." in page
    assert deflate.markdown({}) == "P11 was not run: `python -m bench --only p11`."


def test_the_launchers_defaults_are_the_ones_the_published_figures_call_for() -> None:
    published = json.loads((BENCH_DIR / deflate.P11).read_text())["servers"]
    assert set(published) == set(SERVERS), "P11 covers every server configuration"
    for name, figures in published.items():
        server = SERVERS[name]
        if server.deflate_switch:
            assert server.deflate_default is deflate.choice(figures), name
        else:
            assert server.deflate_default is None, name


def test_an_unknown_server_is_refused_before_p11_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        run.main(["--only", "p11", "--servers", "uvicorn,nginx", "--out", "/nonexistent"])
    assert refused.value.code == 2
    assert "--servers: choose among" in capsys.readouterr().err
