"""``ensure_stream`` against the real local NATS server: created, left alone, updated, refused with a clear error."""

from __future__ import annotations

import asyncio
import logging

import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType
from jetstream_support import unique
from nats_cluster import connected

from wire.jetstream_stream import StreamSettings, StreamSettingsError, ensure_stream

pytestmark = pytest.mark.integration


def test_the_stream_is_created_then_kept_or_updated_as_the_caller_owns_it(local_nats: str, caplog: pytest.LogCaptureFixture) -> None:
    prefix, name = unique("t") + ".frames", unique("S")
    caplog.set_level(logging.INFO, "wire.jetstream_stream")

    async def scenario() -> None:
        async with connected(local_nats) as nc:
            js = nc.jetstream()
            try:
                settings = StreamSettings(name=name, max_age_s=3600.0, duplicate_window_s=60.0, max_bytes=50_000_000)
                info = await ensure_stream(js, settings, prefix)
                c = info.config
                assert (c.subjects, c.max_age, c.duplicate_window, c.max_bytes, c.num_replicas) == ([f"{prefix}.>"], 3600, 60, 50_000_000, 1)
                assert (c.storage, c.discard, c.retention) == (StorageType.FILE, DiscardPolicy.NEW, RetentionPolicy.LIMITS)  # str enums
                again = await ensure_stream(js, settings, prefix)  # as it is: nothing changes
                assert again.config.max_age == 3600 and again.state.messages == 0

                changed = StreamSettings(name=name, max_age_s=7200.0, duplicate_window_s=60.0, max_bytes=50_000_000)
                kept = await ensure_stream(js, changed, prefix, update=False)  # an edge agent: warns, leaves it
                assert kept.config.max_age == 3600
                assert any("differs from this configuration (max_age_s: 3600.0 -> 7200.0)" in r.getMessage() for r in caplog.records)
                updated = await ensure_stream(js, changed, prefix)  # a hub worker: brings it to its settings
                assert updated.config.max_age == 7200 and (await js.stream_info(name)).config.max_age == 7200

                workqueue = StreamSettings(name=name, max_age_s=7200.0, duplicate_window_s=60.0, max_bytes=50_000_000, retention="workqueue")
                with pytest.raises(StreamSettingsError, match=f"stream {name}: NATS refused to change retention: limits -> workqueue: .*retention"):
                    await ensure_stream(js, workqueue, prefix)  # NATS does not change an existing stream's retention
            finally:
                await js.delete_stream(name)

    asyncio.run(scenario())


def test_a_stream_that_cannot_be_created_is_a_clear_error(local_nats: str) -> None:
    async def scenario() -> None:
        async with connected(local_nats) as nc:
            name = unique("S")
            with pytest.raises(StreamSettingsError, match=f"stream {name}: NATS refused to create it"):
                await ensure_stream(nc.jetstream(), StreamSettings(name=name, replicas=3), unique("t") + ".frames")

    asyncio.run(scenario())
