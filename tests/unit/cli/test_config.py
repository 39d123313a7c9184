"""Connection settings: flags, then environment, then config files; the key never shown whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_insights_cli.config import Sources, _parse_flat, connection, redact
from dora_insights_cli.errors import USAGE, CliError


def _connect(sources: Sources, **flags: str | None) -> object:
    return connection(
        sources,
        url=flags.get("url"),
        space=flags.get("space"),
        api_key=flags.get("api_key"),
        timeout=5,
        retries=0,
        retry_delay=0,
    )


def test_flags_win_over_environment_and_environment_over_files(tmp_path: Path) -> None:
    (tmp_path / ".dora-insights.toml").write_text('url = "http://file"\nspace = "Spaces-file"\n')
    env = {"DORA_INSIGHTS_URL": "http://env/", "DORA_INSIGHTS_SPACE": "Spaces-env", "DORA_INSIGHTS_API_KEY": "k" * 20}
    sources = Sources.load(env, tmp_path, tmp_path, None)

    settings = connection(sources, url=None, space="Spaces-flag", api_key=None, timeout=5, retries=0, retry_delay=0)

    assert (settings.url, settings.space) == ("http://env", "Spaces-flag")
    assert settings.api_key is not None and settings.api_key.source == "DORA_INSIGHTS_API_KEY"


def test_the_project_file_comes_before_the_user_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "dora-insights").mkdir(parents=True)
    (home / ".config" / "dora-insights" / "config.toml").write_text('url = "http://user"\napi_key = "user-key-12345"\n')
    (tmp_path / ".dora-insights.toml").write_text('url = "http://project"\nspace = "Spaces-1"\n')

    settings = connection(
        Sources.load({}, tmp_path, home, None), url=None, space=None, api_key=None, timeout=5, retries=0, retry_delay=0
    )

    assert (settings.url, settings.space) == ("http://project", "Spaces-1")
    assert settings.api_key is not None and settings.api_key.source.endswith("config.toml")


def test_missing_settings_say_how_to_set_each(tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        _connect(Sources.load({}, tmp_path, tmp_path, None))

    assert raised.value.code == USAGE
    for hint in ("DORA_INSIGHTS_URL", "DORA_INSIGHTS_SPACE", "DORA_INSIGHTS_API_KEY"):
        assert hint in raised.value.message


def test_a_named_config_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        Sources.load({}, tmp_path, tmp_path, str(tmp_path / "nope.toml"))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".dora-insights.toml").write_text("url = \n")

    with pytest.raises(CliError, match=r"\.dora-insights\.toml is not valid TOML"):
        Sources.load({}, tmp_path, tmp_path, None)


def test_a_url_without_a_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="http:// or https://"):
        _connect(Sources.load({}, tmp_path, tmp_path, None), url="dora.example.com", space="S", api_key="k")


def test_the_key_in_a_project_file_is_noticed(tmp_path: Path) -> None:
    (tmp_path / ".dora-insights.toml").write_text('api_key = "committed-by-mistake"\n')

    assert Sources.load({}, tmp_path, tmp_path, None).key_in_project_file(tmp_path) == tmp_path / ".dora-insights.toml"


@pytest.mark.parametrize(
    ("key", "shown"), [("local-dev-key", "loca…"), ("abcdefgh", "ab…"), ("short", "…"), ("k" * 64, "kkkk…")]
)
def test_redact_shows_at_most_a_short_prefix(key: str, shown: str) -> None:
    assert redact(key) == shown


def test_the_flat_parser_reads_what_the_cli_needs_on_pythons_without_tomllib() -> None:
    text = 'url = "http://x" # comment\nspace = \'Spaces-2\'\nnumber = 3\n[table]\napi_key = "ignored"\n'

    assert _parse_flat(text) == {"url": "http://x", "space": "Spaces-2"}
