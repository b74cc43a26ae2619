"""Member ids: the one prefix length that tells every genome hash of a run apart."""

import hashlib

from hypothesis import given, strategies as st

from evo.strategies.base import ID_LENGTH, id_length


@given(st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=60), st.integers(1, 10))
def test_id_length_is_the_shortest_unique_prefix(blobs, shortest):
    hashes = sorted({hashlib.sha256(b).hexdigest()[:12] for b in blobs})
    n = id_length(hashes, shortest)
    assert len({h[:n] for h in hashes}) == len(hashes)  # unique
    assert n == shortest or len({h[:n - 1] for h in hashes}) < len(hashes)  # and no shorter one is


def test_close_hashes_get_longer_ids():
    a, b = "0123456789ab" + "0" * 52, "0123456789ac" + "0" * 52
    assert id_length([a, b]) == 12 and id_length([a]) == ID_LENGTH
