"""The journal's files on disk: spill files, where records wait in order while Redis cannot take
them, and dead-letter files, where records Redis refused for good are kept.

Each writer (one per process) appends to its own `spill-<pid>-<start>.jsonl` under
`var_dir/journal/` and holds an exclusive `flock` on it while it lives. A file nobody holds is an
orphan of a process that stopped before it could replay: the next writer to start adopts it and
replays it first. A spill file belongs to one Redis: its first line is `{"owner": <store>}` (the
Redis URL without its password), and an orphan spilled for another Redis is left in place with a
warning, never replayed into the wrong store (a file without that line predates it and is
adopted). Then one line per record: `{"t": <write token>, "r": <record>}`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from typing import IO

import orjson

_OWNER_PREFIX = b'{"owner":'
_OWNER_LINE_MAX = 4096


def owner_line(store: str) -> bytes:
    return orjson.dumps({"owner": store}) + b"\n"


class SpillFile:
    """One append-only file with a read cursor; `pending` lines are those not yet replayed."""

    def __init__(self, path: Path, handle: IO[bytes], owner: str | None, header: int) -> None:
        self.path = path
        self._handle = handle
        #: The store this file's records were spilled for (None: a file older than owners).
        self.owner = owner
        self._header = header
        self._offset = header

    @classmethod
    def claim(cls, path: Path, *, create: bool, owner: str = "") -> SpillFile | None:
        """Open and lock `path`; None when another live process holds it (or it is gone). A
        file made here starts with `owner`'s line; an existing one's owner is read from it."""
        try:
            handle = path.open("a+b" if create else "r+b")
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        if create and os.fstat(handle.fileno()).st_size == 0:
            os.write(handle.fileno(), owner_line(owner))
        handle.seek(0)
        first = handle.readline(_OWNER_LINE_MAX)
        if first.startswith(_OWNER_PREFIX) and first.endswith(b"\n"):
            try:
                return cls(path, handle, str(orjson.loads(first)["owner"]), len(first))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass
        return cls(path, handle, None, 0)

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

    @property
    def records(self) -> int:
        """Complete record lines after the cursor (for the log lines that mention a file)."""
        self._handle.seek(self._offset)
        return sum(1 for line in self._handle if line.endswith(b"\n"))

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
        """Everything was replayed: start the file over (after its owner line)."""
        self._handle.truncate(self._header)
        self._handle.flush()
        self._offset = self._header

    def skip_line(self) -> bytes:
        """Move the cursor past the next line (one that cannot be read as a record)."""
        self._handle.seek(self._offset)
        line = self._handle.readline()
        self.advance(self._offset + len(line))
        return line

    def close(self, *, remove: bool) -> None:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()


class SpillDirectory:
    """This process's spill file plus the orphans it adopted, oldest first. `foreign` lists the
    orphans left in place because they were spilled for another store."""

    def __init__(self, directory: Path, store: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"spill-{os.getpid()}-{time.time_ns()}.jsonl"
        own = SpillFile.claim(directory / name, create=True, owner=store)
        assert own is not None, "a freshly named spill file cannot be held by anyone else"
        self.own = own
        candidates = []
        for path in directory.glob("spill-*.jsonl"):
            if path.name == name:
                continue
            with contextlib.suppress(FileNotFoundError):
                candidates.append((path.stat().st_mtime, path))
        self.orphans: list[SpillFile] = []
        self.foreign: list[tuple[Path, str]] = []
        for _, path in sorted(candidates):
            orphan = SpillFile.claim(path, create=False)
            if orphan is None:
                continue
            if orphan.owner is not None and orphan.owner != store:
                self.foreign.append((path, orphan.owner))
                orphan.close(remove=False)
                continue
            self.orphans.append(orphan)

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


class DeadLetterFile:
    """`dead-<pid>-<start>.jsonl` beside the spill files: records Redis refused even alone, one
    `{"t": token, "error": why, "r": record}` line each (or `"line"`: a spill line that could
    not be read). Opened on first use; an operator inspects or replays it by hand."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"dead-{os.getpid()}-{time.time_ns()}.jsonl"
        self._fd: int | None = None

    def keep(self, token: str, why: str, payload: bytes) -> None:
        """A record's JSON as it was refused, with its write token and Redis's reason."""
        head = b'{"t":' + orjson.dumps(token) + b',"error":' + orjson.dumps(why) + b',"r":'
        self._append(head + payload + b"}\n")

    def keep_line(self, line: bytes, why: str) -> None:
        """A spill line that is not a record, kept as (escaped) text."""
        text = line.decode("utf-8", "backslashreplace")
        self._append(orjson.dumps({"error": why, "line": text}) + b"\n")

    def _append(self, line: bytes) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        written = os.write(self._fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, "short write to the dead-letter file")

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
