from __future__ import annotations

import pytest

from broker.config import OPTIONS, Settings, build_parser, load_settings, options_table


def test_defaults_serve_port_1026_on_the_embedded_store() -> None:
    settings = load_settings([], environ={})
    assert settings == Settings()
    assert settings.port == 1026 and settings.host == "0.0.0.0"
    assert settings.store == "sqlite:ngsi-ld-data/broker.db"  # relative to the working directory
    assert settings.core_context_version == "1.8"


def test_environment_sets_and_flags_override() -> None:
    env = {"NGSI_LD_PORT": "2000", "NGSI_LD_STORE": "memory:", "NGSI_LD_MULTI_TENANCY": "false"}
    settings = load_settings([], environ=env)
    assert (settings.port, settings.store, settings.multi_tenancy) == (2000, "memory:", False)
    assert load_settings(["--port", "3000"], environ=env).port == 3000


@pytest.mark.parametrize(
    "argv",
    [
        ["--core-context", "1.2"],
        ["--port", "x"],
        ["--max-page-size", "0"],
        ["--log-level", "loud"],
        ["--multi-tenancy", "maybe"],
    ],
)
def test_invalid_values_exit_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        load_settings(argv, environ={})
    assert info.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize("version", ["1.3", "1.6", "1.7", "1.8", "1.9", "v1.9"])
def test_every_bundled_core_version_is_accepted(version: str) -> None:
    assert (
        load_settings(["--core-context", version], environ={}).core_context_version == version[-3:]
    )


def test_every_option_is_in_help_and_in_the_readme_table() -> None:
    help_text = build_parser().format_help()
    table = options_table()
    for opt in OPTIONS:
        assert opt.flag in help_text and opt.env in help_text
        assert opt.env in table


def test_base_url_for_hosted_contexts() -> None:
    assert Settings(port=1026).base_url == "http://localhost:1026"
    assert Settings(public_url="https://ctx.example.org/").base_url == "https://ctx.example.org"


def test_readme_lists_every_option() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert options_table() in readme


def test_default_store_is_relative_to_the_working_directory(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from storage import SqliteStore, open_store

    monkeypatch.chdir(tmp_path)
    store = open_store(Settings().store)
    assert isinstance(store, SqliteStore)
    assert store.path.resolve() == (tmp_path / "ngsi-ld-data" / "broker.db").resolve()


def test_an_unusable_store_url_is_a_clear_exit(capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--store", "postgres://nowhere/x", "--port", "0"])
    assert "unknown storage URL scheme" in str(info.value.code)
