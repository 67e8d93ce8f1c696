"""Points as cells of a Z-order curve: the geometry index of the usual Point.

A GeoProperty whose value is a Point inside the lon/lat domain (the usual case:
lampposts, sensors, stations) is indexed by the ``val`` of its ``attr_values``
row: the Morton code (Z-order) of its coordinates quantized to 32 bits each, 8
bytes big-endian, then the two quantized coordinates, 4 bytes each: a 16-byte
BLOB (:func:`point_cell`), where the attribute would
otherwise have its marker (``sqlite_index.MARKER``, the empty BLOB).  So a new
entity's Point costs no B-tree entry beyond the row its attribute has anyway,
instead of a ``geo_rows`` row, its key and an R*Tree box (25% of a small
create's SQLite instructions, benchmarks/README.md, schemacost).  BLOBs sort
after every number and string and compare bytewise, so no q term selects a cell
(``conditions.value_sql`` keeps to numbers or strings), the cells of an
attribute are one contiguous run of ``attr_values_value`` in code order, and a
box of the query is read as a few ranges of codes (:func:`cover`), the rows of
which outside the box are dropped by SQLite on the coordinates' bytes
(:func:`quantized_box`), before any document is read: the candidates are the
points of the box, as the R*Tree's were (ranges alone gave 1.3-2.5 times as many,
each decoded and tested in Python).  Every other geometry (and a Point outside
the domain) keeps its R*Tree box.

The quantization is monotonic (IEEE arithmetic rounds monotonically; ``int``
truncates a non-negative number), so a point inside a box has a code inside one
of the ranges covering the box's quantized corners: the ranges select a superset
of the points in the box, which the exact test of the geo-query then narrows, as
it narrows the R*Tree's boxes (clause 4.10).
"""

from __future__ import annotations

#: bits of each quantized coordinate (a cell is ~1 cm of longitude at the equator)
BITS = 32
_TOP = (1 << BITS) - 1
_SCALE_X = (1 << BITS) / 360.0
_SCALE_Y = (1 << BITS) / 180.0
#: at most this many quadtree cells cover a query's box (fewer ranges once merged)
RANGES = 16


def _quantized_x(x: float) -> int:
    q = int((x + 180.0) * _SCALE_X)
    return q if q < _TOP else _TOP


def _quantized_y(y: float) -> int:
    q = int((y + 90.0) * _SCALE_Y)
    return q if q < _TOP else _TOP


def _spread(v: int) -> int:
    """The bits of a 32-bit ``v`` moved to the even positions of a 64-bit number."""
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def in_domain(x: float, y: float) -> bool:
    """Whether (x, y) lies in the lon/lat domain the cells cover (NaN does not)."""
    return -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0


def point_cell(x: float, y: float) -> bytes:
    """The cell of the point (x, y) of the domain (:func:`in_domain`): its Morton
    code, then its quantized x and y, big-endian (bytewise order is numeric order)."""
    qx, qy = _quantized_x(x), _quantized_y(y)
    return ((_spread(qx) | (_spread(qy) << 1)) << 64 | qx << 32 | qy).to_bytes(16, "big")


def quantized_box(minx: float, miny: float, maxx: float,
                  maxy: float) -> tuple[bytes, bytes, bytes, bytes] | None:
    """The first and last quantized x, then y, of the domain's points inside the box
    (4 bytes each, as in a cell: bytes 9-12 and 13-16); None if the box misses the
    domain (or is NaN)."""
    minx, maxx = max(minx, -180.0), min(maxx, 180.0)
    miny, maxy = max(miny, -90.0), min(maxy, 90.0)
    if not (minx <= maxx and miny <= maxy):
        return None
    return (_quantized_x(minx).to_bytes(4, "big"), _quantized_x(maxx).to_bytes(4, "big"),
            _quantized_y(miny).to_bytes(4, "big"), _quantized_y(maxy).to_bytes(4, "big"))


def _inside(lo: int, hi: int, start: int, size: int) -> bool:
    return lo <= start and start + size - 1 <= hi


def cover(minx: float, miny: float, maxx: float, maxy: float) -> list[tuple[bytes, bytes]]:
    """Ranges of cells (first, last: inclusive) holding the cell of every point of the
    domain inside the box; at most :data:`RANGES`, in order, none adjacent.  Empty if
    the box misses the domain (or is NaN)."""
    box = quantized_box(minx, miny, maxx, maxy)
    if box is None:
        return []
    x0, x1, y0, y1 = (int.from_bytes(b, "big") for b in box)
    done: list[tuple[int, int, int]] = []  # (cell x, cell y, its size's bits)
    level = [(0, 0, BITS)]
    while level:
        # the next level: the partial cells split into their children that meet the box
        children: list[tuple[int, int, int]] = []
        whole: list[tuple[int, int, int]] = []
        for cx, cy, bits in level:
            size = 1 << bits
            if bits == 0 or (_inside(x0, x1, cx << bits, size)
                             and _inside(y0, y1, cy << bits, size)):
                whole.append((cx, cy, bits))
                continue
            half = size >> 1
            for dx in (0, 1):
                sx = ((cx << 1) | dx) * half
                if sx > x1 or sx + half - 1 < x0:
                    continue
                for dy in (0, 1):
                    sy = ((cy << 1) | dy) * half
                    if sy > y1 or sy + half - 1 < y0:
                        continue
                    children.append(((cx << 1) | dx, (cy << 1) | dy, bits - 1))
        if len(done) + len(whole) + len(children) > RANGES:
            done += level  # the budget spent: this level's cells as they are
            break
        done += whole
        level = children
    ranges = sorted(((_spread(cx) | (_spread(cy) << 1)) << (2 * bits),
                     ((_spread(cx) | (_spread(cy) << 1)) + 1 << (2 * bits)) - 1)
                    for cx, cy, bits in done)
    merged: list[list[int]] = []
    for first, last in ranges:
        if merged and merged[-1][1] + 1 >= first:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [((first << 64).to_bytes(16, "big"), ((last + 1 << 64) - 1).to_bytes(16, "big"))
            for first, last in merged]


__all__ = ["BITS", "RANGES", "cover", "in_domain", "point_cell", "quantized_box"]
