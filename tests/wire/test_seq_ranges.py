"""SeqRanges against a plain set: appends at the top, single removals, removals up to a number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.seq_ranges import SeqRanges

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 3), st.integers(1, 6)),  # gap above the top, run length
        st.tuples(st.just("discard"), st.integers(0, 60), st.just(0)),
        st.tuples(st.just("upto"), st.integers(0, 60), st.just(0)),
    ),
    max_size=60,
)


@given(ops=OPS)
def test_behaves_like_a_set(ops: list[tuple[str, int, int]]) -> None:
    r, model, top = SeqRanges(), set(), 0
    for op, a, b in ops:
        if op == "append":
            lo = top + 1 + a
            r.append(lo, lo + b - 1)
            model.update(range(lo, lo + b))
            top = lo + b - 1
        elif op == "discard":
            assert r.discard(a) == (a in model)
            model.discard(a)
        else:
            removed = r.remove_upto(a)
            gone = {s for lo, hi in removed for s in range(lo, hi + 1)}
            assert gone == {s for s in model if s <= a}
            assert all(lo <= hi for lo, hi in removed) and removed == sorted(removed)
            model -= gone
        assert list(r) == sorted(model) and len(r) == len(model)
        assert r.first() == min(model, default=None) and r.last() == max(model, default=None)
        for probe in range(0, top + 2):
            assert (probe in r) == (probe in model)
            assert r.next_after(probe) == min((s for s in model if s > probe), default=None)
        assert SeqRanges(r.runs()).runs() == r.runs()  # rebuilt from its runs, as from a spool


def test_runs_are_merged_and_must_go_up() -> None:
    r = SeqRanges([(1, 3), (4, 6), (9, 9)])
    assert r.runs() == [(1, 6), (9, 9)] and len(r) == 7
    with pytest.raises(ValueError):
        r.append(9, 12)
    with pytest.raises(ValueError):
        r.append(12, 11)
    assert r.discard(3) and r.runs() == [(1, 2), (4, 6), (9, 9)]
    assert r.remove_upto(5) == [(1, 2), (4, 5)] and r.runs() == [(6, 6), (9, 9)]
