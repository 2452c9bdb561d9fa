"""Writing files safely: the one save routine every output of the library goes through.

`atomic_write` writes to a temporary file beside the destination and renames it into place,
so a reader (or a crash, a full disk, Ctrl-C, ``kill``) never sees a half-written file: the
old file stays intact until the new one is complete. `check_destination` runs the same checks
up front, so that a command can refuse a bad output path *before* a long computation, and
`same_file` tells whether an output would replace one of the inputs.

Read next: checkpoint.py (the model format written through `atomic_write`).
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Callable

__all__ = ["OutputError", "atomic_write", "check_destination", "same_file"]

# The temporary name is "." + name + "." + 8 random hex digits + ".tmp" (name shortened to fit).
_TEMP_EXTRA = len("..") + 8 + len(".tmp")


class OutputError(OSError):
    """An output path that cannot (or must not) be written; the message names it and why."""


def _target(path: Path) -> Path:
    """Where writing ``path`` lands: through a symlink, its target (the link stays a link)."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):  # pathconf is not available everywhere
        return 255


def check_destination(path: str | os.PathLike) -> Path:
    """Raise `OutputError` unless ``path`` can be written by `atomic_write`; return the file
    that will actually be written (the target of a symlink).

    Checked: the folder exists and is writable, the name fits the file system's limit, and
    anything already at ``path`` is a regular file (a folder, FIFO or device is never replaced).
    """
    path = Path(path)
    target = _target(path)
    directory = target.parent
    if not directory.is_dir():
        raise OutputError(f"cannot write {path}: folder {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: folder {directory} is not writable")
    limit = _name_max(directory)
    if len(os.fsencode(target.name)) > limit:
        raise OutputError(f"cannot write {path}: the name is longer than this file system's "
                          f"limit of {limit} bytes")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {path}: it is a folder")
    if not stat.S_ISREG(mode):
        raise OutputError(f"cannot write {path}: it exists and is not a regular file "
                          "(a FIFO, socket or device is never replaced)")
    return target


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """True when the two paths name the same file (another spelling, a symlink, a hard link)."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one does not exist: compare where they would point
        return os.path.realpath(first) == os.path.realpath(second)


def _temporary_name(target: Path) -> Path:
    keep = max(1, _name_max(target.parent) - _TEMP_EXTRA)
    name = os.fsencode(target.name)[:keep].decode(errors="ignore") or "out"
    return target.parent / f".{name}.{secrets.token_hex(4)}.tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    The new file keeps the permission bits of the file it replaces (a new file gets the usual
    ``0666 & ~umask``). On any failure or interruption (including ``KeyboardInterrupt`` and the
    exception the CLI raises on SIGTERM) the temporary file is removed and the old file, if
    any, is left as it was. Raises `OutputError` (one line naming ``path``) when the
    destination is unusable or the write fails, e.g. when the disk is full.
    """
    path = Path(path)
    target = check_destination(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    temporary = _temporary_name(target)
    created = False
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
        created = False
    except OSError as error:
        if isinstance(error, OutputError):
            raise
        reason = "no space left on device" if error.errno == errno.ENOSPC else error.strerror
        raise OutputError(f"cannot write {path}: {reason or error}; nothing was changed") \
            from None
    finally:
        if created:
            try:
                os.unlink(temporary)
            except OSError:
                pass
