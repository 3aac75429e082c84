"""UUIDv7 alarm ids: valid version-7 UUIDs, unique, in the order they were made, even within one millisecond."""

import uuid

from wire.ids import new_id


def test_ids_are_uuid_v7_with_their_millisecond() -> None:
    u = uuid.UUID(new_id(1_800_000_000_123))
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert u.int >> 80 >= 1_800_000_000_123  # the 48-bit time field (never earlier than asked)


def test_ids_made_in_one_millisecond_stay_unique_and_ordered() -> None:
    ids = [new_id(2_000_000_000_000) for _ in range(5000)]  # more than the 4,096 an in-ms counter holds
    assert len(set(ids)) == len(ids) and ids == sorted(ids)


def test_a_clock_stepping_back_never_reorders_ids() -> None:
    later = new_id(2_100_000_000_000)
    assert new_id(1_000) > later
