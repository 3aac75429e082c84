"""Byte-level mutations for the parsers' fuzz tests: flip, insert, delete and duplicate runs of a valid stream."""

from __future__ import annotations

from hypothesis import strategies as st

MUTATION = st.tuples(st.sampled_from(["flip", "insert", "delete", "dup"]), st.integers(min_value=0), st.binary(min_size=1, max_size=4))


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    b = bytearray(data)
    for kind, pos, payload in mutations:
        i = pos % (len(b) + 1)
        if kind == "flip" and b:
            b[i % len(b)] = payload[0]
        elif kind == "insert":
            b[i:i] = payload
        elif kind == "delete":
            del b[i : i + len(payload)]
        else:
            b[i:i] = b[i : i + 16]
    return bytes(b)
