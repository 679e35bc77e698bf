"""Bounds-checked byte cursors for the IKEv2 codec (RFC 7296 §3: network byte order).

Strategy: a ``Reader`` walks a window ``[pos, end)`` of an immutable buffer and
raises ``MalformedMessage`` the moment a pull would cross ``end``, so no
``IndexError`` or ``struct.error`` can escape a parser built on it. A
``Writer`` appends to a ``bytearray`` and can back-patch length fields.
Multi-field layouts go through one precompiled ``struct.Struct`` per pull
(``pull_struct``/``push_struct``) rather than one call per field.
"""

from __future__ import annotations

import struct

from ikesim.errors import MalformedMessage

__all__ = ["Reader", "Writer"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """A read cursor over ``data[pos:end]`` that raises ``MalformedMessage`` on underflow."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        length = len(data)
        if end is None:
            end = length
        if not 0 <= pos <= end <= length:
            raise ValueError(f"window [{pos}, {end}) outside a buffer of {length} bytes")
        self.data = data
        """The underlying buffer (never copied)."""
        self.pos = pos
        """Offset of the next byte to pull."""
        self.end = end
        """Offset one past the last byte this cursor may read."""

    @property
    def remaining(self) -> int:
        """Bytes left before ``end``."""
        return self.end - self.pos

    @property
    def at_end(self) -> bool:
        """True when every byte of the window has been consumed."""
        return self.pos >= self.end

    def _advance(self, n: int) -> int:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise MalformedMessage(f"need {n} bytes at offset {pos}, only {self.end - pos} left")
        self.pos = pos + n
        return pos

    def pull_uint8(self) -> int:
        """Pull one octet."""
        pos = self.pos
        if pos >= self.end:
            raise MalformedMessage(f"need 1 byte at offset {pos}, none left")
        self.pos = pos + 1
        return self.data[pos]

    def pull_uint16(self) -> int:
        """Pull a 16-bit big-endian integer."""
        value: int = _U16.unpack_from(self.data, self._advance(2))[0]
        return value

    def pull_uint32(self) -> int:
        """Pull a 32-bit big-endian integer."""
        value: int = _U32.unpack_from(self.data, self._advance(4))[0]
        return value

    def pull_uint64(self) -> int:
        """Pull a 64-bit big-endian integer."""
        value: int = _U64.unpack_from(self.data, self._advance(8))[0]
        return value

    def pull_bytes(self, n: int) -> bytes:
        """Pull exactly *n* bytes."""
        pos = self._advance(n)
        return bytes(self.data[pos : pos + n])

    def pull_rest(self) -> bytes:
        """Pull every byte left in the window (possibly none)."""
        pos, self.pos = self.pos, self.end
        return bytes(self.data[pos : self.end])

    def pull_struct(self, layout: struct.Struct) -> tuple[int | bytes, ...]:
        """Pull ``layout.size`` bytes and unpack them with *layout* in one step."""
        return layout.unpack_from(self.data, self._advance(layout.size))

    def pull_reader(self, n: int) -> Reader:
        """Split off the next *n* bytes as a cursor of their own and skip past them."""
        pos = self._advance(n)
        return Reader(self.data, pos, pos + n)

    def skip(self, n: int) -> None:
        """Skip *n* bytes (e.g. RESERVED fields, ignored on receipt per RFC 7296 §3)."""
        self._advance(n)

    def expect_end(self, what: str = "structure") -> None:
        """Raise ``MalformedMessage`` if bytes are left over in the window."""
        if self.pos != self.end:
            raise MalformedMessage(f"{what}: {self.end - self.pos} unexpected trailing bytes")


class Writer:
    """An append-only buffer with network-byte-order pushes and length back-patching."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def tell(self) -> int:
        """Current length, i.e. the offset the next push will write at."""
        return len(self._buf)

    def push_uint8(self, value: int) -> None:
        """Append one octet."""
        self._buf.append(value)

    def push_uint16(self, value: int) -> None:
        """Append a 16-bit big-endian integer."""
        self._buf += _U16.pack(value)

    def push_uint32(self, value: int) -> None:
        """Append a 32-bit big-endian integer."""
        self._buf += _U32.pack(value)

    def push_uint64(self, value: int) -> None:
        """Append a 64-bit big-endian integer."""
        self._buf += _U64.pack(value)

    def push_bytes(self, data: bytes) -> None:
        """Append raw bytes."""
        self._buf += data

    def push_struct(self, layout: struct.Struct, *values: int | bytes) -> None:
        """Append *values* packed with *layout*."""
        self._buf += layout.pack(*values)

    def patch_uint16(self, offset: int, value: int) -> None:
        """Overwrite the 16-bit field at *offset* (a length written before its contents)."""
        _U16.pack_into(self._buf, offset, value)

    def patch_uint32(self, offset: int, value: int) -> None:
        """Overwrite the 32-bit field at *offset*."""
        _U32.pack_into(self._buf, offset, value)

    def getvalue(self) -> bytes:
        """Everything written so far, as immutable bytes."""
        return bytes(self._buf)
