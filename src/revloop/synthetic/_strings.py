"""Vectorised string building for the generator: ids, hashes and click ids.

Everything here works on whole arrays at once (numpy and pyarrow compute), so that
a million people never cost a Python loop per row. SHA-256 is implemented on
``uint32`` arrays for messages of at most 55 bytes (one 64-byte block), which is
all an e-mail address of the generator needs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "base64url",
    "hex_strings",
    "prefixed_ids",
    "sha256_hex",
    "take_strings",
]

_K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
        0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
        0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
        0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
        0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
        0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
        0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
    ],
    dtype=np.uint32,
)  # fmt: skip
_H0 = np.array(
    [
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ],
    dtype=np.uint32,
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_B64URL = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


def _rotr(x: U32, n: int) -> U32:
    return (x >> np.uint32(n)) | (x << np.uint32(32 - n))


def _byte_matrix(
    strings: pa.Array | pa.ChunkedArray, width: int
) -> tuple[U8, npt.NDArray[np.int64]]:
    """The UTF-8 bytes of each string, left-aligned in a zero-padded ``(n, width)`` matrix."""
    arr = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    arr = arr.cast(pa.large_string())
    if arr.null_count:
        raise ValueError("cannot hash null strings")
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    if len(lengths) and int(lengths.max()) > width:
        raise ValueError(f"strings longer than {width} bytes are not supported")
    cols = np.arange(width, dtype=np.int64)
    pos = offsets[:-1, None] + cols[None, :]
    inside = cols[None, :] < lengths[:, None]
    out = np.zeros((len(arr), width), dtype=np.uint8)
    out[inside] = data[pos[inside]]
    return out, lengths


def sha256_hex(strings: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lower-case hex SHA-256 of each UTF-8 string (at most 55 bytes each).

    Parameters
    ----------
    strings
        A pyarrow string array without nulls.

    Returns
    -------
    pyarrow.Array
        64-character hex digests, identical to ``hashlib.sha256(s.encode()).hexdigest()``.

    Examples
    --------
    >>> import hashlib
    >>> out = sha256_hex(pa.array(["ana@example.com", ""]))
    >>> out[0].as_py() == hashlib.sha256(b"ana@example.com").hexdigest()
    True
    """
    msg, lengths = _byte_matrix(strings, 55)
    n = msg.shape[0]
    block = np.zeros((n, 64), dtype=np.uint8)
    block[:, :55] = msg
    block[np.arange(n), lengths] = 0x80
    bitlen = (lengths * 8).astype(">u8").view(np.uint8).reshape(n, 8)
    block[:, 56:] = bitlen
    w = np.empty((64, n), dtype=np.uint32)
    w[:16] = block.view(">u4").astype(np.uint32).T
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ (w[t - 15] >> np.uint32(3))
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ (w[t - 2] >> np.uint32(10))
        w[t] = w[t - 16] + s0 + w[t - 7] + s1
    a, b, c, d, e, f, g, h = (np.full(n, v, dtype=np.uint32) for v in _H0)
    for t in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ (~e & g)
        t1 = h + s1 + ch + _K[t] + w[t]
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = s0 + maj
        h, g, f, e, d, c, b, a = g, f, e, d + t1, c, b, a, t1 + t2
    digest = np.stack([a, b, c, d, e, f, g, h], axis=1) + _H0[None, :]
    return hex_strings(digest.astype(">u4").view(np.uint8).reshape(n, 32))


def hex_strings(raw: U8) -> pa.Array:
    """Each row of a ``(n, k)`` byte matrix as a ``2k``-character lower-case hex string."""
    n, k = raw.shape
    chars = np.empty((n, 2 * k), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    return _fixed_width(chars)


def base64url(raw: U8) -> pa.Array:
    """Each row of random bytes as a URL-safe base64 text (one character per byte)."""
    return _fixed_width(_B64URL[raw & 63])


def _fixed_width(chars: U8) -> pa.Array:
    n, k = chars.shape
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    ).cast(pa.string())


def prefixed_ids(prefix: str, numbers: npt.NDArray[np.int64], width: int = 0) -> pa.Array:
    """``prefix`` followed by each number, zero-padded to ``width`` digits.

    Examples
    --------
    >>> prefixed_ids("lead_", np.array([7, 12345]), width=6).to_pylist()
    ['lead_000007', 'lead_012345']
    """
    digits = pc.cast(pa.array(numbers, pa.int64()), pa.string())
    if width:
        digits = pc.utf8_lpad(digits, width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, pa.scalar(""))


def take_strings(
    choices: list[str] | tuple[str, ...],
    index: npt.NDArray[np.integer],
    null: npt.NDArray[np.bool_] | None = None,
) -> pa.Array:
    """Dictionary-encoded strings: ``choices[index]``, null where ``null`` is true.

    Dictionary encoding keeps a few hundred distinct values over millions of rows
    cheap; every Ibis backend reads it as an ordinary string column.
    """
    idx = pa.array(index.astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(choices), pa.string()))
