"""python -m conformance: choosing the checks and the servers, and run.json with --rejudge."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS, Listen
from conformance.__main__ import Run, _ad_hoc_server, _registry, _select, _transports, build_parser, main
from conformance.checks import CHECKS
from conformance.runner import Outcome
from conformance.transports import Offer
from conformance.verdicts import load_expected


def test_skip_scenarios_leaves_the_probes() -> None:
    checks = _select(build_parser().parse_args(["--skip-scenarios"]))
    assert checks
    assert {check.kind for check in checks} == {"probe"}


def test_skip_scenarios_and_probes_together_leave_nothing() -> None:
    assert _select(build_parser().parse_args(["--skip-scenarios", "--skip-probes"])) == []


def test_list_prints_every_check_under_its_stage_and_module_with_its_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    placed: dict[str, tuple[str, str, str]] = {}  # check -> (stage, module, summary) as listed
    stage = module = ""
    for line in lines[:-1]:
        if not line.startswith(" "):
            stage = line.split()[1].rstrip(":")
        elif not line.startswith("    "):
            module = line.strip().partition(":")[0]
        else:
            name, summary = line.strip().split("  ", 1)
            placed[name] = (stage, module, summary.strip())
    assert placed == {
        check.name: (f"{check.kind}s", check.run.__module__.rpartition(".")[2], check.summary)
        for check in CHECKS.values()
    }
    scenarios = sum(check.kind == "scenario" for check in CHECKS.values())
    assert lines[0] == f"{scenarios} scenarios: asgi_ws.app:app driven by real clients, the app's side observed"
    assert lines[-1].startswith("then Autobahn|Testsuite against /echo: cases 1.* 2.* ")


def test_list_shows_only_what_the_options_select(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list", "--skip-scenarios", "--skip-autobahn", "--scenarios", "probe-size-16mib*"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2 probes: the probe app (conformance.probe_app), recording how the server speaks raw ASGI",
        "  messages: Probes of data messages: the shape of receive events, the server's own size limit, invalid UTF-8.",
        f"    probe-size-16mib         {CHECKS['probe-size-16mib'].summary}",
        f"    probe-size-16mib-plus-1  {CHECKS['probe-size-16mib-plus-1'].summary}",
    ]


def test_an_ad_hoc_server_runs_its_template_as_given() -> None:
    server = _ad_hoc_server("mine=mine --bind {bind} --fast {app}")
    assert server.name == "mine"
    assert server.packages == ("mine",)
    assert server.command("a:b", Listen(port=5)) == [
        sys.executable,
        "-m",
        "mine",
        "--bind",
        "127.0.0.1:5",
        "--fast",
        "a:b",
    ]
    assert server.launcher_flags(Listen(workers=0)) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mine", "expected NAME=TEMPLATE"),
        ("=mine {app}", "expected NAME=TEMPLATE"),
        ("uvicorn=uvicorn {app}", "uvicorn is already a server"),
        ("mine=mine --bind {bind}", "needs the word {app}"),
    ],
)
def test_a_bad_ad_hoc_server_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _ad_hoc_server(raw)


def test_ad_hoc_servers_alone_run_and_a_missing_one_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = dict(SERVERS)
    argv = ["--server-command", "nope=no_such_server_package {app}", "--skip-autobahn", "--out", str(tmp_path)]
    assert main([*argv, "--scenarios", "probe-scope"]) == 0
    out = capsys.readouterr().out
    assert "skip nope: not installed (no_such_server_package)" in out
    assert "== uvicorn" not in out
    assert shipped == SERVERS  # the app's registry is left as shipped


def test_ad_hoc_servers_join_a_registry_of_the_run_s_own() -> None:
    registry = _registry(["mine=mine --bind {bind} {app}", "yours=yours --bind {bind} {app}"])
    assert list(registry) == [*SERVERS, "mine", "yours"]
    assert "mine" not in SERVERS
    with pytest.raises(ValueError, match="mine is already a server"):
        _registry(["mine=mine {app}", "mine=other {app}"])


def test_a_bad_server_command_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--server-command", "broken", "--out", str(tmp_path)]) == 2
    assert "expected NAME=TEMPLATE" in capsys.readouterr().err


def kept_run(directory: Path) -> Path:
    """A run of two checks under two servers, as python -m conformance keeps it."""
    expected = load_expected("probe-raise-after-accept")
    assert expected is not None
    hypercorn = json.loads(json.dumps(expected))
    hypercorn["client"]["then"]["close"] = {"code": 1011, "reason": "", "reason_bytes": 0}
    run = Run(
        command="python -m conformance --servers uvicorn,hypercorn",
        ran_on="2026-01-01, Python 3.11",
        servers=["uvicorn", "hypercorn"],
        versions={"uvicorn": "uvicorn 1", "hypercorn": "hypercorn 2"},
        launcher_flags={"uvicorn": "--ws-ping-interval 20", "hypercorn": ""},
        skipped={},
        checks=["probe-raise-after-accept", "echo-text"],
        outcomes=[
            Outcome("probe-raise-after-accept", "uvicorn", expected),
            Outcome("probe-raise-after-accept", "hypercorn", hypercorn),
            Outcome("echo-text", "uvicorn", load_expected("echo-text")),
            Outcome("echo-text", "hypercorn", None, "timed out after 60 s"),
        ],
        autobahn={},
        packages={"hypercorn": "2", "uvicorn": "1"},
    )
    run.save(directory / "run.json")
    return directory


def test_a_kept_run_loads_back_equal(tmp_path: Path) -> None:
    directory = kept_run(tmp_path)
    loaded = Run.load(directory / "run.json")
    assert loaded.outcomes[1].transcript is not None
    assert loaded.outcomes[1].transcript["client"]["then"]["close"]["code"] == 1011
    assert loaded.launcher_flags["uvicorn"] == "--ws-ping-interval 20"
    assert loaded.packages == {"hypercorn": "2", "uvicorn": "1"}


def test_a_run_kept_before_packages_were_recorded_loads_with_none(tmp_path: Path) -> None:
    directory = kept_run(tmp_path)
    kept = json.loads((directory / "run.json").read_text())
    del kept["packages"]
    (directory / "run.json").write_text(json.dumps(kept))
    assert Run.load(directory / "run.json").packages == {}


def test_rejudge_writes_the_report_and_fails_on_the_unexplained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = kept_run(tmp_path / "run")
    out = tmp_path / "out"
    status = main(["--rejudge", str(directory), "--out", str(out)])
    # hypercorn's 1011 is a known divergence; its echo-text error is not explained.
    assert status == 1
    report = json.loads((out / "conformance-report.json").read_text())
    assert report["packages"] == {"hypercorn": "2", "uvicorn": "1"}
    cells = {(cell["check"], cell["server"]): cell for cell in report["cells"]}
    assert cells[("probe-raise-after-accept", "hypercorn")]["client"] == "known"
    assert cells[("echo-text", "hypercorn")]["verdict"] == "error"
    assert report["headline"]["hypercorn"]["line"] == (
        "hypercorn: client-visible behaviour of asgi-ws: identical to uvicorn in 0 of 1 scenarios; "
        "except error: echo-text"
    )
    printed = capsys.readouterr().out
    assert "uvicorn: client-visible behaviour of asgi-ws: identical to uvicorn in 1 of 1 scenarios" in printed
    assert "error: echo-text under hypercorn" in printed


def test_rejudge_without_a_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rejudge", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "no run.json there" in capsys.readouterr().err


def test_a_run_over_http2_keeps_what_each_server_offers_and_has_a_column_where_it_served(tmp_path: Path) -> None:
    directory = kept_run(tmp_path)
    run = Run.load(directory / "run.json")
    run.offers = {"h2": {"uvicorn": Offer(False, "does not speak HTTP/2 here"), "hypercorn": Offer(True, "advertises")}}
    run.transports = ["http/1.1", "h2"]
    run.save(directory / "run.json")
    loaded = Run.load(directory / "run.json")
    assert loaded.offers == run.offers
    assert loaded.columns == ["uvicorn", "hypercorn", "hypercorn over h2"]
    loaded.transports = ["h2"]
    assert loaded.columns == ["hypercorn over h2"]


def test_transports_are_named_from_the_list_and_run_in_its_order() -> None:
    assert _transports("h2, http/1.1") == ["http/1.1", "h2"]
    with pytest.raises(ValueError, match=r"expected names from http/1\.1, h2, h2c"):
        _transports("http/3")
