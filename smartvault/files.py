"""The one way SmartVault reads a file a person gave it: policy files and saved plans.

Guarantees, whatever the path names:

- only a regular file is read; a FIFO, a device, a socket, a folder or a link to one
  is refused without being read, and a FIFO never blocks (the type is checked before
  opening, the file is opened with ``O_NONBLOCK``, and checked again on the open
  descriptor, so a link swapped in between changes nothing);
- at most :data:`MAX_FILE_BYTES` are read: the size is checked on the open descriptor
  and at most one byte more is read, so a file that grows while being read is refused
  too;
- every refusal is a :class:`FileRefused` that says which file, what is wrong and what
  to do, never an ``OSError`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

import errno
import os
import stat

from smartvault.errors import Problem
from smartvault.errors import SmartVaultError

__all__ = ["MAX_FILE_BYTES", "FileRefused", "os_error_message", "read_text"]

#: 1 MiB: ten times the largest policy file we have seen, and cheap to validate.
MAX_FILE_BYTES = 1024 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class FileRefused(SmartVaultError):
    """A file SmartVault will not read; :attr:`problem` locates it (line 0: the whole file)."""

    def __init__(self, shown: str, message: str, line: int = 0, column: int = 0) -> None:
        self.problem = Problem(shown, line, column, message)
        super().__init__(str(self.problem))


def os_error_message(exc: OSError) -> str:
    """What an operator should read when opening or inspecting a path failed."""
    if exc.errno == errno.ELOOP:
        return (
            "a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        )
    if exc.errno == errno.ENOENT:
        return "cannot read the file: No such file or directory"
    return f"cannot read the file: {exc.strerror or exc}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"  # pragma: no cover - every other kind is named above


def _not_regular(path: str, shown: str, mode: int) -> FileRefused:
    what = _kind(mode)
    if os.path.islink(path):
        what = f"a link to {what} ({os.path.realpath(path)})"
    return FileRefused(
        shown,
        f"{what}, not a regular file; SmartVault reads only regular files: "
        "replace it with the file itself, or move it away",
    )


def _too_large(shown: str, size: int | None, limit: int, advice: str) -> FileRefused:
    how_big = f" ({size:,} bytes)" if size is not None else ""
    return FileRefused(
        shown,
        f"the file is larger than {_size(limit)}{how_big}, the most SmartVault reads "
        f"from one file; {advice}",
    )


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit:,} bytes"


def read_bytes(
    path: str | os.PathLike[str],
    shown: str | None = None,
    *,
    limit: int = MAX_FILE_BYTES,
    too_large: str = "split it into smaller files",
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    ``shown`` names the file in messages (default: ``path`` as given); ``too_large``
    says what to do about a file over the limit.
    """
    name = os.fspath(path)
    shown = name if shown is None else shown
    try:
        # Look before opening: opening a device or a FIFO can have effects of its own.
        before = os.stat(name)
        if not stat.S_ISREG(before.st_mode):
            raise _not_regular(name, shown, before.st_mode)
        descriptor = os.open(name, _OPEN_FLAGS)
    except OSError as exc:
        raise FileRefused(shown, os_error_message(exc)) from exc
    with open(descriptor, "rb") as file:  # closes the descriptor
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):  # swapped after the first look
            raise _not_regular(name, shown, opened.st_mode)
        if opened.st_size > limit:
            raise _too_large(shown, opened.st_size, limit, too_large)
        try:
            data = file.read(limit + 1)
        except OSError as exc:
            raise FileRefused(shown, os_error_message(exc)) from exc
    if len(data) > limit:  # it grew after fstat
        raise _too_large(shown, None, limit, too_large)
    return data


def read_text(
    path: str | os.PathLike[str],
    shown: str | None = None,
    *,
    limit: int = MAX_FILE_BYTES,
    too_large: str = "split it into smaller files",
) -> str:
    """The UTF-8 text of the regular file at ``path`` (see :func:`read_bytes`).

    A UTF-8 byte order mark is dropped. Bytes that are not UTF-8 are refused with the
    line and column of the first one.
    """
    shown = os.fspath(path) if shown is None else shown
    return decode_text(read_bytes(path, shown, limit=limit, too_large=too_large), shown)


def decode_text(data: bytes, shown: str) -> str:
    """``data`` as UTF-8 text, a byte order mark dropped; bytes that are not UTF-8 are
    refused (:class:`FileRefused`) with the line and column of the first one."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise FileRefused(
            shown,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            line,
            column,
        ) from None
