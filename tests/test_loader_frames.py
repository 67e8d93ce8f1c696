"""The frames a loader's worker answers, read back whole however the pipe splits them."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from broker.loader.pipeline import _HEADER, _Frames


def _framed(bodies: list[bytes]) -> bytes:
    return b"".join(_HEADER.pack(len(body)) + body for body in bodies)


@given(bodies=st.lists(st.binary(max_size=300), max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
       tail=st.binary(max_size=20))
def test_frames_come_back_whole_and_in_order_however_the_chunks_fall(
        bodies: list[bytes], cuts: list[int], tail: bytes) -> None:
    # ``tail``: the start of a frame that never completes (the worker died mid-write)
    stream = _framed(bodies) + _HEADER.pack(len(tail) + 1) + tail
    received: list[bytes] = []
    ended: list[bool] = []
    frames = _Frames(lambda frame: received.append(bytes(frame)), lambda: ended.append(True))
    bounds = sorted({0, len(stream), *(cut for cut in cuts if cut < len(stream))})
    for start, end in pairwise(bounds):
        frames.data_received(stream[start:end])
    assert received == bodies
    frames.connection_lost(None)
    assert ended == [True]


def test_an_empty_frame_alone_is_received() -> None:
    # a worker's first answer (set up) is an empty frame, and may arrive alone
    received: list[bytes] = []
    frames = _Frames(lambda frame: received.append(bytes(frame)), lambda: None)
    frames.data_received(_HEADER.pack(0))
    assert received == [b""]
    frames.data_received(_HEADER.pack(3)[:5])
    frames.data_received(_HEADER.pack(3)[5:] + b"ab")
    assert received == [b""]
    frames.data_received(b"c")
    assert received == [b"", b"abc"]
