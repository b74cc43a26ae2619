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
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from evo.config.errors import StoreError, URLError
from evo.config.settings import settings

DEFAULT_URL = "sqlite:///evo.db"
ENV = "EVO_DATABASE_URL"
MASK = "***"

#: query parameters whose values are secrets (libpq's password and sslpassword, and anything alike)
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


def env_url() -> str | None:
    """EVO_DATABASE_URL, or None when it is not set."""
    v = settings().database_url
    return v.get_secret_value() if v is not None else None


def env_url_unchecked() -> str | None:
    """EVO_DATABASE_URL as it is, read even when another EVO_* variable is invalid: an error about that
    variable must still have this URL's secrets scrubbed before it is printed."""
    return os.environ.get(ENV)


def resolve(db: str | None = None, config_url: str | None = None) -> str:
    """The database URL a command uses: --db, then EVO_DATABASE_URL, then storage.url, then the default."""
    return normalize(db or env_url() or config_url or DEFAULT_URL)


def check_sqlite_path(path: Path) -> None:
    """Refuse, before anything is written, a SQLite file the file system will not let evo create or write:
    a path that is a folder, a parent that is a file or does not exist, a folder or file without write
    permission (StoreError naming the path)."""
    if path.is_dir():
        raise StoreError(f"database path {path} is a folder, not a SQLite file")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"no permission to write the database file {path}")
        return
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise StoreError(f"cannot create the database {path}: {folder} is a file, not a folder")
            break
    if not parent.is_dir():
        raise StoreError(f"cannot create the database {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create the database {path}: no permission to write in the folder {parent}")


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
    env = env_url()
    if env and mask(normalize(env)) == masked:
        return normalize(env)
    raise URLError(
        f"the secrets of database {masked} are not known in this process; set {ENV} in its environment"
    )
