"""The openai backend's configuration, without a server: URLs, settings, the CLI's one-liners."""

from __future__ import annotations

import pytest

from dca.config import Paths
from dca.errors import ConfigError
from dca.runtime.remote import check_base_url
from dca.settings import load_settings


def test_base_url_must_be_http_without_credentials() -> None:
    assert check_base_url(" http://127.0.0.1:8080/v1/ ") == "http://127.0.0.1:8080/v1"
    for bad in ("ftp://host/v1", "127.0.0.1:8080", "http://", "http://user:pw@host/v1"):
        with pytest.raises(ConfigError):
            check_base_url(bad)


def test_backend_settings(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = load_settings(home)
    assert chosen["backend"] == "local" and chosen["base_url"] is None and chosen["timeout"] == 300
    monkeypatch.setenv("DCA_BACKEND", "openai")
    monkeypatch.setenv("DCA_TIMEOUT", "5")
    chosen = load_settings(home)
    assert chosen["backend"] == "openai" and chosen["timeout"] == 5
    for name, value in (("DCA_BACKEND", "vllm"), ("DCA_TIMEOUT", "0")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError):
            load_settings(home)
        monkeypatch.delenv(name)


def test_openai_backend_without_a_url_is_one_line(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    from dca.runtime.remote import load_generator

    monkeypatch.setenv("DCA_BACKEND", "openai")
    with pytest.raises(ConfigError, match="needs the server's URL"):
        load_generator(paths=home)
