"""Database URLs: which database a command uses, how a URL is shown, and where its secrets may go.

Every command and flow resolves its database here, with one precedence:
`--db` (or the flow's `db_url`), then `EVO_DATABASE_URL`, then the config's
`storage.url`, then `sqlite:///evo.db`. A URL is only ever printed masked, and
a URL with a secret (a password, or a secret query parameter such as
`?password=` or libpq's `sslpassword`) never travels as a flow parameter, a
config or a task argument: it stays in this process (and in the environment
of processes it starts, as EVO_DATABASE_URL).
"""

from __future__ import annotations

import os
import re
import threading

from sqlalchemy.engine import URL, make_url

DEFAULT_URL = "sqlite:///evo.db"
ENV = "EVO_DATABASE_URL"
MASK = "***"

#: query parameters whose values are secrets (libpq's password and sslpassword, and anything alike)
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


class URLError(ValueError):
    """A database URL that cannot be used, in one line (never with its secrets)."""


def resolve(db: str | None = None, config_url: str | None = None) -> str:
    """The database URL a command uses: --db, then EVO_DATABASE_URL, then storage.url, then the default."""
    return normalize(db or os.environ.get(ENV) or config_url or DEFAULT_URL)


def normalize(url: str) -> str:
    """postgres:// and postgresql:// use the installed psycopg 3 driver."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _parse(url: str) -> URL | None:
    try:
        return make_url(normalize(url))
    except Exception:
        return None


def secrets(url: str | None) -> list[str]:
    """The secret strings inside a URL: its password and the values of secret query parameters."""
    if not url:
        return []
    u = _parse(url)
    if u is None:
        # unparsable: anything after "user:" up to "@" is treated as a password
        m = re.search(r"://[^:/@]*:([^@/]+)@", url)
        return [m.group(1)] if m else []
    out = [u.password] if u.password else []
    for k, v in u.query.items():
        if _SECRET_KEY.search(k):
            out += [x for x in ([v] if isinstance(v, str) else list(v)) if x]
    return [str(s) for s in out]


def has_secret(url: str | None) -> bool:
    return bool(secrets(url))


def mask(url: str) -> str:
    """The URL with every secret replaced by ***: the only form that is ever printed, logged or stored."""
    u = _parse(url)
    if u is None:
        return "<unparsable database URL>"
    # SQLAlchemy renders the password as *** itself; a query value would be URL-quoted, so mark it first
    query = {k: ("EVOMASKED" if _SECRET_KEY.search(k) else v) for k, v in u.query.items()}
    return u.set(query=query).render_as_string(hide_password=True).replace("EVOMASKED", MASK)


def scrub(text: str, urls: list[str | None]) -> str:
    """`text` with the secrets of `urls` replaced by *** (for error messages that quote a driver)."""
    for s in sorted({s for u in urls for s in secrets(u)}, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def check(url: str) -> URL:
    """Parse a URL evo can use, or raise URLError naming what is wrong."""
    u = _parse(url)
    if u is None:
        raise URLError(f"cannot parse database URL {mask(url)}")
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise URLError(f"unsupported database backend {backend!r} in {mask(url)} (use sqlite:/// or postgresql://)")
    if backend == "sqlite" and (not u.database or u.database == ":memory:" or "mode=memory" in str(u)):
        raise URLError(
            f"{mask(url)} is an in-memory SQLite database, which vanishes with the process; "
            "give a file, e.g. sqlite:///evo.db"
        )
    return u


# ---------------------------------------------------------------------------------------------
# a URL with a secret stays in this process: RunContext and task arguments carry its masked form

_known: dict[str, str] = {}
_lock = threading.Lock()


def safe(url: str) -> str:
    """The masked form of a resolved URL, remembered so that `real` can give the URL back in this process."""
    url = normalize(url)
    masked = mask(url)
    if masked != url:
        with _lock:
            _known[masked] = url
    return masked


def real(masked: str) -> str:
    """The URL behind `safe(url)`: remembered in this process, or EVO_DATABASE_URL in another one."""
    with _lock:
        if masked in _known:
            return _known[masked]
    if MASK not in masked:
        return masked
    env = os.environ.get(ENV)
    if env and mask(normalize(env)) == masked:
        return normalize(env)
    raise URLError(
        f"the secrets of database {masked} are not known in this process; set {ENV} in its environment"
    )
