"""The task record's own helpers: timestamps and the params echo."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from rpcsvc.task import isoformat, new_task_id, summarise_params


def test_isoformat_matches_datetime_to_the_microsecond() -> None:
    rng = random.Random(7)
    stamps = [rng.uniform(0, 4e9) for _ in range(20_000)] + [1.9999995, 1_700_000_000.0000005]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds")
        assert isoformat(stamp) == expected.replace("+00:00", "Z")
    assert isoformat(None) is None


def test_task_ids_are_distinct_uuid4() -> None:
    ids = {new_task_id() for _ in range(5_000)}
    assert len(ids) == 5_000
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, task_id)


def test_long_lists_are_echoed_as_counts() -> None:
    params = {"texts": ["x"] * 101, "ids": [1, 2], "detail": "summary"}
    assert summarise_params(params) == {"texts": {"count": 101}, "ids": [1, 2], "detail": "summary"}
