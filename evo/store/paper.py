"""Paper books and their ledger: a book is created once; each tick appends its new bars in one
transaction, together with the book's new last bar and history hash, so a tick that dies part-way
leaves nothing and the next one writes the same rows again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from evo.store.models import paper_books, paper_ledger
from evo.store.records import StoreError
from evo.store.sql import now_utc


@dataclass(frozen=True)
class Book:
    id: int
    name: str
    run_id: int
    members: list[str]
    data: list[str]
    start: str
    last_bar: str | None
    history: str | None
    alarms: list[str]  # the members whose current drift has been announced


#: a ledger row: member, symbol, bar, fill, price, position, cash, equity
LEDGER_FIELDS = ("member", "symbol", "bar", "fill", "price", "position", "cash", "equity")


class PaperMixin:
    """Store methods for paper books (mixed into `Store`)."""

    def create_book(self, name: str, run_id: int, members: Sequence[str], data: Sequence[str], start: str) -> Book:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(paper_books).values(name=name, run_id=run_id, members=list(members),
                                                        data=list(data), start=start, created_at=now_utc()))
        except IntegrityError:
            raise StoreError(f"a paper book named {name!r} already exists") from None
        return self.get_book(name)

    def get_book(self, name: str) -> Book | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(paper_books).where(paper_books.c.name == name)).mappings().first()
        if r is None:
            return None
        return Book(r["id"], r["name"], r["run_id"], list(r["members"]), list(r["data"]), r["start"], r["last_bar"],
                    r["history"], list(r["alarms"] or []))

    def books_of(self, run_id: int) -> list[Book]:
        """The paper books trading run `run_id`'s members, by name."""
        with self.engine.connect() as conn:
            names = conn.execute(select(paper_books.c.name).where(paper_books.c.run_id == run_id)
                                 .order_by(paper_books.c.name)).scalars().all()
        return [self.get_book(n) for n in names]

    def append_ledger(self, book: Book, rows: Sequence[dict], last_bar: str, history: str,
                      before_commit: Callable[[], None] | None = None) -> int:
        """Append the rows the ledger lacks and move the book to `last_bar`, in one transaction, only if the
        book is still where `book` saw it (another tick may have moved it). Returns the rows written.
        `before_commit` runs inside the transaction after the writes (a test's fault hook)."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(paper_books)
                .where(paper_books.c.id == book.id,
                       paper_books.c.last_bar.is_(None) if book.last_bar is None else paper_books.c.last_bar == book.last_bar)
                .values(last_bar=last_bar, history=history)
            ).rowcount
            if not moved:
                raise StoreError(f"paper book {book.name!r} was advanced by another tick meanwhile; tick again")
            have = {
                (r.member, r.symbol, r.bar)
                for r in conn.execute(select(paper_ledger.c.member, paper_ledger.c.symbol, paper_ledger.c.bar).where(
                    and_(paper_ledger.c.book_id == book.id, paper_ledger.c.bar > (book.last_bar or ""))))
            }
            new = [dict(r, book_id=book.id) for r in rows if (r["member"], r["symbol"], r["bar"]) not in have]
            if new:
                conn.execute(insert(paper_ledger), new)
            if before_commit is not None:
                before_commit()
        return len(new)

    def set_alarms(self, book_id: int, members: Sequence[str]) -> None:
        """Record the members whose current drift has been announced (replacing the set before)."""
        with self.engine.begin() as conn:
            conn.execute(update(paper_books).where(paper_books.c.id == book_id).values(alarms=list(members)))

    def ledger(self, book_id: int) -> list[dict]:
        """The book's ledger, by member, symbol and bar."""
        q = (select(*(paper_ledger.c[f] for f in LEDGER_FIELDS)).where(paper_ledger.c.book_id == book_id)
             .order_by(paper_ledger.c.member, paper_ledger.c.symbol, paper_ledger.c.bar))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


__all__ = ["Book", "LEDGER_FIELDS", "PaperMixin"]
