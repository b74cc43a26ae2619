"""The errors evo raises on purpose, in one hierarchy.

`UserError` and its subclasses are input a person can fix (a config field, a data file, a database
URL or path, an environment variable, a run that cannot continue as asked): the CLI prints their
one-line message and exits 2, and nothing has been written. Any other exception is a bug or an
environment failure: one line with its type and exit 1 (`evo --debug` shows the traceback).
"""

from __future__ import annotations


class EvoError(Exception):
    """Every error evo raises on purpose."""


class UserError(EvoError):
    """Input a person can fix; the message names the field, file, option, row or variable."""


class ConfigError(UserError, ValueError):
    """A config that cannot run; the message names the field."""


class SettingsError(UserError, ValueError):
    """An EVO_* environment variable with a value evo cannot use; the message names the variable."""


class DataError(UserError, ValueError):
    """Market data that cannot be used; the message names the file, column or row."""


class FamilyError(UserError, LookupError):
    """A strategy family that is unknown, cannot be imported, or whose kernel disagrees with its reference."""


class BudgetError(UserError):
    """The evaluation's memory budget cannot hold even one strategy."""


class ClusterError(UserError):
    """A Dask cluster that cannot evaluate: its scheduler does not answer, or it has had no worker for
    longer than the run waits; the message names the scheduler (and the generation)."""


class URLError(UserError, ValueError):
    """A database URL evo refuses (unparsable, unsupported, in-memory, with a secret where none may go)."""


class StoreError(UserError):
    """A database evo cannot use, stated in one line (unreachable, not evo's, newer schema, a path the
    file system refuses)."""


class RunBusy(StoreError):
    """Another live process holds the run's lease."""


class LeaseLost(StoreError):
    """This process no longer holds the run's lease (it expired and another took it)."""


class RunError(UserError):
    """A run that cannot start or continue as asked."""


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (of its database driver's error, for a
    SQLAlchemy error), or its type's name when it has none."""
    msg = str(getattr(e, "orig", None) or e).strip()
    return msg.splitlines()[0].strip() if msg else type(e).__name__


class MemberError(UserError, LookupError):
    """A member id that names no genome of the run, or more than one."""
