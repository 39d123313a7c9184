"""Input checked with a regular expression is checked whole: ``re.match`` with a pattern ending in ``$``
also matches before a final newline, so ``"abc1234\\n"`` passed as a commit sha (and was stored so),
``"#0D80D8\\n"`` as a colour, ``"version\\n"`` as a DX metadata key. Every such check uses ``fullmatch``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from dora_insights.dialects import datadog, dx, native, octopus
from dora_insights.errors import AuthenticationInvalidError, RequestInvalidError


@pytest.mark.parametrize("value", ["abc1234\n", "abc1234\n\n", "\nabc1234", "abc 1234"])
def test_a_native_commit_sha_is_refused_with_a_newline(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(native.Sha).validate_python(value)
    assert TypeAdapter(native.Sha).validate_python("ABC1234") == "abc1234"


def test_a_datadog_commit_sha_is_refused_with_a_trailing_newline() -> None:
    repository = "https://github.com/org/name"
    with pytest.raises(ValidationError):
        datadog.GitInfo.model_validate({"commit_sha": "abc1234\n", "repository_url": repository})
    assert (
        datadog.GitInfo.model_validate({"commit_sha": "ABC1234", "repository_url": repository}).commit_sha == "abc1234"
    )


@pytest.mark.parametrize("url", ["org/name\n.git", "org/name\n/", "https://github.com/org/name\n.git"])
def test_a_datadog_repository_with_a_newline_inside_is_no_repository(url: str) -> None:
    assert datadog.normalise_repository(url) is None
    assert datadog.normalise_repository("https://github.com/org/name.git") == "org/name"


def test_an_octopus_icon_color_is_refused_with_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        octopus.ReportIn.model_validate({"Name": "r", "IconColor": "#0D80D8\n"})
    assert octopus.ReportIn.model_validate({"Name": "r", "IconColor": "#0D80D8"}).IconColor == "#0D80D8"


def test_a_dx_metadata_key_is_refused_with_a_trailing_newline() -> None:
    body: dict[str, Any] = {"service": "shop", "deployed_at": 1709294400, "metadata": {"version\n": "1"}}
    with pytest.raises(RequestInvalidError) as refused:
        dx.read_deployment(body)
    assert refused.value.code == "metadata_invalid"
    assert dx.read_deployment({**body, "metadata": {"version": "1"}}).draft.metadata == {"version": "1"}


def test_a_webhook_path_space_id_with_a_trailing_newline_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Spaces-1\\n`` answers as an unknown space does, without a read of the table."""
    from dora_insights.handlers import code_webhooks
    from dora_insights.logic import spaces

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a malformed space id must not be looked up")

    monkeypatch.setattr(spaces, "get_space", never)
    with pytest.raises(AuthenticationInvalidError):
        code_webhooks.verified_space("Spaces-1\n", lambda space: True, "not this space's")
