"""An exclusive lock on a file that frees itself when its holder exits, however it exits, and
leaves no file behind: on Linux and macOS an advisory ``flock``, on Windows a byte-range lock
(``msvcrt.locking``).

The file carries a note naming its holder, for the message the next process gives. On POSIX
the holder removes the file while it still holds the lock, so a finished run leaves none; a
killed run leaves its file, which the next run takes over and removes. Because a process may
have opened the file just before its holder removed it, a process that gets the lock checks
that the file it locked is still the one under that name, and starts again if not: two
processes never both hold the lock of one path. Windows cannot remove an open file: there the
holder removes it just after letting go, which fails harmlessly if another process has opened
it meanwhile (it is then that process's file).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

_NOTE_BYTES = 500
_WINDOWS = os.name == "nt"

if _WINDOWS:  # pragma: no cover - exercised on Windows, simulated in tests/test_portable.py
    import msvcrt

    # Windows locks are mandatory: lock one byte far past the note, which stays readable.
    _LOCKED_BYTE = 1 << 30
    _HELD = (errno.EACCES, errno.EDEADLK)

    def _try_lock(fd: int) -> None:
        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        pass  # closing the descriptor releases the lock


class LockHeld(Exception):
    """Another process (or another open of the file) holds the lock; ``holder`` is its note."""

    def __init__(self, holder: str):
        self.holder = holder
        super().__init__(holder)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, note: str) -> Iterator[Path]:
    """Hold the lock of ``path`` for the duration of a block, with ``note`` in the file.

    Raises
    ------
    LockHeld
        Someone else holds it (its note in ``holder``).
    OSError
        The file cannot be created or locked for another reason.

    Examples
    --------
    >>> import tempfile
    >>> lock = Path(tempfile.mkdtemp()) / ".night.lock"
    >>> with exclusive(lock, "pid 1 on host"):
    ...     try:
    ...         with exclusive(lock, "pid 2 on host"):
    ...             pass
    ...     except LockHeld as held:
    ...         print("held by", held.holder)
    held by pid 1 on host
    >>> lock.exists()
    False
    """
    path = Path(path)
    while (fd := _acquire(path)) is None:
        pass
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, note.encode()[:_NOTE_BYTES])
        yield path
    finally:
        with contextlib.suppress(OSError):
            if _same_file(path, fd):
                os.unlink(path)  # while still holding the lock (POSIX): see the module's notes
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)
        if _WINDOWS:  # pragma: no cover
            with contextlib.suppress(OSError):
                os.unlink(path)


def _acquire(path: Path) -> int | None:
    """The descriptor of ``path``, locked; None if the file was removed or replaced while we
    waited for it (try again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _try_lock(fd)
    except OSError as exc:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = os.read(fd, _NOTE_BYTES).decode(errors="replace").strip() or "unknown holder"
        os.close(fd)
        if exc.errno in _HELD:
            raise LockHeld(holder) from None
        raise
    if not _same_file(path, fd):  # its holder removed it as we opened it: it guards nothing
        os.close(fd)
        return None
    return fd


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
