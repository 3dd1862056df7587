"""A write-ahead spool: accepted events on disk before the API answers 202.

The embedded broker keeps data only in memory, so the spool is what makes an
accepted request survive SIGKILL. Each record is the events of one request,
appended and fsynced; on the next start every record of every segment is replayed
into the broker. Replaying too much is harmless (the store dedups by event_id),
losing is not, so a segment is dropped only once the caller knows its events are
stored.

On disk: ``<id>.spool`` segment files, each a sequence of records framed as
``u32 payload length | u32 CRC32 of payload | payload``, the payload being
``u32 event count`` then ``u32 length | bytes`` per event (little endian). A crash
mid-append leaves at most a torn last record, which the CRC exposes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

_SUFFIX: Final = ".spool"
_U32: Final = struct.Struct("<I")
_HEADER: Final = struct.Struct("<II")

_LOCK_NAME: Final = "lock"

log = logging.getLogger(__name__)


class SpoolLocked(RuntimeError):
    """Another process has the spool directory open."""


class Spool:
    """Segments of durable records; ``append`` from one thread at a time."""

    def __init__(self, directory: Path, segment_bytes: int = 64 * 1024 * 1024) -> None:
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, not {segment_bytes}")
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        _make_durable_directory(directory)
        self._lock_fd = _lock_directory(directory)
        # Whatever a previous process left, including its active segment, is sealed:
        # new records never follow a possibly torn tail.
        self._sealed = sorted(_segment_ids(directory))
        self._next_id = self._sealed[-1] + 1 if self._sealed else 1
        self._active_id: int | None = None
        self._active_fd: int | None = None
        self._active_size = 0
        self._closed = False

    def append(self, events: Sequence[bytes]) -> None:
        """Append one record holding ``events``; it is on disk (fsynced) when this returns."""
        record = _frame(events)
        with self._lock:
            if self._closed:
                raise ValueError("the spool is closed")
            if self._active_fd is not None and (
                self._active_size + len(record) > self._segment_bytes
            ):
                self._seal_active()
            fd = self._active_fd if self._active_fd is not None else self._open_segment()
            try:
                _write_all(fd, record)
                os.fsync(fd)
            except BaseException:
                # A failed write may leave a partial record, and after a failed fsync
                # the kernel may have dropped the dirty pages: nothing more may be
                # appended behind it, so the segment ends here (its tail is skipped).
                self._seal_active()
                raise
            self._active_size += len(record)

    def seal(self) -> int | None:
        """Close the active segment if it holds records and return its id, else None."""
        with self._lock:
            if self._active_fd is None:
                return None
            return self._seal_active()

    def sealed(self) -> list[int]:
        """Ids of the sealed segments, oldest first."""
        with self._lock:
            return list(self._sealed)

    def read(self, segment_id: int) -> Iterator[list[bytes]]:
        """The records of a sealed segment in order, each the list of its events.

        A torn or corrupt record ends the segment: it is logged and skipped, since a
        crash can only tear the last record and nothing after it can be trusted.
        """
        with self._lock:
            self._check_sealed(segment_id)
        return _records(self._path(segment_id))

    def drop(self, segment_id: int) -> None:
        """Delete a sealed segment, once all of its events are in the store."""
        with self._lock:
            self._check_sealed(segment_id)
            # No directory fsync: a drop undone by a crash only replays stored events.
            self._path(segment_id).unlink(missing_ok=True)
            self._sealed.remove(segment_id)

    def close(self) -> None:
        """Close the active segment; the next process treats it as sealed."""
        with self._lock:
            if self._closed:
                return
            if self._active_fd is not None:
                self._seal_active()
            self._closed = True
            # Closing the descriptor releases the lock (so does the process dying).
            os.close(self._lock_fd)

    def _check_sealed(self, segment_id: int) -> None:
        if segment_id == self._active_id:
            raise ValueError(f"segment {segment_id} is still active: seal() it first")
        if segment_id not in self._sealed:
            raise ValueError(f"no sealed segment {segment_id} in {self._directory}")

    def _open_segment(self) -> int:
        segment_id = self._next_id
        fd = os.open(
            self._path(segment_id),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
            0o644,
        )
        try:
            # The records are durable only once the file's name is, too.
            _fsync_directory(self._directory)
        except BaseException:
            os.close(fd)
            raise
        self._next_id += 1
        self._active_id, self._active_fd, self._active_size = segment_id, fd, 0
        return fd

    def _seal_active(self) -> int:
        assert self._active_id is not None and self._active_fd is not None
        segment_id, fd = self._active_id, self._active_fd
        self._active_id, self._active_fd, self._active_size = None, None, 0
        self._sealed.append(segment_id)
        os.close(fd)
        return segment_id

    def _path(self, segment_id: int) -> Path:
        return self._directory / f"{segment_id:012d}{_SUFFIX}"


def _frame(events: Sequence[bytes]) -> bytes:
    parts = [_U32.pack(len(events))]
    for event in events:
        parts.append(_U32.pack(len(event)))
        parts.append(event)
    payload = b"".join(parts)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _records(path: Path) -> Iterator[list[bytes]]:
    with path.open("rb") as segment:
        yield from _read_records(segment, path)


def _read_records(segment: BinaryIO, path: Path) -> Iterator[list[bytes]]:
    size = os.fstat(segment.fileno()).st_size
    offset = 0
    while offset < size:
        header = segment.read(_HEADER.size)
        if len(header) < _HEADER.size:
            break
        length, crc = _HEADER.unpack(header)
        # A torn header can claim any length: never read past the end of the file.
        if length > size - offset - _HEADER.size:
            break
        payload = segment.read(length)
        events = _unframe(payload) if zlib.crc32(payload) == crc else None
        if events is None:
            break
        yield events
        offset += _HEADER.size + length
    if offset < size:
        log.warning(
            "spool segment %s: skipped %d bytes of a torn or corrupt record at offset %d",
            path,
            size - offset,
            offset,
        )


def _unframe(payload: bytes) -> list[bytes] | None:
    try:
        (count,) = _U32.unpack_from(payload)
        events = []
        position = _U32.size
        for _ in range(count):
            (length,) = _U32.unpack_from(payload, position)
            position += _U32.size
            events.append(payload[position : position + length])
            position += length
    except struct.error:
        return None
    return events if position == len(payload) else None


def _segment_ids(directory: Path) -> Iterator[int]:
    for path in directory.glob(f"*{_SUFFIX}"):
        with contextlib.suppress(ValueError):
            yield int(path.name.removesuffix(_SUFFIX))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _make_durable_directory(directory: Path) -> None:
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        _fsync_directory(path.parent)


def _lock_directory(directory: Path) -> int:
    # Two processes on one spool would seal and drop each other's segments.
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(
            f"the spool {directory} is in use by another process (a coldchain still "
            "running?); stop it or use another data directory"
        ) from None
    return fd


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
