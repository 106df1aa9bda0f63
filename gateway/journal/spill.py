"""The journal's spill files: where records wait, in order, while Redis cannot take them.

Each writer (one per process) appends to its own `spill-<pid>-<start>.jsonl` under
`var_dir/journal/` and holds an exclusive `flock` on it while it lives. A file nobody holds is an
orphan of a process that stopped before it could replay: the next writer to start adopts it and
replays it first. One line per record: `{"t": <write token>, "r": <record>}`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from typing import IO


class SpillFile:
    """One append-only file with a read cursor; `pending` lines are those not yet replayed."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle = handle
        self._offset = 0

    @classmethod
    def claim(cls, path: Path, *, create: bool) -> SpillFile | None:
        """Open and lock `path`; None when another live process holds it (or it is gone)."""
        try:
            handle = path.open("a+b" if create else "r+b")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return cls(path, handle)

    def append(self, lines: list[bytes]) -> None:
        """Append lines, all or none (the OS has them: a crash of this process keeps them).

        Written straight to the descriptor, not through the read buffer, so a failed write
        leaves nothing behind to be flushed later; a partial write is cut back off."""
        data = b"".join(lines)
        fd = self._handle.fileno()
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        if written != len(data):
            os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, "short write to the spill file")

    def sync(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._handle.fileno())

    @property
    def pending(self) -> bool:
        return os.fstat(self._handle.fileno()).st_size > self._offset

    def read(self, limit: int) -> tuple[list[bytes], int]:
        """Up to `limit` complete lines after the cursor, and the cursor after them."""
        self._handle.seek(self._offset)
        lines: list[bytes] = []
        offset = self._offset
        while len(lines) < limit:
            line = self._handle.readline()
            if not line.endswith(b"\n"):
                break  # end of file, or a line cut by a crash mid-write: stop before it
            lines.append(line)
            offset += len(line)
        return lines, offset

    def advance(self, offset: int) -> None:
        self._offset = offset
        if not self.pending:
            self.reset()

    def reset(self) -> None:
        """Everything was replayed: start the file over."""
        self._handle.truncate(0)
        self._handle.flush()
        self._offset = 0

    def close(self, *, remove: bool) -> None:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()


class SpillDirectory:
    """This process's spill file plus the orphans it adopted, oldest first."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"spill-{os.getpid()}-{time.time_ns()}.jsonl"
        own = SpillFile.claim(directory / name, create=True)
        assert own is not None, "a freshly named spill file cannot be held by anyone else"
        self.own = own
        orphans = sorted(
            (p for p in directory.glob("spill-*.jsonl") if p.name != name),
            key=lambda p: p.stat().st_mtime,
        )
        self.orphans = [f for f in (SpillFile.claim(p, create=False) for p in orphans) if f]

    def next_pending(self) -> SpillFile | None:
        """The file to replay from now: adopted orphans (then deleted) before our own."""
        while self.orphans:
            if self.orphans[0].pending:
                return self.orphans[0]
            self.orphans.pop(0).close(remove=True)
        return self.own if self.own.pending else None

    @property
    def pending(self) -> bool:
        return any(f.pending for f in self.orphans) or self.own.pending

    def close(self) -> None:
        for orphan in self.orphans:
            orphan.close(remove=not orphan.pending)
        self.own.sync()
        self.own.close(remove=not self.own.pending)
