from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.spool import Spool, SpoolLocked

REPO = Path(__file__).resolve().parents[2]


def _record(i: int) -> list[bytes]:
    return [f'{{"event_id":"ev-{i}-{j}","trace_code":"冷链-{i}"}}'.encode() for j in range(i % 4)]


def _everything(spool: Spool) -> list[list[bytes]]:
    return [record for segment in spool.sealed() for record in spool.read(segment)]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool")
    yield opened
    opened.close()


def test_records_come_back_in_order_byte_for_byte(spool: Spool) -> None:
    records = [_record(i) for i in range(50)]
    for record in records:
        spool.append(record)
    segment = spool.seal()
    assert segment is not None
    assert spool.sealed() == [segment]
    assert list(spool.read(segment)) == records


def test_seal_of_nothing_is_none_and_appends_go_to_a_new_segment(spool: Spool) -> None:
    assert spool.seal() is None
    spool.append(_record(1))
    first = spool.seal()
    assert spool.seal() is None
    spool.append(_record(2))
    second = spool.seal()
    assert first is not None and second is not None and first < second
    assert spool.sealed() == [first, second]
    assert list(spool.read(second)) == [_record(2)]


def test_the_active_segment_can_be_neither_read_nor_dropped(spool: Spool, tmp_path: Path) -> None:
    spool.append(_record(1))
    [active] = [int(p.stem) for p in (tmp_path / "spool").glob("*.spool")]
    assert spool.sealed() == []
    with pytest.raises(ValueError, match="still active"):
        spool.read(active)
    with pytest.raises(ValueError, match="still active"):
        spool.drop(active)
    with pytest.raises(ValueError, match="no sealed segment 999"):
        spool.drop(999)


def test_segments_rotate_by_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1_000)
    records = [[b"x" * 300] for _ in range(10)]
    for record in records:
        spool.append(record)
    spool.seal()
    # A record is 316 bytes framed: three fit in 1,000.
    assert [len(list(spool.read(s))) for s in spool.sealed()] == [3, 3, 3, 1]
    assert all(p.stat().st_size <= 1_000 for p in tmp_path.glob("*.spool"))
    assert _everything(spool) == records
    spool.close()


def test_a_record_larger_than_a_segment_gets_one_of_its_own(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    spool.append([b"y" * 500])
    spool.append([b"z"])
    spool.seal()
    assert [list(spool.read(s)) for s in spool.sealed()] == [[[b"y" * 500]], [[b"z"]]]
    spool.close()


def test_drop_deletes_the_segment_for_good(spool: Spool, tmp_path: Path) -> None:
    spool.append(_record(1))
    first = spool.seal()
    spool.append(_record(2))
    second = spool.seal()
    assert first is not None and second is not None
    spool.drop(first)
    assert spool.sealed() == [second]
    spool.close()

    reopened = Spool(tmp_path / "spool")
    assert reopened.sealed() == [second]
    assert _everything(reopened) == [_record(2)]
    reopened.close()


def test_reopen_treats_the_active_segment_as_sealed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_record(1))
    spool.append(_record(2))
    spool.close()

    reopened = Spool(tmp_path)
    [left_active] = reopened.sealed()
    assert list(reopened.read(left_active)) == [_record(1), _record(2)]
    reopened.append(_record(3))
    assert reopened.seal() == left_active + 1
    assert _everything(reopened) == [_record(1), _record(2), _record(3)]
    reopened.close()


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 20])
def test_a_torn_last_record_is_skipped(tmp_path: Path, cut: int) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append([f"event-{i}".encode() * 3])
    spool.close()
    [segment_file] = tmp_path.glob("*.spool")
    size = segment_file.stat().st_size
    with segment_file.open("r+b") as handle:
        handle.truncate(size - cut)

    reopened = Spool(tmp_path)
    [segment] = reopened.sealed()
    assert list(reopened.read(segment)) == [[b"event-0" * 3], [b"event-1" * 3]]
    reopened.close()


def test_a_corrupt_last_record_and_trailing_garbage_are_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([b"kept"])
    spool.append([b"flipped"])
    spool.close()
    [segment_file] = tmp_path.glob("*.spool")
    data = bytearray(segment_file.read_bytes())
    data[-1] ^= 0xFF
    segment_file.write_bytes(bytes(data) + b"\xff\xff\xff\x7f garbage")

    reopened = Spool(tmp_path)
    assert _everything(reopened) == [[b"kept"]]
    reopened.close()


def test_a_spool_in_use_cannot_be_opened_twice(spool: Spool, tmp_path: Path) -> None:
    with pytest.raises(SpoolLocked, match="in use by another process"):
        Spool(tmp_path / "spool")
    spool.close()
    spool.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        spool.append(_record(1))
    Spool(tmp_path / "spool").close()  # free again once closed


def test_concurrent_appends_stay_whole(spool: Spool) -> None:
    def writer(n: int) -> None:
        for i in range(100):
            spool.append([f"{n}:{i}".encode() * 50])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spool.seal()
    records = _everything(spool)
    assert sorted(records) == sorted(
        [[f"{n}:{i}".encode() * 50] for n in range(4) for i in range(100)]
    )


_APPEND_THEN_WAIT = """
import sys, time
from pathlib import Path
from connectors.spool import Spool

spool = Spool(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    spool.append([b'{"n":%d}' % i, b'{"n":"second"}'])
    print(i, flush=True)
time.sleep(3600)
"""


def test_an_appended_record_survives_sigkill(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _APPEND_THEN_WAIT, str(tmp_path), "20"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        acknowledged = [int(writer.stdout.readline()) for _ in range(20)]
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        writer.kill()
        writer.wait()

    reopened = Spool(tmp_path)  # the dead writer's lock is gone with it
    assert _everything(reopened) == [[b'{"n":%d}' % i, b'{"n":"second"}'] for i in acknowledged]
    reopened.close()
