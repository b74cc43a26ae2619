"""Crashed runs heal without a person: heartbeats, and two Prefect automations.

A process that dies by SIGKILL, the OOM killer or a machine crash cannot tell the Prefect server, so
its flow run would stay Running for ever, holding its deployment's concurrency slot. Prefect's answer
for self-hosted servers ("detect zombie flows") is heartbeats plus an automation:

1. every evo flow run emits a heartbeat event every HEARTBEAT_SECONDS (PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
   set by `evo` itself, by `evo serve` for its runs and by prefect.yaml for a worker's);
2. ZOMBIE: a flow run tagged `evo` that goes SILENT_SECONDS without a heartbeat (and without reaching a
   final state) is set to Crashed, which frees its concurrency slot;
3. HEAL: a Crashed flow run tagged `evo-heal` (the deployments of `evo serve` and prefect.yaml) is set
   back to Scheduled under the same flow-run id; the serving process or worker runs it again and it
   resumes from its last committed generation. The flow refuses to start once it was healed more than
   MAX_HEALS times (EVO_HEAL_ATTEMPTS), so a run that crashes every time ends Failed instead of looping.

`install()` creates or updates both automations (idempotent); `evo serve` calls it, and `evo heal` does
for `prefect deploy` setups.
"""

from __future__ import annotations

import datetime as dt

HEARTBEAT_SECONDS = 30
SILENT_SECONDS = 90  # three heartbeats missed
TAG = "evo"
HEAL_TAG = "evo-heal"
ZOMBIE = "evo: crash unresponsive runs"
HEAL = "evo: resume crashed runs"
HEAL_MESSAGE = "evo: rescheduled after a crash; it resumes from its last committed generation"


def max_heals() -> int:
    """How often a crashed run is rescheduled before it ends Failed (EVO_HEAL_ATTEMPTS)."""
    from evo.config.settings import settings

    return settings().heal_attempts


def automations() -> list:
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    def tagged(tag: str) -> dict:
        return {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{tag}"}

    return [
        Automation(
            name=ZOMBIE,
            description=f"An evo flow run without a heartbeat for {SILENT_SECONDS} s is marked Crashed "
            "(its process died without telling the server); this frees its concurrency slot.",
            trigger=EventTrigger(
                after={"prefect.flow-run.heartbeat"},
                expect={
                    "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed",
                },
                match={"prefect.resource.id": ["prefect.flow-run.*"]},
                match_related=tagged(TAG),
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=dt.timedelta(seconds=SILENT_SECONDS),
            ),
            actions=[ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"evo: no heartbeat for {SILENT_SECONDS} s; the process running this flow run died",
            )],
        ),
        Automation(
            name=HEAL,
            description="A Crashed run of an evo deployment is scheduled again under the same flow-run id; "
            "it resumes from its last committed generation (at most EVO_HEAL_ATTEMPTS times).",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Crashed"},
                match={"prefect.resource.id": ["prefect.flow-run.*"]},
                match_related=tagged(HEAL_TAG),
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=1,
                within=dt.timedelta(seconds=0),
            ),
            actions=[ChangeFlowRunState(state=StateType.SCHEDULED, message=HEAL_MESSAGE, force=True)],
        ),
    ]


def _spec(a) -> dict:
    return a.model_dump(mode="json", include={"description", "trigger", "actions", "enabled"})


def install(wanted_automations: list | None = None) -> list[tuple[str, str]]:
    """Create the automations (default: both of healing), or bring them up to date by name;
    [(name, "created" | "updated" | "unchanged")]."""
    from prefect.automations import Automation

    out = []
    for wanted in automations() if wanted_automations is None else wanted_automations:
        try:
            found = Automation.read(name=wanted.name)
        except ValueError:  # not found
            wanted.create()
            out.append((wanted.name, "created"))
            continue
        if _spec(found) == _spec(wanted):
            out.append((wanted.name, "unchanged"))
            continue
        wanted.id = found.id
        wanted.update()
        out.append((wanted.name, "updated"))
    return out


def heals_so_far(flow_run_id) -> int:
    """How often the HEAL automation has rescheduled this flow run."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(flow_run_id)
    return sum(1 for s in states if s.message == HEAL_MESSAGE)


def check_attempts(flow_run_id) -> None:
    """Refuse to start a run that the HEAL automation has already rescheduled more than max_heals() times."""
    if flow_run_id is None:
        return
    n = heals_so_far(flow_run_id)
    if n > max_heals():
        from evo.run.opening import RunError

        raise RunError(
            f"this flow run crashed {n} times and was rescheduled automatically each time; EVO_HEAL_ATTEMPTS="
            f"{max_heals()} allows {max_heals()} automatic resumes: find the cause in its logs, then retry it by hand"
        )
