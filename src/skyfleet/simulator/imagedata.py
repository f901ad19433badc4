"""What the simulated Glance keeps as an image's data: the bytes, a generated pattern, or a digest.

Why it exists: a benchmark copies a multi-GiB image from one site to ten; one simulator process
holding the source and ten copies would need eleven times the image in RAM. A *generated* image's
bytes are a deterministic function of (seed, offset), made block by block as they are read, with
its hashes computed once when it is created. A *digest-only* store (per simulator, off by default)
keeps what Glance reports of an upload -- size, md5 and sha512, and the first bytes a format
inspector looks at -- and drops the bytes themselves. Both look the same as stored bytes to a client
that only creates, uploads, downloads a source and reads the image record.

The digest-only store also spares the CPU: ten real Glances hash ten uploads on ten machines, but
the simulator serves them all from one event loop, and md5 + sha512 run at about 200 MiB/s on one
core -- the simulator, not the copy, would set the pace. So an upload whose bytes are those of a
generated pattern is compared with the pattern (a memcmp) instead of hashed, and takes the hashes
known for it; at the first byte that differs, the matched prefix is regenerated and hashed and the
rest is hashed as it comes. The digest is exact either way (:class:`DigestSink`).
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BLOCK = 1 << 20  # a generated image is made (and hashed) 1 MiB at a time
HEAD = 512  # the bytes of an upload a digest-only store keeps for the format inspector (qcow2 header)


@functools.lru_cache(maxsize=4)
def _base(seed: int) -> bytes:
    """One pseudo-random MiB per seed; every block of a generated image is this MiB with its index in
    front, so a block sent twice or out of order changes the hashes."""
    return random.Random(seed).randbytes(BLOCK)


def block(seed: int, index: int) -> bytes:
    """Block ``index`` (a full MiB) of the images generated with ``seed``."""
    return index.to_bytes(8, "big") + _base(seed)[8:]


@dataclass(frozen=True, slots=True)
class Generated:
    """An image whose bytes are made when read: ``size`` bytes of the ``seed`` pattern."""

    size: int
    seed: int
    checksum: str  # md5, as Glance reports it
    os_hash_value: str  # sha512

    def head(self) -> bytes:
        return block(self.seed, 0)[: min(HEAD, self.size)]

    def blocks(self) -> Iterator[bytes]:
        """The image's bytes, one MiB (the last one shorter) at a time."""
        for index in range((self.size + BLOCK - 1) // BLOCK):
            data = block(self.seed, index)
            yield data[: self.size - index * BLOCK] if (index + 1) * BLOCK > self.size else data


_MADE: dict[tuple[int, int], Generated] = {}  # (seed, size) -> hashes: generated data is a pure function
_SEEDS: dict[bytes, int] = {}  # the start of a seed's pattern -> the seed, to recognise uploads of it
_LOCK = threading.Lock()
MARK = slice(8, 40)  # the bytes of a pattern's first block that name its seed


def generate(size: int, seed: int = 0) -> Generated:
    """A generated image of ``size`` bytes; hashing it costs about 4 s of CPU per GiB, once per (seed,
    size) in this process."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("size must be a non-negative integer (bytes)")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed must be an integer")
    known = _MADE.get((seed, size))
    if known is not None:
        return known
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    for data in Generated(size, seed, "", "").blocks():
        md5.update(data)
        sha.update(data)
    made = Generated(size, seed, md5.hexdigest(), sha.hexdigest())
    with _LOCK:
        _MADE[(seed, size)] = made
        _SEEDS[_base(seed)[MARK]] = seed
    return made


@dataclass(frozen=True, slots=True)
class Digest:
    """What a digest-only store keeps of an upload: its size, hashes and first bytes, not its data."""

    size: int
    checksum: str
    os_hash_value: str
    head: bytes


class DigestSink:
    """Takes an upload's bytes in order and ends with its :class:`Digest`, without keeping them.

    While the bytes are a known generated pattern (its seed recognised from the first chunk) they are
    compared with it, not hashed; the hashes at the end are the pattern's for that size. At the first
    difference the matched prefix is regenerated and hashed, then everything else is hashed."""

    def __init__(self) -> None:
        self.size = 0
        self.head = b""
        self._seed: int | None = None  # following this pattern (no hashing yet)
        self._md5: Any = None
        self._sha: Any = None

    def write(self, chunk: bytes) -> None:
        if self.size == 0 and self._md5 is None and self._seed is None:
            self._seed = _SEEDS.get(chunk[MARK]) if len(chunk) >= MARK.stop and chunk[:8] == bytes(8) else None
            if self._seed is None:
                self._start_hashing()
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        if self._seed is not None and not self._matches(chunk):
            self._start_hashing()
        if self._md5 is not None:
            self._md5.update(chunk)
            self._sha.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        if self._md5 is None:
            if self._seed is None:  # nothing came in
                self._start_hashing()
            else:
                made = generate(self.size, self._seed)
                return Digest(self.size, made.checksum, made.os_hash_value, self.head)
        return Digest(self.size, self._md5.hexdigest(), self._sha.hexdigest(), self.head)

    def _matches(self, chunk: bytes) -> bool:
        """Whether ``chunk``, at offset ``self.size``, is the pattern's bytes there (a memcmp per block)."""
        assert self._seed is not None
        base, offset, at = _base(self._seed), self.size, 0
        while at < len(chunk):
            index, within = divmod(offset, BLOCK)
            take = min(len(chunk) - at, BLOCK - within)
            if within < 8:  # the block's index, then the seed's bytes
                expected = (index.to_bytes(8, "big") + base[8 : max(8, within + take)])[within : within + take]
            else:
                expected = base[within : within + take]
            # bytes against bytes is a memcmp; a memoryview compares byte by byte, 30 times slower
            if (chunk[at : at + take] if take < len(chunk) else chunk) != expected:
                return False
            at, offset = at + take, offset + take
        return True

    def _start_hashing(self) -> None:
        """Hash from here on; the bytes matched so far are the pattern's, regenerated to be hashed."""
        self._md5, self._sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        if self._seed is not None and self.size:
            for data in Generated(self.size, self._seed, "", "").blocks():
                self._md5.update(data)
                self._sha.update(data)
        self._seed = None


#: An image's data as the simulated Glance stores it.
ImageData = bytes | Generated | Digest


def pieces(data: bytes | Generated, step: int) -> Iterator[bytes | memoryview]:
    """``data`` in pieces of at most ``step`` bytes, as a download sends them (views, not copies)."""
    for part in (data,) if isinstance(data, bytes) else data.blocks():
        view = memoryview(part)
        for start in range(0, len(view), step):
            yield view[start : start + step]
