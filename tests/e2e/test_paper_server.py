"""Paper trading against a real Prefect server: `evo paper serve` ticks on its schedule while bars are
appended; the ledger equals vectorbt's from_signals over the paper period; a planted breach (the appended
bars reverse the best member's edge) posts exactly one notification per breaching member, and none for the
others, to a local HTTP receiver through a custom-webhook block, under the default drift rule; an evolve
run's end posts one more."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from tests.conftest import small_config
from tests.helpers import evo, write_config
from tests.integration.test_market import DATA
from tests.integration.test_paper import BEGIN, TRAIN, _against, _drift_z, _vectorbt, _write
from tests.prefect_server import client, deployment, errors_in, serving, wait

pytestmark = pytest.mark.slow


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(self.rfile.read(n).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _append(path, df, n):
    """The script appending bars: the file is replaced whole, so a tick never reads it half written."""
    _write(path.with_suffix(".part"), df, n)
    os.replace(path.with_suffix(".part"), path)


@pytest.mark.long
def test_paper_book_served_on_a_schedule_ledger_and_one_notification_per_breach(tmp_path, prefect_server):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.live import paper
    from evo.store import open_store
    from evo.view.summary import describe

    api = prefect_server.api_url
    df = pd.read_csv(DATA / "GOOG.csv", index_col=0, parse_dates=True).astype(float)
    df.columns = [c.lower() for c in df.columns]
    (tmp_path / "train").mkdir()
    _write(tmp_path / "train" / "GOOG.csv", df, TRAIN)
    url = f"sqlite:///{tmp_path}/evo.db"
    cfg = small_config(name="g", data={"paths": [str(tmp_path / "train" / "GOOG.csv")], "synthetic": None},
                       strategy={"family": "trend", "bounds": {"direction": [1, 2], "slow_window": [20, 80]}},
                       evaluation={"ohlc_stops": True}, algorithm={"pop_size": 12, "generations": 1},
                       constraints=[{"metric": "n_trades", "op": ">=", "value": 1}])
    drive(cfg, None, None, url, None, False, Plain())
    live = tmp_path / "GOOG.csv"
    name = f"book-{uuid.uuid4().hex[:6]}"
    store = open_store(url, write=False)
    run_id = store.get_run("g").id
    pareto = {p["genome_hash"]: p for p in describe(store, "g")["pareto"]}
    # the planted breach: from the book's first bar on, every GOOG bar that would pay the best member is
    # mirrored, so it loses steadily; the others trade the same bars as they come
    best = max(pareto.values(), key=lambda p: p["metrics"]["sharpe_ratio"])
    df = _against(df, best["genes"], BEGIN, BEGIN + 90)
    # which members drift under the default rule (z < -2 once 20 paper returns are in), by vectorbt, at each
    # length of the file a tick can see: the best one from the first tick on, some never, none flapping
    z = {h: [_drift_z(p["genes"], p["metrics"]["sharpe_ratio"], df.iloc[:BEGIN + n], BEGIN) for n in (30, 50, 70, 90)]
         for h, p in pareto.items()}
    assert all(abs(v + 2) > 0.25 for zs in z.values() for v in zs), z  # no member near the threshold
    breaching = {h for h, zs in z.items() if zs[0] < -2}
    assert best["genome_hash"] in breaching and len(breaching) < len(pareto), z
    assert all((zs[0] < -2) == all(v < -2 for v in zs) for zs in z.values()), z
    _append(live, df, BEGIN + 30)
    b = paper.create(url, name, "g", [str(live)], start=df.index[BEGIN].isoformat())
    assert sorted(b.members) == sorted(pareto)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies = []
    block = f"hook-{uuid.uuid4().hex[:6]}"

    def mine(word: str) -> list[str]:
        """The notifications about this test's book or run (the automation notifies every evo event: the
        runs of tests running beside this one too)."""
        return [t for t in (json.loads(x)["text"] for x in list(_Receiver.bodies)) if word in t]
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            CustomWebhookNotificationBlock(
                name="evo", url=f"http://127.0.0.1:{server.server_port}/hook", method="POST",
                json_data={"text": "{{body}}"}, allow_private_urls=True,
            ).save(block, overwrite=True)
        args = [name, "--interval", "4", "--notify", f"custom-webhook/{block}", "--db", url]
        with serving(tmp_path, api, args, command=("paper", "serve")) as (proc, log, _):  # the default drift rule
            dep = deployment(api, name, proc, log, flow="paper-tick")
            seen = set()

            def ticks():
                with client(api) as c:
                    runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
                for r in runs:
                    if r.state.is_completed() and r.id not in seen:
                        seen.add(r.id)
                        n = min(BEGIN + 30 + 20 * len(seen), BEGIN + 90)
                        _append(live, df, n)  # the script appending bars between ticks
                    assert not r.state.is_failed(), r.state.message
                return len(seen) >= 3 and seen

            wait(ticks, 300, "three scheduled ticks", every=0.5)
            wait(lambda: len(mine(name)) >= len(breaching), 120, "the drift notifications")
            time.sleep(8)  # a second notification per breach would arrive by now
            assert errors_in(log) == [], errors_in(log)
            drift_posts = mine(name)
        # the same path announces an evolve run's end, once
        cfg_path = write_config(tmp_path / "r.toml", small_config(name="ends", algorithm={"pop_size": 6, "generations": 1}))
        res = evo(["run", str(cfg_path), "--db", f"sqlite:///{tmp_path}/ends.db"], tmp_path, api_url=api)
        assert res.returncode == 0, res.stdout + res.stderr
        wait(lambda: mine("evo.run.finished ends:"), 120, "the run-end notification")
        time.sleep(5)
        ends = mine("evo.run.finished ends:")
        assert len(ends) == 1 and "evo.run.finished ends" in ends[0] and '"status": "completed"' in ends[0], ends
        assert '"verdict": "' in ends[0]
    finally:
        from prefect.automations import Automation

        with temporary_settings({PREFECT_API_URL: api}):  # other tests' runs must not notify a closed receiver
            Automation.read(name=f"evo: notify -> custom-webhook/{block}").delete()
        time.sleep(2)  # an action already under way still finds the receiver
        server.shutdown()
    assert "'paper-tick/" in log.read_text() and "automations:" in log.read_text()
    ids = dict(zip(b.members, paper.show(url, name)["members"]))
    ids_back = {v: k for k, v in ids.items()}
    posted = drift_posts
    assert len(posted) == len(breaching), posted  # one per breaching member, over all the later ticks too
    assert sorted(next(i for i in ids.values() if f"/{i}:" in p) for p in posted) == sorted(ids[h] for h in breaching)
    assert all(name in p and "evo.paper.drift" in p and '"drift": true' in p for p in posted), posted

    led = paper.frame(store, store.get_book(name))
    last = store.get_book(name).last_bar
    n = int(df.index.searchsorted(pd.Timestamp(last))) + 1
    assert n >= BEGIN + 50 and len(led) == len(led.drop_duplicates(["member", "symbol", "bar"])) == (n - BEGIN) * len(b.members)
    drift = {ids_back[d["member"]]: d for d in paper.show(url, name)["drift"]}
    for h in b.members:
        genes = store.genomes_of(run_id, h)[h]
        pf = _vectorbt(genes, df.iloc[:n], BEGIN)
        assert drift[h]["z"] == pytest.approx(_drift_z(genes, pareto[h]["metrics"]["sharpe_ratio"], df.iloc[:n], BEGIN),
                                              rel=1e-9, abs=1e-12)
        assert drift[h]["drift"] == (h in breaching)
        mine = led[led["member"] == h].sort_values("bar")
        np.testing.assert_array_equal(mine["position"].to_numpy(), pf.assets().to_numpy())
        np.testing.assert_array_equal(mine["cash"].to_numpy(), pf.cash().to_numpy())
        np.testing.assert_array_equal(mine["equity"].to_numpy(), pf.value().to_numpy())
