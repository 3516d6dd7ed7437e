"""asgi_ws.servers: each registry entry's command line, and the rules every entry follows."""

from __future__ import annotations

import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS, Listen, Server, installed_servers

LISTEN = Listen(port=9001, workers=2, ping_interval=5.0, ping_timeout=7.5)

# The whole command line of every entry for LISTEN (daphne and pyvoy: one worker), after "python -m".
# The deflate flags are the launcher's choice, off wherever the server has a switch.
COMMANDS = {
    "uvicorn": "uvicorn --ws websockets-sansio --host 127.0.0.1 --port 9001 --workers 2 "
    "--ws-ping-interval 5 --ws-ping-timeout 7.5 --ws-per-message-deflate false app:app",
    "uvicorn-websockets": "uvicorn --ws websockets --host 127.0.0.1 --port 9001 --workers 2 "
    "--ws-ping-interval 5 --ws-ping-timeout 7.5 --ws-per-message-deflate false app:app",
    "uvicorn-wsproto": "uvicorn --ws wsproto --host 127.0.0.1 --port 9001 --workers 2 "
    "--ws-ping-interval 5 --ws-ping-timeout 7.5 --ws-per-message-deflate false app:app",
    "uvicorn-zttp": "uvicorn --http zttp --ws websockets-sansio --host 127.0.0.1 --port 9001 --workers 2 "
    "--ws-ping-interval 5 --ws-ping-timeout 7.5 --ws-per-message-deflate false app:app",
    "hypercorn": "hypercorn --worker-class asyncio --bind 127.0.0.1:9001 --workers 2 "
    "--websocket-ping-interval 5 app:app",
    "hypercorn-uvloop": "hypercorn --worker-class uvloop --bind 127.0.0.1:9001 --workers 2 "
    "--websocket-ping-interval 5 app:app",
    "hypercorn-trio": "hypercorn --worker-class trio --bind 127.0.0.1:9001 --workers 2 app:app",
    "daphne": "daphne -e tcp:port=9001:interface=127.0.0.1 --ping-interval 5 --ping-timeout 7.5 app:app",
    "granian": "granian --interface asgi --host 127.0.0.1 --port 9001 --workers 2 app:app",
    "gunicorn": "gunicorn --worker-class asgi --no-control-socket --bind 127.0.0.1:9001 --workers 2 app:app",
    "anycorn": "anycorn --worker-class asyncio --bind 127.0.0.1:9001 --workers 2 --websocket-ping-interval 5 "
    "--websocket-permessage-deflate false app:app",
    "pyvoy": "pyvoy._cli --websockets --address 127.0.0.1 --port 9001 --no-websockets-compression app:app",
}


def listen_for(server: Server, **changes: object) -> Listen:
    options: dict[str, object] = {
        "port": LISTEN.port,
        "workers": LISTEN.workers if server.multi_worker else 1,
        "ping_interval": LISTEN.ping_interval,
        "ping_timeout": LISTEN.ping_timeout,
    }
    options.update(changes)
    return Listen(**options)  # type: ignore[arg-type]


def test_every_entry_is_in_the_table() -> None:
    assert list(SERVERS) == list(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command(name: str) -> None:
    server = SERVERS[name]
    argv = server.command("app:app", listen_for(server))
    assert argv[:2] == [sys.executable, "-m"]
    assert shlex.join(argv[2:]) == COMMANDS[name]
    assert argv[2] == server.module


@pytest.mark.parametrize("name", list(COMMANDS))
def test_no_ping_flags_for_the_servers_default(name: str) -> None:
    server = SERVERS[name]
    with_pings = server.command("app:app", listen_for(server))
    without = server.command("app:app", listen_for(server, ping_interval=None))
    pings = server.ping_flags(listen_for(server))
    assert server.ping_flags(listen_for(server, ping_interval=None)) == []
    assert without == [arg for arg in with_pings if arg not in pings]
    assert bool(pings) == (server.no_ping is None), "an entry pings, or says why not"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_launcher_flags_are_what_does_not_choose_the_server(name: str) -> None:
    server = SERVERS[name]
    listen = listen_for(server)
    flags = server.launcher_flags(listen)
    assert flags == server.worker_flags(listen) + server.ping_flags(listen) + server.deflate_flags(listen)
    argv = server.command("app:app", listen)
    at = argv.index("app:app")
    assert argv[at - len(flags) : at] == flags


def test_launcher_flags_examples() -> None:
    assert SERVERS["uvicorn"].launcher_flags(LISTEN) == [
        *("--workers", "2", "--ws-ping-interval", "5", "--ws-ping-timeout", "7.5", "--ws-per-message-deflate", "false")
    ]
    assert SERVERS["gunicorn"].launcher_flags(LISTEN) == ["--workers", "2"]
    assert SERVERS["daphne"].launcher_flags(Listen(ping_interval=None)) == []
    assert SERVERS["anycorn"].launcher_flags(Listen(workers=0, ping_interval=None)) == [
        *("--workers", "0", "--websocket-permessage-deflate", "false")
    ]
    assert SERVERS["pyvoy"].launcher_flags(Listen(deflate=True)) == ["--websockets-compression"]


@pytest.mark.parametrize("name", list(SERVERS))
def test_deflate_follows_listen_where_there_is_a_switch_and_is_the_servers_own_elsewhere(name: str) -> None:
    server = SERVERS[name]
    on, off, chosen = (server.deflate_flags(Listen(deflate=wanted)) for wanted in (True, False, None))
    if server.deflate_switch:
        assert on == shlex.split(server.deflate_on)
        assert off == shlex.split(server.deflate_off)
        assert chosen == (off if server.deflate_default is False else on if server.deflate_default else [])
    else:
        assert on == off == chosen == []


def test_a_deflate_switch_needs_both_flags_and_a_default_needs_a_switch() -> None:
    with pytest.raises(ValueError, match="needs both deflate_on and deflate_off"):
        Server("half", "srv {app}", ("srv",), no_ping="none", no_tls="none", deflate_on="--deflate")
    with pytest.raises(ValueError, match="a deflate_default needs a switch"):
        Server("none", "srv {app}", ("srv",), no_ping="none", no_tls="none", deflate_default=False)


@pytest.mark.parametrize("name", [name for name, server in SERVERS.items() if not server.multi_worker])
def test_single_process_servers_refuse_workers(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} runs a single process"):
        SERVERS[name].command("app:app", Listen(workers=2))
    assert SERVERS[name].command("app:app", Listen(workers=1))


def test_daphne_and_pyvoy_are_single_process_and_the_others_are_not() -> None:
    assert [name for name, server in SERVERS.items() if not server.multi_worker] == ["daphne", "pyvoy"]


def test_workers_zero_means_in_process_where_the_server_allows_it() -> None:
    for name, server in SERVERS.items():
        flags = server.worker_flags(Listen(workers=0))
        if server.zero_workers:
            assert flags == ["--workers", "0"], name
        else:
            assert "0" not in flags, name
    assert {name for name, server in SERVERS.items() if server.zero_workers} == {
        *("hypercorn", "hypercorn-uvloop", "hypercorn-trio", "anycorn")
    }


def test_hypercorn_and_anycorn_ping_interval_is_whole_seconds() -> None:
    for name in ("hypercorn", "anycorn"):
        assert SERVERS[name].ping_flags(Listen(ping_interval=0.4)) == ["--websocket-ping-interval", "1"]
        assert SERVERS[name].ping_flags(Listen(ping_interval=2.6)) == ["--websocket-ping-interval", "3"]


def test_an_ipv6_bind_is_bracketed() -> None:
    argv = SERVERS["gunicorn"].command("app:app", Listen(host="::1"))
    assert argv[argv.index("--bind") + 1] == "[::1]:8000"
    argv = SERVERS["uvicorn"].command("app:app", Listen(host="::1"))
    assert argv[argv.index("--host") + 1] == "::1"


def test_a_value_never_splits_a_word() -> None:
    server = Server("spaced", "srv --name {host} {app}", ("srv",), no_ping="none", no_tls="none")
    assert server.command("my app:app", Listen(host="a b"))[2:] == ["srv", "--name", "a b", "my app:app"]


def test_words_after_the_app_stay_after_it() -> None:
    server = Server("x", "srv {app} --port {port}", ("srv",), workers="-w {workers}", no_ping="none", no_tls="none")
    assert server.command("a:b", Listen(port=1))[2:] == ["srv", "-w", "1", "a:b", "--port", "1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"command_template": "srv --port {port}"}, "needs the word {app} exactly once"),
        ({"command_template": "srv {app} {app}"}, "needs the word {app} exactly once"),
        ({"command_template": "srv {app}", "no_ping": None}, "say why in no_ping"),
        ({"command_template": "srv {app}", "no_tls": None}, "say why in no_tls"),
    ],
)
def test_an_entry_is_checked_when_made(options: dict[str, str | None], message: str) -> None:
    fields: dict[str, object] = {
        "name": "x",
        "command_template": "srv {app}",
        "packages": ("srv",),
        "no_ping": "n",
        "no_tls": "n",
    }
    fields.update(options)
    with pytest.raises(ValueError, match=message):
        Server(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("template", "word"), [("srv --port {prot} {app}", "{prot}"), ("srv {app}", "{wokers}")])
def test_an_unknown_placeholder_is_named_when_the_entry_is_made(template: str, word: str) -> None:
    with pytest.raises(ValueError, match=f"server 'x': unknown placeholder .* in '\\{word}'"):
        Server("x", template, ("srv",), workers=f"-w {word}", no_ping="none", no_tls="none")


def test_installed_servers_lists_only_importable_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "trio" else object())
    assert "hypercorn-trio" not in installed_servers()
    assert "hypercorn" in installed_servers()
    assert SERVERS["hypercorn-trio"].missing() == ["trio"]


def test_extra_is_the_package_run_unless_the_entry_names_one() -> None:
    assert SERVERS["uvicorn-wsproto"].extra == "uvicorn"
    assert SERVERS["gunicorn"].extra == "gunicorn"
    assert SERVERS["pyvoy"].extra == "pyvoy"  # run as pyvoy._cli
    assert SERVERS["uvicorn-zttp"].extra == "zttp"


def test_servers_without_lifespan_or_asyncio_say_so() -> None:
    assert {name for name, server in SERVERS.items() if server.no_redis} == {"hypercorn-trio", "daphne", "pyvoy"}


def test_with_overrides_overrides_only_the_pings_deflate_and_http2() -> None:
    base = Listen(port=9001, workers=0)
    assert base.with_overrides({}) == base
    assert base.with_overrides({"ping_interval": None}) == Listen(port=9001, workers=0, ping_interval=None)
    assert base.with_overrides({"ping_interval": 1.0, "ping_timeout": 2.0}).ping_timeout == 2.0
    assert base.with_overrides({"deflate": False}) == Listen(port=9001, workers=0, deflate=False)
    with pytest.raises(ValueError, match=r"not \['port'\]"):
        base.with_overrides({"port": 1.0})
    with pytest.raises(ValueError, match="ping_timeout cannot be None"):
        base.with_overrides({"ping_timeout": None})
    with pytest.raises(ValueError, match=r"deflate is True, False or None, not 1\.0"):
        base.with_overrides({"deflate": 1.0})
    assert base.with_overrides({"http2": True}) == Listen(port=9001, workers=0, http2=True)


def test_only_uvicorn_zttp_has_a_switch_for_http2_and_it_is_passed_only_when_asked() -> None:
    assert {name for name, server in SERVERS.items() if server.http2} == {"uvicorn-zttp"}
    zttp, hypercorn = SERVERS["uvicorn-zttp"], SERVERS["hypercorn"]
    assert "--http2" in zttp.launcher_flags(Listen(http2=True))
    assert "--http2" not in zttp.launcher_flags(Listen())
    assert hypercorn.launcher_flags(Listen(http2=True)) == hypercorn.launcher_flags(Listen())


def test_only_daphne_gunicorn_and_pyvoy_lack_the_denial_extension() -> None:
    assert {name for name, server in SERVERS.items() if not server.denial_response} == {"daphne", "gunicorn", "pyvoy"}


def test_every_server_has_its_extra_and_is_in_the_conformance_and_bench_extras() -> None:
    """Error messages say ``pip install 'asgi-ws[EXTRA]'``: that extra exists, and the full runs install it."""
    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for group in ("conformance", "bench"):
        named = {name for requirement in extras[group] for name in _self_extras(requirement)}
        assert {server.extra for server in SERVERS.values()} <= named, group
    assert {server.extra for server in SERVERS.values()} <= set(extras)


def _self_extras(requirement: str) -> list[str]:
    """``"asgi-ws[a,b]"`` -> ``["a", "b"]``; any other requirement -> ``[]``."""
    if not requirement.startswith("asgi-ws["):
        return []
    return requirement.removeprefix("asgi-ws[").split("]")[0].split(",")


# TLS


TLS = {"certfile": "/certs/cert.pem", "keyfile": "/certs/key.pem"}
TLS_FLAGS = {
    "uvicorn": ["--ssl-certfile", TLS["certfile"], "--ssl-keyfile", TLS["keyfile"]],
    "hypercorn": ["--certfile", TLS["certfile"], "--keyfile", TLS["keyfile"]],
    "granian": ["--ssl-certificate", TLS["certfile"], "--ssl-keyfile", TLS["keyfile"]],
    "gunicorn": ["--certfile", TLS["certfile"], "--keyfile", TLS["keyfile"]],
    "anycorn": ["--certfile", TLS["certfile"], "--keyfile", TLS["keyfile"]],
    "pyvoy": ["--tls-cert", TLS["certfile"], "--tls-key", TLS["keyfile"]],
}


@pytest.mark.parametrize("name", list(TLS_FLAGS))
def test_tls_flags_come_last_before_the_app(name: str) -> None:
    server = SERVERS[name]
    argv = server.command("app:app", listen_for(server, **TLS))
    assert argv[-1 - len(TLS_FLAGS[name]) : -1] == TLS_FLAGS[name]
    assert server.tls_flags(listen_for(server)) == []  # plain TCP: none


def test_daphne_serves_tls_through_an_ssl_endpoint_instead_of_tcp() -> None:
    argv = SERVERS["daphne"].command("app:app", Listen(port=9001, **TLS))
    assert (
        argv[argv.index("-e") + 1]
        == "ssl:port=9001:interface=127.0.0.1:privateKey=/certs/key.pem:certKey=/certs/cert.pem"
    )
    assert argv.count("-e") == 1  # one listener: no plain one beside it


def test_a_twisted_endpoint_escapes_colons_and_equals_in_its_values() -> None:
    argv = SERVERS["daphne"].command("app:app", Listen(host="::1", certfile="/a:b/c=d.pem", keyfile="/k.pem"))
    assert argv[argv.index("-e") + 1] == r"ssl:port=8000:interface=\:\:1:privateKey=/k.pem:certKey=/a\:b/c\=d.pem"


def test_tls_needs_both_files() -> None:
    with pytest.raises(ValueError, match="both a certificate file and its key file"):
        Listen(certfile="/certs/cert.pem")


def test_a_server_without_tls_says_why_when_asked_for_it() -> None:
    server = Server("plain", "srv {app}", ("srv",), no_ping="n", no_tls="it has no TLS option")
    with pytest.raises(ValueError, match="plain cannot serve TLS: it has no TLS option"):
        server.command("app:app", Listen(**TLS))
