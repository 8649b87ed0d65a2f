"""A FUSE file system that loses what was written but not fsynced when its process dies:
a node crash (power loss) for the process whose data directory it holds.

`python -m tests.support.lossyfs BACKING MOUNTPOINT` serves BACKING at MOUNTPOINT. The files
in BACKING are the disk: what survives. A file's writes and truncations go to a copy in this
process's memory (the page cache) and reach BACKING only when the file is fsynced (fsync and
fdatasync alike). SIGKILL this process and everything not fsynced is gone, as after a power
loss; mount BACKING again and the file system is what the disk held.

Metadata (create, rename, unlink, mkdir) goes to BACKING at once: as if every directory
operation were journalled and synced immediately. A real file system may lose those too
unless the directory is fsynced (Redis fsyncs its AOF directory after each rename); so this
simulates loss of unsynced *file data* only, which is what the fsync policy governs.

The extended attribute `user.lossyfs.unsynced` of a file tells how many writes it has had
since its last fsync (a test checks there is something to lose before it pulls the plug).
"""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import mfusepy

UNSYNCED_XATTR = "user.lossyfs.unsynced"


@dataclass
class _Cached:
    data: bytearray
    dirty_from: int | None = None  # lowest offset changed since the last fsync
    writes: int = 0  # writes and truncations since the last fsync
    handles: int = field(default=0)


class LossyFs(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True  # utimens gets nanoseconds

    def __init__(self, backing: str) -> None:
        self.backing = backing
        self.cache: dict[str, _Cached] = {}

    def _real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _cached(self, path: str) -> _Cached:
        cached = self.cache.get(path)
        if cached is None:
            with open(self._real(path), "rb") as disk:
                cached = self.cache[path] = _Cached(bytearray(disk.read()))
        return cached

    def _dirty(self, cached: _Cached, offset: int) -> None:
        cached.dirty_from = offset if cached.dirty_from is None else min(cached.dirty_from, offset)
        cached.writes += 1

    # Metadata: straight to the disk.
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.lstat(self._real(path))
        attrs = {key: getattr(st, key) for key in dir(st) if key.startswith("st_")}
        if path in self.cache:
            attrs["st_size"] = len(self.cache[path].data)
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        os.close(os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode))
        self.cache[path] = _Cached(bytearray())
        return 0

    def open(self, path: str, flags: int) -> int:
        cached = self._cached(path)
        if flags & os.O_TRUNC and cached.data:
            del cached.data[:]
            self._dirty(cached, 0)
        return 0

    def rename(self, old: str, new: str) -> int:
        os.rename(self._real(old), self._real(new))
        if old in self.cache:
            self.cache[new] = self.cache.pop(old)
        else:
            self.cache.pop(new, None)
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._real(path))
        self.cache.pop(path, None)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {key: getattr(st, key) for key in dir(st) if key.startswith("f_")}

    # Data: in memory until fsync.
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return bytes(self._cached(path).data[offset : offset + size])

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        cached = self._cached(path)
        if offset > len(cached.data):
            cached.data.extend(bytes(offset - len(cached.data)))
        cached.data[offset : offset + len(data)] = data
        self._dirty(cached, offset)
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        cached = self._cached(path)
        if length < len(cached.data):
            del cached.data[length:]
        else:
            cached.data.extend(bytes(length - len(cached.data)))
        self._dirty(cached, min(length, len(cached.data)))
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        cached = self.cache.get(path)
        if cached is None or cached.dirty_from is None:
            return 0
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(cached.data[cached.dirty_from :]), cached.dirty_from)
            os.ftruncate(fd, len(cached.data))
            os.fsync(fd)
        finally:
            os.close(fd)
        cached.dirty_from, cached.writes = None, 0
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0  # metadata is on the disk already

    def flush(self, path: str, fh: int) -> int:
        return 0  # close() does not sync

    def release(self, path: str, fh: int) -> int:
        return 0

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if name != UNSYNCED_XATTR:
            raise mfusepy.FuseOSError(errno.ENODATA)
        cached = self.cache.get(path)
        return str(cached.writes if cached else 0).encode()


def main(backing: str, mountpoint: str) -> None:
    mfusepy.FUSE(LossyFs(backing), mountpoint, foreground=True, nothreads=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
