"""Ward leases decided without I/O: take, renew every TTL/3, lose on a refused compare-and-set, expire, release."""

from __future__ import annotations

from ingest.ward_leases import Step, WardLeases, preferred

TTL = 9.0


def test_a_free_ward_is_taken_then_renewed_every_third_of_the_ttl_with_the_last_revision() -> None:
    leases = WardLeases("w1", TTL)
    assert leases.plan(0.0, ["A"]) == [Step("take", "A")]
    leases.taken("A", 7, sent=0.0)
    assert leases.owned(0.1) == {"A"}
    assert leases.plan(2.9, ["A"]) == []
    assert leases.plan(3.0, ["A"]) == [Step("renew", "A", 7)]
    leases.renewed("A", 8, sent=3.0)
    assert leases.plan(5.0, ["A"]) == []
    assert leases.plan(6.0, ["A"]) == [Step("renew", "A", 8)]
    assert leases.next_due(4.0) == 6.0


def test_a_ward_another_worker_holds_is_tried_again_after_a_third_of_the_ttl() -> None:
    leases = WardLeases("w2", TTL)
    assert leases.plan(0.0, ["A", "B"]) == [Step("take", "A"), Step("take", "B")]
    leases.busy("A", 0.0)
    leases.taken("B", 1, sent=0.0)
    assert leases.plan(1.0, ["A", "B"]) == []
    assert leases.plan(3.0, ["A", "B"]) == [Step("renew", "B", 1), Step("take", "A")]
    assert leases.owned(3.0) == {"B"}


def test_a_refused_renewal_loses_the_ward_at_once() -> None:
    leases = WardLeases("w1", TTL)
    leases.taken("A", 3, sent=0.0)
    assert leases.plan(3.0, ["A"]) == [Step("renew", "A", 3)]
    leases.lost("A", 3.1)  # the revision moved: the lease expired and another worker created the key
    assert leases.owned(3.1) == set()
    assert leases.revision("A") is None
    assert leases.plan(3.2, ["A"]) == []  # not tried again at once
    assert leases.plan(6.1, ["A"]) == [Step("take", "A")]


def test_an_unanswered_renewal_is_retried_but_the_ward_expires_before_the_server_could_give_it_away() -> None:
    leases = WardLeases("w1", TTL)
    leases.taken("A", 3, sent=10.0)
    assert leases.plan(13.0, ["A"]) == [Step("renew", "A", 3)]  # no answer: nothing to report, it stays due
    assert leases.plan(14.0, ["A"]) == [Step("renew", "A", 3)]
    assert leases.expire(17.4) == []
    assert leases.owned(17.4) == {"A"}
    trusted_until = 10.0 + TTL * 5 / 6  # before 10 + TTL, when the server may expire the key (it counts from later)
    assert leases.expire(trusted_until) == ["A"]
    assert leases.owned(trusted_until) == set()
    assert leases.plan(trusted_until, ["A"]) == [Step("take", "A")]  # taken again once the key is gone


def test_the_lease_counts_from_when_the_request_was_sent_not_when_it_was_answered() -> None:
    leases = WardLeases("w1", TTL)
    leases.taken("A", 1, sent=0.0)  # answered late, say at 2.0
    assert leases.owned(7.4) == {"A"}
    assert leases.owned(7.5) == set()


def test_wards_no_longer_wanted_and_every_ward_on_stop_are_released_with_their_revision() -> None:
    leases = WardLeases("w1", TTL)
    leases.taken("A", 4, sent=0.0)
    leases.taken("B", 5, sent=0.0)
    assert leases.plan(1.0, ["B"]) == [Step("release", "A", 4)]
    leases.released("A", 1.0)
    assert leases.release_all() == [Step("release", "B", 5)]
    leases.released("B", 1.1)
    assert leases.owned(1.1) == set()


def test_every_worker_agrees_which_worker_a_ward_goes_to_and_a_joiner_takes_only_its_own() -> None:
    wards = [f"W{i:02d}" for i in range(40)]
    two = {w: preferred(w, ["w1", "w2"]) for w in wards}
    assert two == {w: preferred(w, ["w2", "w1"]) for w in wards}  # the order of the candidates does not matter
    assert 10 <= sum(p == "w1" for p in two.values()) <= 30  # spread, roughly evenly
    three = {w: preferred(w, ["w1", "w2", "w3"]) for w in wards}
    assert all(three[w] in (two[w], "w3") for w in wards)  # a third worker takes wards only for itself: none move between w1 and w2


def test_a_ward_another_live_worker_prefers_is_yielded_and_a_free_one_it_prefers_is_left_to_it_for_a_round() -> None:
    wards = [f"W{i:02d}" for i in range(8)]
    theirs = sorted(w for w in wards if preferred(w, ["w1", "w2"]) == "w2")
    ours = sorted(set(wards) - set(theirs))
    assert theirs and ours
    leases = WardLeases("w1", TTL)
    for i, w in enumerate(wards):
        leases.taken(w, i + 1, sent=0.0)
    assert leases.plan(1.0, wards, peers={}) == []  # alone: keeps everything
    steps = leases.plan(1.0, wards, peers={"w2": None})
    assert [s.ward for s in steps if s.op == "release"] == theirs and not [s for s in steps if s.op != "release"]
    for w in theirs:
        leases.released(w, 1.0)
    assert leases.owned(1.0) == set(ours)
    assert [s for s in leases.plan(4.0, wards, peers={"w2": None}) if s.op == "take"] == []  # w2's turn
    leases.busy(theirs[0], 7.0)  # w2 took this one
    retake = [s.ward for s in leases.plan(7.0, wards, peers={"w2": None}) if s.op == "take"]
    assert retake == theirs[1:]  # two rounds later, still free: taken back, so nothing goes unwatched
    leases.taken(theirs[1], 99, sent=7.0)
    assert theirs[1] not in [s.ward for s in leases.plan(10.0, wards, peers={"w2": None}) if s.op == "release"]  # kept a while


def test_a_free_ward_another_worker_prefers_is_taken_after_one_round_and_one_this_worker_prefers_at_once() -> None:
    w_ours = next(f"X{i}" for i in range(100) if preferred(f"X{i}", ["w1", "w2"]) == "w1")
    w_theirs = next(f"X{i}" for i in range(100) if preferred(f"X{i}", ["w1", "w2"]) == "w2")
    leases = WardLeases("w1", TTL)
    assert leases.plan(0.0, [w_ours, w_theirs], peers={"w2": None}) == [Step("take", w_ours)]
    assert leases.plan(3.0, [w_theirs], peers={"w2": None}) == [Step("take", w_theirs)]  # its preferred worker did not take it
    fresh = WardLeases("w1", TTL)
    assert fresh.plan(0.0, [w_theirs], peers={"w2": frozenset({"other"})}) == [Step("take", w_theirs)]  # w2 may not own it
