"""A run read back for trading: its stored config, its family, and its members by id.

A member's id is the start of its genome hash: `evo show` prints the run's ids all of one length, the
shortest (at least 8 hex digits) that tells every genome the run ever held apart; any longer start of
the hash, up to the whole of it, names the same member.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evo.config import RunConfig
from evo.config.errors import MemberError, RunError
from evo.store import RunRecord, Store, open_store
from evo.store import url as urls

#: the fewest hex digits an id may have
MIN_ID = 4


@dataclass(frozen=True)
class Member:
    """One genome of a run, as the commands trading it need it."""

    id: str
    genome_hash: str
    genes: dict


@dataclass(frozen=True)
class OpenRun:
    """A stored run opened read-only: its record, its config, its family and its store."""

    store: Store
    record: RunRecord
    config: RunConfig

    @property
    def name(self) -> str:
        return self.record.name

    def family(self):
        from evo import strategies

        return strategies.get(self.config.strategy.family, self.config.strategy.trading)

    def id_length(self) -> int:
        from evo.strategies.base import id_length

        return id_length(self.store.hashes_of(self.record.id))

    def member(self, ident: str) -> Member:
        """The member whose genome hash starts with `ident`; MemberError when none or several do."""
        text = str(ident).strip().lower()
        if not re.fullmatch(rf"[0-9a-f]{{{MIN_ID},64}}", text):
            raise MemberError(
                f"member id {ident!r}: expected {MIN_ID} to 64 hex digits of a genome hash, as `evo show "
                f"{self.name}` prints them"
            )
        found = self.store.genomes_of(self.record.id, text)
        if not found:
            raise MemberError(f"run {self.name!r} has no member {text!r} (`evo show {self.name}` lists the ids)")
        if len(found) > 1:
            raise MemberError(f"member id {text!r} is ambiguous in run {self.name!r}: {len(found)} genomes start "
                              "with it; give more digits")
        ((genome_hash, genes),) = found.items()
        return Member(genome_hash[: max(self.id_length(), len(text))], genome_hash, genes)

    def pareto(self) -> list[Member]:
        """The final Pareto set, as `evo show` lists it (one member per distinct behaviour)."""
        from evo.view.summary import describe

        return [Member(e["id"], e["genome_hash"], e["genes"]) for e in describe(self.store, self.name)["pareto"]]

    def members(self, idents) -> list[Member]:
        """The members named by `idents` (each once, in the order given), or the final Pareto set."""
        if not idents:
            chosen = self.pareto()
            if not chosen:
                raise RunError(f"run {self.name!r} has no Pareto set yet (no generation, or no feasible strategy)")
            return chosen
        out: dict[str, Member] = {}
        for i in idents:
            m = self.member(i)
            out.setdefault(m.genome_hash, m)
        return list(out.values())


def open_run(name: str, database: str) -> OpenRun:
    """Run `name` read-only: a missing database or run is refused in one line, nothing is created."""
    from evo.config.schema import stored

    store = open_store(database, write=False)
    rec = store.get_run(name)
    if rec is None:
        raise RunError(f"no run named {name!r} in {urls.mask(database)}")
    return OpenRun(store, rec, stored(rec.config, source=f"run {name!r}"))
