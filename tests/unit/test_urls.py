"""Database URLs: one precedence for every command, secrets masked everywhere and kept out of what travels."""

from __future__ import annotations

import pytest

from evo.store import url as urls


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(urls.ENV, raising=False)


def test_precedence_db_then_env_then_storage_then_default(monkeypatch):
    assert urls.resolve(None, None) == "sqlite:///evo.db"
    assert urls.resolve(None, "sqlite:////tmp/storage.db") == "sqlite:////tmp/storage.db"
    monkeypatch.setenv(urls.ENV, "sqlite:////tmp/env.db")
    assert urls.resolve(None, "sqlite:////tmp/storage.db") == "sqlite:////tmp/env.db"
    assert urls.resolve("sqlite:////tmp/cli.db", "sqlite:////tmp/storage.db") == "sqlite:////tmp/cli.db"


@pytest.mark.parametrize(
    "given, expected",
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        (" sqlite:///x.db ", "sqlite:///x.db"),
    ],
)
def test_postgres_schemes_use_psycopg(given, expected):
    assert urls.resolve(given) == expected


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql://evo:s3cr3t@h/db", "s3cr3t"),
        ("postgresql://evo@h/db?password=s3cr3t", "s3cr3t"),
        ("postgresql://evo@h/db?sslmode=require&sslpassword=s3cr3t", "s3cr3t"),
        ("postgresql://evo@h/db?api_token=s3cr3t", "s3cr3t"),
        ("postgresql://evo:p%40ss@h/db", "p@ss"),
    ],
)
def test_every_secret_is_found_masked_and_scrubbed(url, secret):
    assert urls.has_secret(url)
    assert secret in urls.secrets(url)
    masked = urls.mask(url)
    assert secret not in masked and "***" in masked
    assert urls.scrub(f"driver said: {url} {secret}", [url]).count(secret) == 0


def test_a_plain_url_has_no_secret_and_shows_as_is():
    url = "postgresql+psycopg://evo@h:5432/db?sslmode=require"
    assert not urls.has_secret(url) and urls.mask(url) == url
    assert urls.safe(url) == url and urls.real(url) == url


def test_safe_form_travels_and_real_url_stays_in_the_process(monkeypatch):
    url = "postgresql+psycopg://evo:s3cr3t@h/db"
    safe = urls.safe(url)
    assert "s3cr3t" not in safe
    assert urls.real(safe) == url  # remembered here
    urls._known.clear()  # another process: only its environment knows the secret
    with pytest.raises(urls.URLError, match="EVO_DATABASE_URL"):
        urls.real(safe)
    monkeypatch.setenv(urls.ENV, "postgresql://evo:s3cr3t@h/db")
    assert urls.real(safe) == url


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_in_memory_sqlite_is_refused(url):
    with pytest.raises(urls.URLError, match="in-memory"):
        urls.check(url)


@pytest.mark.parametrize("url, what", [("mysql://u@h/db", "unsupported"), ("not a url", "cannot parse")])
def test_unusable_urls_are_refused(url, what):
    with pytest.raises(urls.URLError, match=what):
        urls.check(url)
