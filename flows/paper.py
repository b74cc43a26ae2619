"""Paper trading on a Prefect schedule, and what evo tells a person: one `paper-tick` flow run per tick
of a paper book (evo.live.paper). A member that starts drifting becomes one `evo.paper.drift` event (the
book, the member and its figures); an `evolve` run's end becomes one `evo.run.finished` event (its
verdict, or its failure). `notify_automation` turns both into notifications through a Prefect
notification block the user names. The book's markdown artifact is updated on every tick.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from evo.flows.orchestration import artifact_key

DRIFT_EVENT = "evo.paper.drift"
RUN_END_EVENT = "evo.run.finished"


@flow(name="paper-tick")
def paper_tick(book: str, db_url: str | None = None) -> dict:
    """One tick of paper book `book`: its new bars into its ledger, drift judged, breaches announced.

    Args:
        book: The paper book's name (`evo paper create`).
        db_url: The evo database; default EVO_DATABASE_URL, then sqlite:///evo.db.
    """
    from prefect.artifacts import create_markdown_artifact

    from evo.config import codec
    from evo.flows.evolve import database_for
    from evo.live import paper

    log = get_run_logger()
    database = database_for(db_url or None, None)
    r = paper.tick(database, book)
    s = paper.show(database, book)
    ids = dict(zip(paper.full_members(database, book), s["members"]))
    # announced first, recorded after: a tick killed in between announces again (twice rather than never)
    for d in paper.unannounced(database, book, r["drift"]):
        announce(book, ids[d["member"]], codec.encode(dict(d, member=ids[d["member"]]), nan=None))
        log.warning("paper book %r: member %s drifts (Sharpe z %.3g over %d bars)", book, ids[d["member"]], d["z"],
                    d["bars"])
    paper.announced(database, book, r["drift"])
    create_markdown_artifact(markdown=paper.markdown(s), key=artifact_key(book, "paper"),
                             description=f"paper book {book}: last bar and drift per member")
    log.info("paper book %r: %d ledger rows written, last bar %s", book, r["rows"], r["last_bar"])
    return codec.encode({k: r[k] for k in ("bars", "rows", "last_bar")}, nan=None)


def announce(book: str, member: str, figures: dict) -> None:
    """The `evo.paper.drift` event of one breach."""
    from prefect.events import emit_event

    emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": f"evo.paper.{book}.{member}", "prefect.resource.name": f"{book}/{member}",
                  "evo.book": book, "evo.member": member},
        payload=figures,
    )


def announce_run_end(run: str, figures: dict) -> None:
    """The `evo.run.finished` event of an evolve run that completed (its verdict) or failed (its error)."""
    from prefect.events import emit_event

    from evo.config import codec

    emit_event(event=RUN_END_EVENT, resource={"prefect.resource.id": f"evo.run.{run}", "prefect.resource.name": run,
                                              "evo.run": run}, payload=codec.encode(figures, nan=None))


def notify_automation(block: str):
    """The automation that sends one notification per `evo.paper.drift` or `evo.run.finished` event through
    the notification block `block` ("block-type-slug/name", e.g. "custom-webhook/ops")."""
    import datetime as dt

    from prefect.automations import Automation
    from prefect.blocks.core import Block
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    block_id = Block.load(block)._block_document_id
    return Automation(
        name=f"evo: notify -> {block}",
        description="One notification per evo.paper.drift event (a paper member whose returns left its backtest's) "
                    "and per evo.run.finished event (an evolve run's verdict, or its failure).",
        trigger=EventTrigger(expect={DRIFT_EVENT, RUN_END_EVENT}, match={"prefect.resource.id": ["evo.paper.*", "evo.run.*"]},
                             posture=Posture.Reactive, threshold=1, within=dt.timedelta(seconds=0)),
        actions=[SendNotification(
            block_document_id=block_id,
            subject="evo: {{ event.event }} {{ event.resource['prefect.resource.name'] }}",
            body="{{ event.event }} {{ event.resource['prefect.resource.name'] }}: {{ event.payload | tojson }}",
        )],
    )
