"""leadml on Windows, as far as this Linux machine can tell: every module imports without a
POSIX-only module, and the partition lock's Windows path (a byte-range lock through ``msvcrt``,
the file removed after the lock is let go) holds and frees the lock. Run in a fresh interpreter
with ``fcntl`` unavailable to leadml, the lock module imported as on Windows, and ``msvcrt``
played by a stand-in that refuses a second lock as Windows does. (Nothing here runs on a real
Windows machine: this checks the code paths, not Windows itself.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import errno, fcntl, importlib, os, pkgutil, sys, tempfile, types
    from pathlib import Path

    # What leadml imports from elsewhere is loaded first, as on any machine.
    import duckdb, matplotlib, mlflow, numpy, pandas, pyarrow, sklearn, skops, typer  # noqa

    locks = {}

    def locking(fd, mode, nbytes):  # msvcrt.locking: a second lock of the file is refused
        if mode == msvcrt.LK_UNLCK:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(errno.EACCES, "Permission denied") from None

    msvcrt = types.SimpleNamespace(LK_NBLCK=2, LK_UNLCK=0, locking=locking)
    sys.modules["msvcrt"] = msvcrt
    sys.modules["fcntl"] = None  # `import fcntl` now fails, as on Windows
    # The lock chooses its kind when imported; the rest of Python must go on believing it is
    # on Linux (pathlib would refuse to make paths).
    os.name = "nt"
    import leadml.common.locks
    os.name = "posix"

    import leadml
    skip = ("leadml.__main__", "leadml.tracking.pyfunc_model")  # run, not imported
    found = pkgutil.walk_packages(leadml.__path__, "leadml.")
    names = [m.name for m in found if m.name not in skip]
    for name in names:
        importlib.import_module(name)
    print("imported", len(names))

    from leadml.common.locks import LockHeld, exclusive
    lock = Path(tempfile.mkdtemp()) / ".as_of=2026-06-30.lock"
    with exclusive(lock, "pid 1 on host"):
        try:
            with exclusive(lock, "pid 2 on host"):
                print("both held")
        except LockHeld as held:
            print("refused, held by", held.holder)
    with exclusive(lock, "pid 3 on host"):
        print("taken again")
    print("left behind:", lock.exists())
    """
)


def test_every_module_imports_and_the_lock_works_without_posix_modules():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("imported ") and int(lines[0].split()[1]) > 100
    assert lines[1:] == ["refused, held by pid 1 on host", "taken again", "left behind: False"]
