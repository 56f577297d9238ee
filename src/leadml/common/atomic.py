"""What a kill leaves on disk: the previous file or the new one, and no debris.

- :func:`replacing` / :func:`write_atomic`: a file is written under a hidden staging name in
  its own folder, flushed to disk, then renamed over the final name (``os.replace``, atomic on
  one file system). A reader, or a ``kill -9`` at any instant, sees the previous file or the new
  one, never half of either. The staging name carries the writer's pid, so the staging file of a
  killed writer is removed by the next write of the same file. A path that is a symbolic link
  is written where the link leads (the staging file beside that final target), and the link
  stays a link.
- :func:`new_dir`: a staging folder (like :func:`tempfile.mkdtemp`) for writers that swap whole
  folders in.
- :func:`scratch_dir`: a private working folder in the system's temporary folder, named
  ``leadml-<kind>-<pid>-*``; the folders of processes that are gone (killed before they could
  clean up) are removed whenever a new one is made, or by :func:`sweep_scratch`.

Files and folders that stay behind get the modes an ordinary ``open`` or ``mkdir`` gives (0666
and 0777 less the umask: 0644 and 0755 under the usual 022), not the private 0600 and 0700 of
:mod:`tempfile`: a BI tool running as another user must be able to read the scores. A file that
is replaced keeps its permission bits (a shared 0664 stays 0664, a read-only 0444 stays 0444 and
is replaced, as ``sed -i`` does); its owner and group become the writer's.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_STAGING = re.compile(r"\.tmp-(\d+)-[0-9a-f]+-")
_SCRATCH = re.compile(r"leadml-[a-z]+-(\d+)-")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would signal it there
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _windows_process_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # access denied: it exists, another user's
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _staging_path(path: Path) -> Path:
    # Hidden (Parquet readers skip it), ending in the final name (formats inferred from the
    # suffix, such as .csv.gz, still are), with the pid (see _sweep).
    return path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


def _sweep(path: Path) -> None:
    """Remove staging files of ``path`` left by writers that were killed."""
    pattern = str(path.with_name(f".tmp-*-{glob.escape(path.name)}"))
    for found in glob.glob(pattern):
        staged = Path(found)
        match = _STAGING.match(staged.name)
        if match and staged.name.endswith(path.name) and not process_alive(int(match[1])):
            with contextlib.suppress(OSError):
                staged.unlink()


def _keep_mode(path: Path, staging: Path) -> None:
    """Give ``staging`` the permission bits of the file ``path`` it replaces, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return  # a new file: the umask's mode
    os.chmod(staging, mode)


def fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A staging path to write ``path``'s new content to; put in place when the block ends.

    The staging file exists (empty, with the umask's mode) when the block starts; anything
    that writes to a path may (re)write it. If the block raises, the staging file is removed
    and ``path`` is untouched. The final folder must exist. If ``path`` is a symbolic link, the
    file it leads to is replaced and the link stays; a replaced file keeps its permission bits.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "scores.csv"
    >>> with replacing(target) as staging:
    ...     _ = staging.write_text("lead_id\\nL1\\n")
    ...     target.exists()  # not yet: readers see the previous file (here, none)
    False
    >>> target.read_text()
    'lead_id\\nL1\\n'
    """
    # Through a symlink (or a chain of them) to its final target: renaming over the link itself
    # would cut it, leaving the target with the old content. Beside the target, the rename stays
    # on one file system.
    path = Path(os.path.realpath(path))
    _sweep(path)
    while True:
        staging = _staging_path(path)
        try:
            os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield staging
        fsync(staging)
        _keep_mode(path, staging)
        os.replace(staging, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    with contextlib.suppress(OSError):  # durability of the rename; not all file systems allow it
        fsync(path.parent)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one existing file (through relative paths, symbolic links or
    hard links); False when either does not exist. Lets a writer refuse to overwrite its input."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(staging_path)`` and put what it wrote in place of ``path`` atomically
    (see :func:`replacing`). Returns ``path``."""
    with replacing(path) as staging:
        write(staging)
    return Path(path)


def new_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><random>`` (like :func:`tempfile.mkdtemp`, but with
    the mode an ordinary ``mkdir`` gives, since it may become the final folder)."""
    while True:
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue


def sweep_scratch(folder: str | os.PathLike | None = None) -> list[Path]:
    """Remove the scratch folders (:func:`scratch_dir`) of this user's processes that are gone.

    Folders of live processes, of other users and without a pid in their name are left alone.
    Returns the folders removed.
    """
    folder = Path(folder or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for path in folder.glob("leadml-*-*"):
            match = _SCRATCH.match(path.name)
            if not match or int(match[1]) == os.getpid() or process_alive(int(match[1])):
                continue
            try:
                mine = not hasattr(os, "getuid") or path.stat().st_uid == os.getuid()  # Windows:
                if not path.is_dir() or path.is_symlink() or not mine:  # a temp folder per user
                    continue
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A private working folder ``leadml-<kind>-<pid>-*`` in the temporary folder, removed when
    the block ends; those of processes that died without removing theirs are removed first."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"kind must be lowercase letters, not {kind!r}")
    sweep_scratch()
    with tempfile.TemporaryDirectory(prefix=f"leadml-{kind}-{os.getpid()}-") as folder:
        yield Path(folder)
