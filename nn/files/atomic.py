"""Atomic writes: a file is either its previous version or the complete new one.

:func:`write_atomically` (model files, checkpoints, ``chainrule predict``) writes to
a temporary file in the target's directory, named
``.<name>.<pid>.<random>.tmp`` (hidden, obviously temporary, and carrying the id of the
writing process), flushes and fsyncs it, and moves it over the target with ``os.replace``,
which is atomic: the target is always either the previous model or the new one. An
exception while writing removes the temporary file. A process killed outright (SIGKILL,
power loss) cannot clean up, so its temporary file stays behind; it is harmless (it is
never read) and the next write to the same path removes every such file whose
writing process no longer runs (see :func:`remove_stale_temporaries`). Temporary files of
running processes, including concurrent saves, are left alone. The liveness check uses
process ids of this host (POSIX only); elsewhere no temporary file is removed.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a new file next to ``path``, fsync it, then ``os.replace`` it.

    Readers of ``path`` see the old file or the complete new one, never a part; if ``write``
    raises, the temporary file is removed and ``path`` is left as it was. Temporaries that
    killed writers left behind are removed first (see the module documentation).
    """
    path = Path(path)
    directory = path.parent
    remove_stale_temporaries(path)
    while True:
        tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:  # O_EXCL: never follow or reuse an existing name; 0o666 & ~umask as a new file
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        try:  # keep the permissions of the file being replaced
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed saves to ``path`` left behind.

    Those are the files ``.<name>.<pid>.<random>.tmp`` next to ``path`` whose process ``pid``
    no longer runs on this host. :func:`write_atomically` calls this first. On systems without
    POSIX process ids nothing is removed.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = as_path(path)
    if os.name != "posix":
        return []
    pattern = re.compile(re.escape(f".{path.name}.") + r"([0-9]+)\.[0-9a-f]{8}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists under another user, or we cannot tell: keep its file
    return True


def as_path(path: object) -> Path:
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise TypeError(
            "Received an invalid value for `path`, expected a str or os.PathLike. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    fspath = os.fspath(path)
    if not isinstance(fspath, str) or not fspath:
        raise TypeError(
            f"Received an invalid value for `path`, expected a file name. Received: {path!r}"
        )
    return Path(fspath)
