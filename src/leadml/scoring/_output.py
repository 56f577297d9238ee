"""Writing a night's scores: one partition per as-of date, replaced atomically, under a lock.

Layout of the output folder::

    out/
      as_of=2026-06-29/
        part-0.parquet      the scores (one row per open lead)
        _scores.csv         the same, on request (--csv)
        _summary.json       the run summary
        _summary.md         the same for people
      .as_of=2026-06-29.lock  while a run writes that night (removed when it ends)

Files starting with ``_`` or ``.`` are skipped by Parquet readers, so ``pd.read_parquet("out")``
or DuckDB's ``read_parquet('out/*/*.parquet', hive_partitioning = true)`` read every night's
scores and nothing else.

A run writes into a hidden staging folder next to the partition and then swaps it in with one
``renameat2(RENAME_EXCHANGE)`` (Linux), or two renames elsewhere; a reader sees the old partition
or the new one, never a mix, and a run that fails before the swap leaves the old one untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from leadml.common.atomic import fsync, new_dir
from leadml.common.locks import LockHeld, exclusive
from leadml.errors import OutputError, OutputLockedError

log = logging.getLogger("leadml.scoring")

PARQUET_FILE, CSV_FILE, SUMMARY_JSON, SUMMARY_MD = (
    "part-0.parquet",
    "_scores.csv",
    "_summary.json",
    "_summary.md",
)


def partition_name(as_of: pd.Timestamp) -> str:
    """``as_of=YYYY-MM-DD`` (the UTC date of the instant)."""
    return f"as_of={pd.Timestamp(as_of).tz_convert('UTC'):%Y-%m-%d}"


@contextlib.contextmanager
def partition_lock(out: Path, name: str) -> Iterator[Path]:
    """Hold the lock of partition ``name`` in ``out`` for the duration of a block:
    ``out/.<name>.lock``, freed by the system when its holder exits however it exits, and
    removed when the run ends (:func:`leadml.common.locks.exclusive`). The file names the holder,
    for the message the next run gives.

    Raises
    ------
    OutputLockedError
        Another process (or another open of the file) holds the lock.
    OutputError
        The output folder or its lock cannot be created.
    """
    started = datetime.now(UTC).isoformat(timespec="seconds")
    note = f"pid {os.getpid()} on {socket.gethostname()}, since {started}"
    with contextlib.ExitStack() as held_while:
        try:
            out.mkdir(parents=True, exist_ok=True)
            path = held_while.enter_context(exclusive(out / f".{name}.lock", note))
        except LockHeld as held:
            raise OutputLockedError(
                f"{out / name} is being written by another leadml run ({held.holder}); this run "
                f"wrote nothing. Wait for that run to finish (the lock frees itself when its "
                f"process ends) and run again."
            ) from None
        except OSError as exc:
            raise OutputError(
                f"cannot create the output folder or its lock in {out}: {exc}"
            ) from None
        yield path


def recover(out: Path, name: str) -> None:
    """Tidy what an interrupted run left (call under the partition's lock).

    Staging folders of a run that died before its swap are removed. If a run died between the
    two renames of the fallback swap, the partition is missing and its previous content waits
    in ``.<name>.old-*``: it is put back.
    """
    target = out / name
    for old in sorted(out.glob(f".{name}.old-*")):
        if not target.exists() and (old / "partition").is_dir():
            os.rename(old / "partition", target)
            log.warning("restored %s, left aside by an interrupted run", target)
        shutil.rmtree(old, ignore_errors=True)
    for staging in out.glob(f".{name}.tmp-*"):
        shutil.rmtree(staging, ignore_errors=True)


def write_partition(out: Path, name: str, writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Write the files of partition ``name`` (file name -> function writing it) and swap them
    in atomically; on any failure the previous partition stays as it was.

    Call under :func:`partition_lock`.
    """
    target = out / name
    try:
        staging = new_dir(out, f".{name}.tmp-")
    except OSError as exc:
        raise OutputError(f"cannot write in {out}: {exc}") from None
    try:
        for filename, write in writers.items():
            write(staging / filename)
        for path in staging.iterdir():
            fsync(path)
        fsync(staging)
        _swap(staging, target)
        fsync(out)
    except OSError as exc:
        raise OutputError(f"writing {target} failed ({exc}); the previous partition, if any, "
                          "is untouched") from None  # fmt: skip
    finally:
        # After an exchange the staging folder holds the previous partition; after a failure,
        # the half-written new one. Either way it goes.
        shutil.rmtree(staging, ignore_errors=True)
    return target


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2; False where it is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    renameat2.restype = ctypes.c_int
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target``; afterwards ``staging`` holds what was there."""
    if not target.exists():
        os.rename(staging, target)
        staging.mkdir()  # so the caller's clean-up has something to remove
        return
    if _exchange(staging, target):
        return
    # Two renames: a crash in between leaves the old partition in .old-*, which recover() puts
    # back on the next run.
    aside = new_dir(target.parent, f".{target.name}.old-")
    os.rename(target, aside / "partition")
    os.rename(staging, target)
    os.rename(aside / "partition", staging)
    aside.rmdir()
