"""The suite's own scheduling: the tests marked `long` start first, one per pytest-xdist worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import long_tests_first, workers


class Item:
    def __init__(self, name: str, long: bool):
        self.name, self.long = name, long

    def get_closest_marker(self, name):
        return pytest.mark.long if name == "long" and self.long else None


def test_a_worker_counts_the_workers_from_xdist_not_from_its_own_options():
    """Each worker collects and orders the tests itself; its `numprocesses` option is None."""
    worker = SimpleNamespace(workerinput={"workerid": "gw1", "workercount": 4}, option=SimpleNamespace(numprocesses=None))
    controller = SimpleNamespace(option=SimpleNamespace(numprocesses=3))
    alone = SimpleNamespace(option=SimpleNamespace(numprocesses=None))
    assert (workers(worker), workers(controller), workers(alone)) == (4, 3, 1)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_each_worker_block_starts_with_its_share_of_the_long_tests(k):
    items = [Item(f"t{i}", long=i % 7 == 3) for i in range(60)]
    order = long_tests_first(items, k)
    assert sorted(i.name for i in order) == sorted(i.name for i in items)
    # the blocks worksteal hands out: len(pending) // workers left, in order
    blocks, left, at = [], len(order), 0
    for b in range(k):
        size = left // (k - b)
        blocks.append(order[at:at + size])
        at, left = at + size, left - size
    n_long = sum(i.long for i in items)
    for block in blocks:
        firsts = [i.long for i in block]
        share = sum(firsts)
        assert share in (n_long // k, -(-n_long // k)) and all(firsts[:share])  # its long tests lead its block
