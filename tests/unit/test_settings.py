"""The settings table (config.py): one row per Settings field builds the parser, the environment
fallbacks and the defaults; the command reports usage errors with its subcommand's usage line."""

from __future__ import annotations

import dataclasses
import os
from importlib.metadata import version
from pathlib import Path

import pytest

from sipline.cli import main as cli
from sipline.registration.schedule import Retries
from sipline.server import settings as config
from sipline.server.settings import OPTIONS, ConfigError, Settings, settings_from
from sipline.sip.transaction import Timers

ENV_ONLY = {"secret_key"}  # a secret has no flag: a command line shows in `ps`


@pytest.fixture(autouse=True)
def umask():
    """cli.main sets the process umask; give the test run its own back."""
    mask = os.umask(0)
    os.umask(mask)
    yield
    os.umask(mask)


def serve_help(capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at the terminal's width, even inside a word
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", "--help"])
    assert stopped.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_field_has_a_row_with_a_flag_and_a_variable():
    assert set(OPTIONS) == {each.name for each in dataclasses.fields(Settings)}
    for name, row in OPTIONS.items():
        assert row.env == "SIPLINE_" + name.upper() or row.env.startswith("SIPLINE_"), name
        assert (row.flag is None) == (name in ENV_ONLY), name
    assert len({row.flag for row in OPTIONS.values() if row.flag}) == len(OPTIONS) - len(ENV_ONLY)
    assert len({row.env for row in OPTIONS.values()}) == len(OPTIONS)


@pytest.mark.parametrize("name", OPTIONS)
def test_each_default_text_parses_to_the_field_default(name):
    row = OPTIONS[name]
    assert row.value(row.text(None, {})) == getattr(Settings(), name)


def test_the_defaults_that_readme_promises():
    """Flag, variable and default are a contract (README); a few, spelled out."""
    promised = {"--port": ("SIPLINE_PORT", "8080"), "--host": ("SIPLINE_HOST", "127.0.0.1"),
                "--data-dir": ("SIPLINE_DATA_DIR", "sipline-data"), "--rate-limit": ("SIPLINE_RATE_LIMIT", "50/2"),
                "--sip-listen": ("SIPLINE_SIP_LISTEN", "127.0.0.1:5060"),
                "--dns-server": ("SIPLINE_DNS_SERVERS", None), "--trusted-proxy": ("SIPLINE_TRUSTED_PROXIES", None),
                "--sip-tcp-per-ip": ("SIPLINE_SIP_TCP_PER_IP", "32"),
                "--sip-tcp-idle-timeout": ("SIPLINE_SIP_TCP_IDLE_TIMEOUT", "20"),
                "--registrar-algorithms": ("SIPLINE_REGISTRAR_ALGORITHMS", "MD5"),
                "--abuse-table-size": ("SIPLINE_ABUSE_TABLE_SIZE", "100000")}
    rows = {row.flag: (row.env, row.default) for row in OPTIONS.values()}
    assert {flag: rows[flag] for flag in promised} == promised


def test_help_shows_every_flag_its_default_and_its_variable(capsys, monkeypatch):
    text = serve_help(capsys, monkeypatch)
    for row in OPTIONS.values():
        if row.flag is None:
            assert row.env not in text
            continue
        assert row.flag in text and row.env in text
        if row.default or row.unset:
            assert f"default: {row.default or row.unset}" in text, row.flag
    assert "listen port (default: 8080; env SIPLINE_PORT)" in text
    assert "(default: 127.0.0.1:5060; repeatable; env SIPLINE_SIP_LISTEN, comma-separated)" in text


def test_a_flag_wins_over_the_variable_which_wins_over_the_default():
    environ = {"SIPLINE_PORT": "9000", "SIPLINE_SIP_LISTEN": "127.0.0.2:5070, 127.0.0.3:5071",
               "SIPLINE_ACCESS_LOG": "yes", "SIPLINE_SECRET_KEY": ""}
    settings = settings_from({"port": None, "sip_listen": None, "access_log": None, "host": "127.0.0.9"}, environ)
    assert (settings.port, settings.host, settings.access_log) == (9000, "127.0.0.9", True)
    assert settings.sip_listen == (("127.0.0.2", 5070), ("127.0.0.3", 5071))
    assert settings.secret_key is None and settings.max_lines == 1000
    flags = settings_from({"port": "9001", "sip_listen": ["127.0.0.4:5080"], "access_log": "1"}, environ)
    assert (flags.port, flags.sip_listen, flags.access_log) == (9001, (("127.0.0.4", 5080),), True)


def test_only_the_settings_a_command_has_come_from_the_environment():
    settings = settings_from({"data_dir": "d"}, {"SIPLINE_PORT": "nonsense", "SIPLINE_SECRET_KEY": "k"})
    assert (settings.data_dir, settings.port, settings.secret_key) == (Path("d"), 8080, "k")


@pytest.mark.parametrize(("given", "environ", "message"), [
    ({"port": "x"}, {}, "port: 'x' is not a port number"),
    ({"port": None}, {"SIPLINE_PORT": "99999"}, "port: '99999' is not a port number"),
    ({"access_log": None}, {"SIPLINE_ACCESS_LOG": "maybe"}, "SIPLINE_ACCESS_LOG: 'maybe' is not a yes/no value"),
    ({"sip_listen": ["example.com:5060"]}, {}, "sip-listen: 'example.com' is not an IP address"),
    ({"tls_self_signed": None}, {"SIPLINE_TLS": "mine"}, "tls: 'mine' is not self-signed"),
    ({"role": None}, {"SIPLINE_ROLE": "both"}, "role: 'both' is not all, api or sip"),
    ({"log_format": None}, {"SIPLINE_LOG_FORMAT": "xml"}, "log-format: 'xml' is not text or json"),
])
def test_a_bad_value_names_its_setting(given, environ, message):
    with pytest.raises(ConfigError, match=message):
        settings_from(given, environ)


def test_a_bad_setting_shows_the_usage_of_its_subcommand(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", "--port", "x"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.startswith("usage: sipline serve ") and "sipline serve: error: port: 'x' is not a port" in err


@pytest.mark.parametrize("argv", [["serve", "--bogus"], ["webhook", "list", "--bogus"]])
def test_an_unknown_flag_shows_the_usage_of_its_subcommand(capsys, argv):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    err = capsys.readouterr().err
    command = " ".join(argv[:-1])
    assert stopped.value.code == 2
    assert err.startswith(f"usage: sipline {command} ") and "unrecognized arguments: --bogus" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"sipline {version('sipline')}\n"


def test_check_still_runs_on_the_table_built_settings():
    with pytest.raises(ConfigError, match="tls: --tls-cert and --tls-key go together"):
        settings_from({"tls_cert": "/etc/hostname"}, {})
    assert config.check(Settings()) == Settings()


# the delays an operator (or a test) sets one by one: flag -> (field, default text, the value it parses to)
DELAYS = {
    "--sip-t1": ("sip_t1", "0.5", 0.5),
    "--new-line-spread": ("new_line_spread", "5", 5.0),
    "--startup-spread": ("startup_spread", "5", 5.0),
    "--retry-interval": ("retry_interval", "30", 30.0),
    "--rejected-retry-interval": ("rejected_retry_interval", "300", 300.0),
    "--keepalive-interval": ("keepalive_interval", "25", 25.0),
    "--flow-keepalive": ("flow_keepalive", "120", 120.0),
    "--nat-ping-interval": ("nat_ping_interval", "30", 30.0),
}


def test_the_delays_default_to_what_the_protocol_code_does_without_them(capsys, monkeypatch):
    from sipline.registrar.nat import PING_INTERVAL
    from sipline.registration.settings import EngineSettings
    from sipline.sip.transports.manager import FLOW_KEEPALIVE

    rows = {row.flag: row for row in OPTIONS.values()}
    text = serve_help(capsys, monkeypatch)
    for flag, (name, default, value) in DELAYS.items():
        row = rows[flag]
        assert (row.env, row.default, getattr(Settings(), name)) == ("SIPLINE_" + name.upper(), default, value)
        assert f"(default: {default}; env SIPLINE_{name.upper()})" in text, flag
    engine = EngineSettings()
    assert (engine.timers, engine.new_line_spread, engine.startup_spread) == (Timers(), 5.0, 5.0)
    assert (engine.retries, engine.keepalive_interval) == (Retries(30.0, 300.0), 25.0)
    assert (FLOW_KEEPALIVE, PING_INTERVAL) == (120.0, 30.0)


def test_the_delays_reach_the_parts_that_use_them():
    from sipline.server.sip_side import sip_settings
    from sipline.store.crypto import SecretBox

    given = {"sip_t1": "0.05", "new_line_spread": "0.1", "startup_spread": "0.2", "retry_interval": "0.6",
             "rejected_retry_interval": "6", "keepalive_interval": "0.5", "flow_keepalive": "2.4",
             "nat_ping_interval": "0.6"}
    settings = settings_from(given, {})
    sip = sip_settings(settings, SecretBox(b"k" * 32), open_files=4096)
    engine = sip.engine
    assert engine.timers == Timers(0.05, 0.4, 0.5)
    assert (engine.new_line_spread, engine.startup_spread, engine.keepalive_interval) == (0.1, 0.2, 0.5)
    assert engine.retries == Retries(transient=0.6, rejected=6.0)
    assert (sip.flow_keepalive, sip.registrar.ping_interval) == (2.4, 0.6)
    default = sip_settings(Settings(), SecretBox(b"k" * 32), open_files=4096)
    assert (default.engine.timers, default.engine.retries, default.flow_keepalive) == (Timers(), Retries(), 120.0)


@pytest.mark.parametrize("flag", DELAYS)
@pytest.mark.parametrize("text", ["0", "-1", "soon", "inf"])
def test_a_delay_is_a_positive_number_of_seconds(flag, text):
    name = DELAYS[flag][0]
    with pytest.raises(ConfigError, match=f"{flag.removeprefix('--')}: '{text}' is not a positive number"):
        settings_from({name: text}, {})
