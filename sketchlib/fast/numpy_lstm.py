"""The plain LSTM decoder's sampling step in numpy float32, for a model on the CPU.

:func:`sketchlib.sample.sample` decodes one step at a time, and for one sketch a step is small
(for 512 units a [2048, 518] matrix times a vector, 1M multiply-adds): in torch most of its time
went to dispatching a dozen small ops and converting between torch and numpy. :class:`NumpyLSTM`
computes the same equations as ``model.step`` (tested equal to float32 rounding) with two BLAS
calls and six or seven in-place element-wise calls a step (one sketch), no allocation and no
conversion. On the 2-core CPU of the benchmarks the product with W takes about 50 us a step and
each other numpy call 1-5 us, so the layout is chosen to need few calls:

* one COLUMN per sketch. ``x`` [5 + H + 1, n] holds [S_{i-1}; h_{i-1}; 1] and ``W``
  [4H, 5 + H + 1] holds [W_s^T | W_hh^T | b], so ``a = W x`` [4H, n] is S_{i-1} W_s + h W_hh + b in
  one product (for one sketch a matrix-vector product; with this row-major W^T OpenBLAS is about
  10% faster than with x @ W). The forget bias is folded into b; the decoder's input
  x_i = [S_{i-1}; z] has the constant part z W_z, added as ``zW`` [4H, n] (none if unconditional).
* the gate rows are reordered (o, i, f, g) and ``B`` [5H, n] holds [o; i; f; g; c], so the product
  writes B[:4H], ONE sigmoid covers o, i, f, and ONE multiply [i; f] * [g; c] gives [i g; f c]
  (c = f c + i g is then one add).
* the step writes h straight into ``x``, where y = [W_y | b_y] [h; 1] reads it (``Wy``
  [6M+3, H + 1], row-major, so that one sketch can compute just the rows of y it draws from).
* tanh is numpy's for one sketch (one call on [H]); for a batch it is 2 sigmoid(2u) - 1, four
  calls but half the time (numpy's float32 tanh costs about 3 ns an element; absolute error about
  1e-7). The sigmoid is torch's, on the same memory: faster than any numpy spelling.
* W and Wy are built once per decoder and cached (:func:`numpy_weights`).

Threads (:func:`cpu_threads`): numpy's BLAS gets the caller's torch thread count (two threads
halve the matrix-vector product) and torch gets one, for its element-wise calls. Two thread pools
taking turns on two cores are slow: torch's OpenMP threads and OpenBLAS's both spin-wait after a
call (a batch-64 step took 6x longer with both at 2 threads, and one torch op on 2 threads before
the loop slowed a one-sketch decode by a third). Any multi-threaded step is very slow while another
process holds a core (a 2-thread matrix-vector product took about 8 ms instead of 50 us), which is
why ``sketchlib.book.latent`` decodes with torch on one thread; this module passes that on to the BLAS.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import weakref

import numpy as np
import torch

from sketchlib.data.strokes import START_TOKEN

#: Gate blocks of :class:`NumpyLSTM`'s W, (o, i, f, g), as indices into the reference order (i, g, f, o).
GATE_ORDER = [3, 0, 2, 1]


class NumpyLSTM:
    """The plain LSTM decoder (``model.decoder``, an LSTMCell without dropout) stepped in numpy float32.

    ``NumpyLSTM(model, z, n)``: z [n, N_z] float32 (None if unconditional), state from
    ``model.initial_state(z, n)``. Write S_{i-1} with :meth:`feed` or :meth:`set_input`, then
    ``y = step()`` [n, 6M+3] (a buffer, overwritten by the next step), or :meth:`advance` for the
    state alone; :meth:`state` is (h, c) as torch tensors [n, H]. Layout: the module docstring.
    """

    def __init__(self, model, z: torch.Tensor | None, n: int):
        dec = model.decoder
        H = self.H = dec.cell.hidden_size
        self.n = n
        self.W, self.Wy = numpy_weights(dec)  # [4H, 5 + H + 1], [6M+3, H + 1] (read-only, shared)
        self.zW = None
        if z is not None:
            zW = z.detach().float() @ dec.cell.W_xh.detach()[5:]  # [n, 4H], the same at every step
            zW = zW.view(n, 4, H)[:, GATE_ORDER].reshape(n, 4 * H).t().contiguous().numpy()  # [4H, n]
            self.zW = zW[:, 0] if n == 1 else zW

        h0, c0 = model.initial_state(z, n)  # [n, H] each
        self.x = np.empty((5 + H + 1, n), dtype=np.float32)  # [S_{i-1}; h_{i-1}; 1], a column per sketch
        self.x[:5] = START_TOKEN[:, None]
        self.x[5:5 + H] = h0.detach().t().numpy()
        self.x[-1] = 1.0
        self.B = np.empty((5 * H, n), dtype=np.float32)  # [o; i; f; g] pre-activations, then gates; [c]
        self.B[4 * H:] = c0.detach().t().numpy()
        self.R = np.empty((2 * H, n), dtype=np.float32)  # [i g; f c]
        self.u = np.empty((H, n), dtype=np.float32)  # tanh(c)
        self.y = np.empty((n, self.Wy.shape[0]), dtype=np.float32)
        self._rows = np.arange(n)
        # views used at every step, made once (a slice costs about as much as a small op); for one
        # sketch 1-D views, so numpy calls gemv, not gemm
        one = (lambda v: v[:, 0]) if n == 1 else (lambda v: v)
        B, self.x1, self._R, self._u = one(self.B), one(self.x), one(self.R), one(self.u)
        self._a, self._o, self._g, self._c = B[:4 * H], B[:H], B[3 * H:4 * H], B[4 * H:]
        self._if, self._gc = B[H:3 * H], B[3 * H:]  # [i; f] and [g; c]: one multiply gives [i g; f c]
        self._ig, self._fc = self._R[:H], self._R[H:]
        self.h, self.hx = one(self.x[5:5 + H]), one(self.x[5:])  # h [H, n]; [h; 1] [H + 1, n]
        self._oif_t = torch.from_numpy(self.B[:3 * H])  # the same memory, for torch.sigmoid_
        self._g_t, self._u_t = torch.from_numpy(self.B[3 * H:4 * H]), torch.from_numpy(self.u)

    def set_input(self, s) -> None:
        """S_{i-1} [n, 5] (or [5] for every sketch) into x, e.g. a point of a prefix the decoder reads."""
        self.x[:5] = np.asarray(s, dtype=np.float32).reshape(-1, 5).T

    def feed(self, dx, dy, pen) -> None:
        """S_{i-1} = (dx, dy, one-hot pen) for every sketch ([n] arrays; numbers for one sketch) into x."""
        if self.n == 1 and not isinstance(pen, np.ndarray):  # five scalar writes, no slicing
            x = self.x1
            x[0], x[1], x[2], x[3], x[4] = dx, dy, 0.0, 0.0, 0.0  # float32: dx, dy rounded as in the output
            x[2 + pen] = 1.0
            return
        x = self.x
        x[0], x[1] = dx, dy
        x[2:5] = 0.0
        x[2 + pen, self._rows] = 1.0

    def advance(self) -> None:
        """The LSTM step from S_{i-1} (in x) and (h_{i-1}, c_{i-1}): h_i into x [5:5 + H], c_i into B [4H:]."""
        a, g, c, u = self._a, self._g, self._c, self._u
        np.dot(self.W, self.x1, a)  # [4H, n] = W x: the gates' pre-activations, b included
        if self.zW is not None:
            np.add(a, self.zW, a)  # + z W_z
        torch.sigmoid_(self._oif_t)  # o, i, f
        if self.n == 1:
            np.tanh(g, g)
        else:  # tanh(g) = 2 sigmoid(2g) - 1
            g *= 2.0
            torch.sigmoid_(self._g_t)
            g *= 2.0
            g -= 1.0
        np.multiply(self._if, self._gc, self._R)  # [i g; f c]
        np.add(self._ig, self._fc, c)  # c = f c + i g
        if self.n == 1:
            np.tanh(c, u)
        else:
            np.multiply(c, 2.0, u)
            torch.sigmoid_(self._u_t)
            u *= 2.0
            u -= 1.0
        np.multiply(self._o, u, self.h)  # h = o tanh(c), into x: read by y and by the next W x

    def step(self) -> np.ndarray:
        """:meth:`advance`, then y [n, 6M+3] = [h; 1] @ [W_y | b_y]^T."""
        self.advance()
        if self.n == 1:
            np.dot(self.Wy, self.hx, self.y[0])  # [6M+3]
        else:
            np.dot(self.hx.T, self.Wy.T, self.y)  # [n, 6M+3]
        return self.y

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, c) [n, H] each, as torch tensors (copies)."""
        H = self.H
        return torch.from_numpy(self.x[5:5 + H].T.copy()), torch.from_numpy(self.B[4 * H:].T.copy())


#: decoder -> (key, its parameters, W, Wy) for :func:`numpy_weights`; weak, so the arrays go with the model.
_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def numpy_weights(dec) -> tuple[np.ndarray, np.ndarray]:
    """W [4H, 5 + H + 1] = [W_s^T | W_hh^T | b] (gate rows o, i, f, g; forget bias in b) and
    Wy [6M+3, H + 1] = [W_y | b_y] (``nn.Linear``'s weight with the bias as a last column), read-only.

    Cached per decoder: the transposed copy of W costs 2.5-8 ms (512 units), a tenth or more of a
    one-sketch decode. The key is every parameter's storage address and version counter, which each in-place
    change bumps (optimizer steps, ``load_state_dict``, assignments under ``no_grad``); the entry
    holds the parameters' storages, so a new storage (``model.half().float()``) cannot reuse an
    address. Only writes through ``.data`` would slip past it; inference tensors (no version
    counter) are not cached.
    """
    cell = dec.cell
    params = (cell.W_xh, cell.W_hh, cell.bias, dec.to_y.weight, dec.to_y.bias)
    try:
        key = tuple((p.data_ptr(), p._version) for p in params) + (cell.forget_bias,)
    except RuntimeError:  # inference tensors have no version counter
        key = None
    hit = _WEIGHTS.get(dec)
    if key is not None and hit is not None and hit[0] == key:
        return hit[2], hit[3]
    H = cell.hidden_size
    with torch.no_grad():
        b = cell.bias.detach().clone()  # [4H], gates in reference order i, g, f, o
        b[2 * H:3 * H] += cell.forget_bias
        W_ref = torch.cat([cell.W_xh.detach()[:5], cell.W_hh.detach(), b[None]], 0)  # [5 + H + 1, 4H]
        # [4H, 5 + H + 1], gate blocks reordered, in one (transposing) copy into numpy's memory: numpy
        # asks for huge pages for arrays of 4 MiB and more (the 512-unit W), a few % off each product
        W = np.empty((4 * H, W_ref.shape[0]), dtype=np.float32)
        torch.from_numpy(W).view(4, H, -1).copy_(W_ref.t().view(4, H, -1)[GATE_ORDER])
        Wy = torch.cat([dec.to_y.weight.detach(), dec.to_y.bias.detach()[:, None]], 1).numpy()  # [6M+3, H + 1]
    W.flags.writeable = Wy.flags.writeable = False  # shared by every call: never written
    if key is not None:
        _WEIGHTS[dec] = (key, tuple(p.detach() for p in params), W, Wy)
    return W, Wy


# ----------------------------------------------------------------------------------------------
# Threads


@contextlib.contextmanager
def cpu_threads():
    """Run the block with numpy's BLAS on the caller's ``torch.get_num_threads()`` threads and torch on one.

    Restores both afterwards. Where numpy's BLAS is not an OpenBLAS this module can find
    (:func:`openblas_threads`), only torch's count changes.
    """
    threads = torch.get_num_threads()
    blas = openblas_threads()
    blas_before = blas[0]() if blas is not None else None
    if blas is not None and blas_before != threads:
        blas[1](threads)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if blas is not None and blas_before != threads:
            blas[1](blas_before)


@functools.lru_cache(maxsize=None)
def openblas_threads():
    """(get, set) for the thread count of the OpenBLAS that numpy loaded, or None if there is none to find.

    numpy's Linux and Windows wheels bundle OpenBLAS (``scipy_openblas`` since numpy 2, symbols
    with a suffix); its thread count is only reachable through its C functions, as
    ``threadpoolctl`` reaches it. Looked up once, in the libraries this process has mapped
    (Linux: ``/proc/self/maps``).
    """
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None
