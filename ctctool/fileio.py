"""Every file ctctool writes goes through ``atomic_write``; every text file it reads, ``read_text``.

Writes land in a temporary file beside the target that is renamed over it at the end, so a
reader never sees half a file and a crash leaves the old file intact. The temporary name
carries the writer's process id: a later run removes the ones whose writer is gone
(``remove_stale_temp_files``), so killed runs leave no litter.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

from .errors import OutputError

TEMP_PREFIX = ".ctctool-tmp-"
_TEMP_PID = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")


def _reason(exc: BaseException, folder: str) -> str:
    """A short cause for a failed write. torch's zip writer reports a full disk as a RuntimeError
    ("unexpected pos ..."), so ask the file system how much room is left."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 16 << 20:  # under 16 MiB left: that is why
            return "no space left on device"
    return "the write failed"


def check_writable(path: str, what: str = "output") -> None:
    """Fail now, not after an hour of work, when ``path`` cannot be written as a file."""
    if os.path.isdir(path):
        raise OutputError(f"{path}: {what} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder for the {what} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: the folder {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK) and not os.access(folder, os.W_OK):
        raise OutputError(f"{path}: not writable")


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any failure the temporary file is removed and the error becomes an ``OutputError``
    naming ``path`` (a full disk reads "no space left on the device").
    """
    check_writable(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_reason(exc, folder)})") from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; our outputs are ordinary files
    try:
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding=encoding if text else None, newline="\n" if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if _is_write_failure(exc):
            raise OutputError(f"{path}: cannot write ({_reason(exc, folder)})") from None
        raise


def _is_write_failure(exc: BaseException) -> bool:
    """An OSError, or torch's zip writer reporting one as a RuntimeError; other errors from the
    code that produces the content pass through unchanged."""
    if isinstance(exc, OutputError):
        return False
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, RuntimeError) and any(
        word in str(exc) for word in ("file write failed", "inline_container", "PytorchStreamWriter"))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(*folders: str) -> int:
    """Remove temporary files left by killed ctctool processes in ``folders``; returns how many."""
    removed = 0
    for folder in {os.path.abspath(f) for f in folders if f}:
        for tmp in glob.glob(os.path.join(glob.escape(folder), TEMP_PREFIX + "*")):
            match = _TEMP_PID.match(os.path.basename(tmp))
            if match and not _pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                    removed += 1
    return removed


def read_text(path: str, what: str) -> str:
    """A UTF-8 text file (a byte-order mark is dropped, CRLF works); errors name the file."""
    from .errors import InputFileError

    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: {what} is a folder, expected a text file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: {what} is not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
