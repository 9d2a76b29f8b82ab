"""SVG path data -> cubic Bezier segments -> sampled polylines (the parser KanjiVG needs).

:func:`parse_path` reads the ``d`` attribute of an SVG ``<path>``: M/m L/l H/h V/v C/c S/s Q/q T/t
Z/z, implicit repeated commands, and numbers such as ``1.2-3.4`` and ``.5.5``. Every segment
becomes a cubic Bezier (lines and quadratics exactly), so one formula samples them all:
:func:`sample_cubics` evaluates

    B(t) = (1-t)^3 P0 + 3 (1-t)^2 t P1 + 3 (1-t) t^2 P2 + t^3 P3

at ``n`` values of t for every segment in one matrix product. Arcs are refused (KanjiVG has none).
"""

from __future__ import annotations

import functools
import re

import numpy as np

#: Points sampled per Bezier segment (before RDP).
DEFAULT_SAMPLES_PER_SEGMENT = 16
_SEPARATORS = str.maketrans("", "", " \t\n\r\f\v,")
_NARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "Z": 0}


_TOKEN = re.compile(r"[MmLlHhVvCcSsQqTtZzAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_LETTERS = frozenset("MmLlHhVvCcSsQqTtZzAa")


def _tokenize(d: str) -> list:
    """Commands as 1-letter strings, numbers as floats: ``"1.2-3.4"`` -> 1.2, -3.4; ``".5.5"`` -> .5, .5."""
    found = _TOKEN.findall(d)
    # every character that is not a separator must belong to a token (checked by length: C speed)
    if sum(map(len, found)) != len(d.translate(_SEPARATORS)):
        raise ValueError(f"SVG path: unexpected characters in {d!r}")
    return [t if t in _LETTERS else float(t) for t in found]


def parse_path(d: str) -> list[np.ndarray]:
    """Parse SVG path data into subpaths of cubic Bezier segments.

    Returns a list with one ``float64 [K, 4, 2]`` array per subpath (``K`` segments, each given by
    its 4 control points ``P0, P1, P2, P3``). Lines and quadratics are written as the cubic that
    traces exactly the same curve; ``Z`` adds the closing line. Extra argument groups after a
    command repeat it (after ``M``/``m`` they are ``L``/``l``). A subpath without any segment (a
    lone moveto) is dropped, as SVG draws nothing for it. Raises ``ValueError`` for unknown or
    unsupported commands (arcs) and for a wrong number of arguments. (Plain Python floats inside
    the loop: a small numpy array per segment would cost more than the arithmetic.)
    """
    tokens = _tokenize(d)
    starts = [i for i, t in enumerate(tokens) if t.__class__ is str]
    if not starts or starts[0] != 0:
        raise ValueError(f"SVG path must start with a command in {d!r}")
    starts.append(len(tokens))
    subpaths: list[list[tuple]] = []  # segments of every subpath
    segs: list[tuple] = []  # 8 floats per segment: x0 y0 x1 y1 x2 y2 x3 y3
    x = y = sx = sy = 0.0  # current point, subpath start
    cubic_ctrl = None  # second control point of the previous C/S (reflected by S)
    quad_ctrl = None  # control point of the previous Q/T (reflected by T)
    started = False

    for j in range(len(starts) - 1):
        cmd, vals = tokens[starts[j]], tokens[starts[j] + 1 : starts[j + 1]]
        if cmd in "Aa":
            raise ValueError(f"SVG path: arc command {cmd!r} is not supported in {d!r}")
        upper = cmd.upper()
        if not started and upper != "M":
            raise ValueError(f"SVG path must start with M or m, got {cmd!r} in {d!r}")
        n = _NARGS[upper]
        if upper == "Z":
            if vals:
                raise ValueError(f"SVG path: numbers after {cmd!r} (closepath takes no arguments) in {d!r}")
            if (x, y) != (sx, sy):
                segs.append((x, y, x + (sx - x) / 3, y + (sy - y) / 3, x + 2 * (sx - x) / 3, y + 2 * (sy - y) / 3,
                             sx, sy))
            x, y = sx, sy
            if segs:
                subpaths.append(segs)
                segs = []
            cubic_ctrl = quad_ctrl = None
            continue
        if not vals or len(vals) % n:
            raise ValueError(f"SVG path: command {cmd!r} needs {n} numbers (or a multiple), got {vals} in {d!r}")
        for k in range(0, len(vals), n):
            a = vals[k : k + n]
            bx, by = (x, y) if cmd.islower() else (0.0, 0.0)  # base of relative coordinates
            if upper == "M":
                if k == 0:
                    if segs:
                        subpaths.append(segs)
                        segs = []
                    x, y = bx + a[0], by + a[1]
                    sx, sy = x, y
                    started = True
                    cubic_ctrl = quad_ctrl = None
                    continue
                upper = "L"  # further pairs are implicit linetos (relative after m)
            if upper in "LHV":
                if upper == "L":
                    px, py = bx + a[0], by + a[1]
                elif upper == "H":
                    px, py = bx + a[0], y
                else:
                    px, py = x, by + a[0]
                segs.append((x, y, x + (px - x) / 3, y + (py - y) / 3, x + 2 * (px - x) / 3, y + 2 * (py - y) / 3,
                             px, py))
                cubic_ctrl = quad_ctrl = None
            elif upper == "C":
                c1x, c1y, c2x, c2y = bx + a[0], by + a[1], bx + a[2], by + a[3]
                px, py = bx + a[4], by + a[5]
                segs.append((x, y, c1x, c1y, c2x, c2y, px, py))
                cubic_ctrl, quad_ctrl = (c2x, c2y), None
            elif upper == "S":  # first control: the previous C/S's second one reflected (else the current point)
                c1x, c1y = (2 * x - cubic_ctrl[0], 2 * y - cubic_ctrl[1]) if cubic_ctrl is not None else (x, y)
                c2x, c2y = bx + a[0], by + a[1]
                px, py = bx + a[2], by + a[3]
                segs.append((x, y, c1x, c1y, c2x, c2y, px, py))
                cubic_ctrl, quad_ctrl = (c2x, c2y), None
            else:  # Q, T: the quadratic (P0, Q1, P2) is the cubic (P0, P0 + 2/3 (Q1 - P0), P2 + 2/3 (Q1 - P2), P2)
                if upper == "Q":
                    qx, qy = bx + a[0], by + a[1]
                    px, py = bx + a[2], by + a[3]
                else:
                    qx, qy = (2 * x - quad_ctrl[0], 2 * y - quad_ctrl[1]) if quad_ctrl is not None else (x, y)
                    px, py = bx + a[0], by + a[1]
                segs.append((x, y, x + 2 * (qx - x) / 3, y + 2 * (qy - y) / 3, px + 2 * (qx - px) / 3,
                             py + 2 * (qy - py) / 3, px, py))
                cubic_ctrl, quad_ctrl = None, (qx, qy)
            x, y = px, py
    if segs:
        subpaths.append(segs)
    return [np.array(sp, dtype=np.float64).reshape(-1, 4, 2) for sp in subpaths]


@functools.lru_cache(maxsize=16)
def _bernstein(n: int) -> np.ndarray:
    t = np.arange(1, n + 1, dtype=np.float64) / n  # [n]
    u = 1.0 - t
    return np.stack([u**3, 3 * u**2 * t, 3 * u * t**2, t**3], axis=1)  # [n, 4]


def sample_cubics(cubics: np.ndarray, samples_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT) -> np.ndarray:
    """Sample a chain of cubic Beziers ``[K, 4, 2]`` into a polyline ``[K * n + 1, 2]`` (vectorised).

    ``B(t) = (1-t)^3 P0 + 3 (1-t)^2 t P1 + 3 (1-t) t^2 P2 + t^3 P3`` at ``t = 1/n, ..., 1`` for every
    segment (one batched matrix product ``[n, 4] @ [K, 4, 2]``), preceded by the first segment's ``P0``.
    """
    cubics = np.asarray(cubics, dtype=np.float64)
    if cubics.ndim != 3 or cubics.shape[1:] != (4, 2) or cubics.shape[0] == 0:
        raise ValueError(f"sample_cubics: expected [K, 4, 2] control points, got {list(cubics.shape)}")
    n = int(samples_per_segment)
    if n < 1:
        raise ValueError(f"samples_per_segment must be >= 1, got {samples_per_segment}")
    pts = np.matmul(_bernstein(n), cubics).reshape(-1, 2)  # [K, n, 2] -> [K * n, 2]
    return np.concatenate([cubics[:1, 0], pts])


def path_to_polylines(d: str, samples_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT) -> list[np.ndarray]:
    """SVG path data -> one sampled polyline ``[n, 2]`` per subpath."""
    return [sample_cubics(c, samples_per_segment) for c in parse_path(d)]
