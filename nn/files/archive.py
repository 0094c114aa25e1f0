"""The archive under model files: a zip of ``.npy`` members, written and read defensively.

Writing stores every array uncompressed through :func:`~nn.files.atomic.write_atomically`.
Reading trusts nothing in the bytes: the end record is checked before ``zipfile`` parses the
directory, every read is capped at the file's real size, members must be flat, stored,
unencrypted names of plain characters lying inside the file, and each ``.npy`` header is
compared with the dtype and shape the caller expects before any data is read (never with
``allow_pickle``). Every defect raises :class:`ModelFileError` naming the file.
"""

from __future__ import annotations

import math
import os
import re
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nn.files.atomic import as_path, write_atomically

MAX_MEMBERS = 16384
#: The names of members (without ``.npy``) and of state arrays: no path separators.
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


class ModelFileError(ValueError):
    """A model file is unreadable, damaged, foreign or inconsistent with its description.

    The message names the file and the reason. Raised by :func:`load` for every defect of a
    file's content; a missing path raises ``FileNotFoundError`` instead.
    """


def write_archive(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as uncompressed members ``<name>.npy`` of a zip at ``path``, atomically."""

    def write_zip(raw: BinaryIO) -> None:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(
                        member, np.ascontiguousarray(array), allow_pickle=False
                    )

    write_atomically(path, write_zip)


@contextmanager
def open_archive(path: str | os.PathLike) -> Iterator[ArchiveReader]:
    """Open the archive at ``path`` for checked reads; any defect raises ModelFileError.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        For anything wrong with the bytes, including errors raised while the caller reads.
    """
    path = as_path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {str(path)!r}")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a chainrule model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: is not a regular file, not a chainrule model file")
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            capped = _CappedReader(raw, size)
            _check_end_record(capped, size, path)
            with zipfile.ZipFile(capped) as zf:
                yield ArchiveReader(zf, path, size)
        except ModelFileError:
            raise
        except Exception as err:  # any other defect of the bytes: one documented error type
            raise ModelFileError(
                f"{path}: damaged or not a chainrule model file ({type(err).__name__}: {err})"
            ) from err


class _CappedReader:
    """A read-only, seekable view of a file that never reads past the size it had at open.

    ``zipfile`` trusts the sizes written in the archive; reading through this wrapper means
    a forged size can at most make it read (and allocate) what the file actually holds.
    """

    def __init__(self, raw, size: int) -> None:
        self._raw, self._size = raw, size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._raw.tell())
        if n is None or n < 0 or n > left:
            n = left
        return self._raw.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


def _fail(path: Path, reason: str) -> ModelFileError:
    return ModelFileError(f"{path}: {reason}")


def _check_end_record(f: _CappedReader, size: int, path: Path) -> None:
    """Refuse archives that declare more members than a model file has, before zipfile
    builds one object per member."""
    if size == 0:
        raise _fail(path, "the file is empty; not a chainrule model file")
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _fail(
            path,
            "not a zip archive (no end-of-central-directory record); not a chainrule model file",
        )
    _, _, _, _, n_members, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    if n_members == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        if offset + 56 > size:
            raise _fail(path, "the zip64 end record lies outside the file")
        f.seek(offset)
        record = f.read(56)
        if record[:4] != b"PK\x06\x06":
            raise _fail(path, "the zip64 end record is damaged")
        n_members, cd_size = struct.unpack("<QQ", record[32:48])
    if n_members > MAX_MEMBERS:
        raise _fail(
            path,
            f"the archive declares {n_members} members; model files have at most {MAX_MEMBERS}",
        )
    if cd_size > size:
        raise _fail(
            path, f"the zip directory declares {cd_size} bytes, more than the file's {size}"
        )
    f.seek(0)


class ArchiveReader:
    """Checked access to the members of one opened archive."""

    def __init__(self, zf: zipfile.ZipFile, path: Path, size: int) -> None:
        self.zf, self.path, self.size = zf, path, size
        self.members = self._members()

    def fail(self, reason: str) -> ModelFileError:
        return _fail(self.path, reason)

    def _members(self) -> dict[str, zipfile.ZipInfo]:
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self.fail(f"the archive holds {len(infos)} members; at most {MAX_MEMBERS}")
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if "/" in name or "\\" in name:
                raise self.fail(
                    f"member {name!r} has a path separator; model files hold only flat members"
                )
            if name != info.orig_filename:
                raise self.fail(f"member name {info.orig_filename!r} is malformed")
            if name in members:
                raise self.fail(f"member {name!r} appears twice; not a file written by chainrule")
            if not name.endswith(".npy") or not KEY.fullmatch(name[:-4]):
                raise self.fail(f"unexpected member {name!r}; not a chainrule model file?")
            if info.flag_bits & 0x1:
                raise self.fail(f"member {name!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.fail(
                    f"member {name!r} is compressed; model files store arrays uncompressed"
                )
            if info.compress_size != info.file_size:
                raise self.fail(
                    f"member {name!r} declares {info.file_size} bytes but stores "
                    f"{info.compress_size}; the file is damaged"
                )
            if info.header_offset + info.compress_size > self.size:
                raise self.fail(
                    f"member {name!r} declares {info.file_size} bytes at offset "
                    f"{info.header_offset}, beyond the end of the {self.size}-byte file "
                    "(truncated or damaged)"
                )
            members[name] = info
        return members

    def header(self, name: str, dtype: np.dtype, shape: tuple[int, ...] | None):
        """Check member ``name``'s .npy header; return (info, dtype, shape, offset, nbytes).

        ``shape=None`` accepts any 1-D length. Reads only the header.
        """
        info = self.members.get(f"{name}.npy")
        if info is None:
            raise self.fail(f"missing array {name!r}; not a chainrule model file?")
        with self.zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                found_shape, fortran, found_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise self.fail(f"array {name!r} has an unsupported .npy version {version}")
            offset = f.tell()
        found_shape = tuple(found_shape)
        if shape is None and len(found_shape) == 1:
            shape = found_shape
        if found_dtype != dtype or found_shape != shape or fortran:
            declared = "a 1-D array" if shape is None else f"{dtype}{list(shape)}"
            raise self.fail(
                f"array {name!r} is {found_dtype}{list(found_shape)}"
                f"{' (Fortran order)' if fortran else ''}, but the description declares "
                f"{declared}"
            )
        nbytes = dtype.itemsize * math.prod(shape)
        if info.file_size != offset + nbytes:
            raise self.fail(
                f"array {name!r} declares {math.prod(shape)} elements ({nbytes} bytes), but its "
                f"member holds {info.file_size - offset} bytes of data"
            )
        return info, dtype, shape, offset, nbytes

    def data(self, name: str, checked) -> np.ndarray:
        """Read the array whose header ``checked`` verified; the zip CRC is checked too."""
        info, dtype, shape, offset, nbytes = checked
        with self.zf.open(info) as f:
            f.read(offset)
            data = f.read(nbytes)
            if len(data) != nbytes or f.read(1):
                raise self.fail(f"array {name!r} is truncated or has trailing bytes")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
