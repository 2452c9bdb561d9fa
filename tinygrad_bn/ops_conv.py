"""Convolution and pooling as `Function`s, built on one idea: im2col and its adjoint, col2im.

A 2-D convolution slides a kernel of kh×kw over a padded image. *im2col* lays every window the
kernel visits out as one column of a matrix ("image to columns"): for an input (N, C, H, W)
that is N·OH·OW columns of C·kh·kw numbers. The convolution is then one matrix product with the
kernel reshaped to (O, C·kh·kw) — the work of a Linear layer:

    y[n, o, i, j] = Σ_{c, p, q} w[o, c, p, q] · x_pad[n, c, i·s + p·d, j·s + q·d] + b[o]

(s the stride, d the dilation). Each input pixel appears in several windows, so the adjoint of
im2col, *col2im*, *adds* every window row back onto the pixels it was copied from — the same
rule as broadcasting's adjoint being a sum. Pooling uses the same windows: max or mean over
each window instead of a product with a kernel.

Output size along one axis:  OH = ⌊(H + 2·pad − d·(k − 1) − 1) / s⌋ + 1.

Read next: nn/conv.py and nn/pooling.py, the layers that call these.
"""
from __future__ import annotations

import numpy as np

from .function import Context, Function

__all__ = ["output_size", "im2col", "col2im", "Conv2d", "MaxPool2d", "AvgPool2d"]


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1 (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pad_hw(x: np.ndarray, padding: tuple, value: float) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(x_pad: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple,
             out_hw: tuple) -> np.ndarray:
    """A read-only view (N, C, OH, OW, kh, kw) of every window of the padded input.

    ``as_strided`` moves through memory instead of copying: one step along OH jumps s rows of
    the image, one step along kh jumps d rows (the dilation).
    """
    n, c = x_pad.shape[:2]
    sn, sc, sh, sw = x_pad.strides
    shape = (n, c, out_hw[0], out_hw[1], kernel[0], kernel[1])
    strides = (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return np.lib.stride_tricks.as_strided(x_pad, shape, strides, writeable=False)


def _offsets(kernel: tuple, stride: tuple, dilation: tuple, out_hw: tuple):
    """For each kernel offset (p, q), the strided slices of the padded image that it sees in
    every window at once: rows p·d, p·d + s, …, and columns likewise.

    Looping over the kh·kw offsets (few) instead of the OH·OW windows (many) keeps every array
    operation large; convolution's col2im and both pooling passes are written this way.
    """
    for p in range(kernel[0]):
        top = p * dilation[0]
        rows = slice(top, top + stride[0] * (out_hw[0] - 1) + 1, stride[0])
        for q in range(kernel[1]):
            left = q * dilation[1]
            yield p, q, rows, slice(left, left + stride[1] * (out_hw[1] - 1) + 1, stride[1])


def im2col(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
           out_hw: tuple) -> np.ndarray:
    """Every window of x (N, C, H, W) as one *column*: an array (C·kh·kw, N·OH·OW).

    Columns rather than rows so that the product with the kernel, W (O, C·kh·kw) @ X, comes out
    channel-major (O, N·OH·OW): the output is then a free transposed view of it, and in the
    backward pass ∂L/∂y usually arrives in that same memory order, so laying it out as a matrix
    costs no copy.
    """
    windows = _windows(_pad_hw(x, padding, 0.0), kernel, stride, dilation, out_hw)
    n, c = x.shape[:2]
    columns = windows.transpose(1, 4, 5, 0, 2, 3)        # (C, kh, kw, N, OH, OW)
    return columns.reshape(c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])


def col2im(cols: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
           dilation: tuple, out_hw: tuple) -> np.ndarray:
    """The adjoint of `im2col`: columns (C·kh·kw, N·OH·OW) summed back into an (N, C, H, W)
    image, one strided slice per kernel offset (p, q)."""
    n, c, h, w = x_shape
    ph, pw = padding
    blocks = cols.reshape(c, kernel[0], kernel[1], n, out_hw[0], out_hw[1])
    grad = np.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)   # channel-major too
    for p, q, rows, columns in _offsets(kernel, stride, dilation, out_hw):
        grad[:, :, rows, columns] += blocks[:, p, q]
    return grad[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


class Conv2d(Function):
    """y = conv2d(x, w) + b for x (N, C, H, W), w (O, C, kh, kw), b (O,) → y (N, O, OH, OW).

    With X = im2col(x) (one column per window), W = w reshaped to (O, C·kh·kw) and G = g laid
    out as (O, N·OH·OW):
        Y = W X + b;   ∂L/∂W = G Xᵀ,   ∂L/∂b = Σ G (over each row),   ∂L/∂x = col2im(Wᵀ G).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, *bias: np.ndarray,
                stride: tuple, padding: tuple, dilation: tuple) -> np.ndarray:
        out_channels, _, kh, kw = weight.shape
        out_hw = (output_size(x.shape[2], kh, stride[0], padding[0], dilation[0]),
                  output_size(x.shape[3], kw, stride[1], padding[1], dilation[1]))
        cols = im2col(x, (kh, kw), stride, padding, dilation, out_hw)
        kernel_rows = weight.reshape(out_channels, -1)
        out = kernel_rows @ cols                             # (O, N·OH·OW)
        if bias:
            out += bias[0][:, None]
        ctx.save_for_backward(cols, kernel_rows)
        ctx.geometry = (x.shape, (kh, kw), stride, padding, dilation, out_hw)
        ctx.weight_shape = weight.shape
        n = x.shape[0]
        return out.reshape(out_channels, n, out_hw[0], out_hw[1]).transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        cols, kernel_rows = ctx.saved_tensors
        need = ctx.needs_input_grad
        g_rows = g.transpose(1, 0, 2, 3).reshape(kernel_rows.shape[0], -1)   # G
        grad_x = grad_w = None
        if need[0]:
            grad_x = col2im(kernel_rows.T @ g_rows, *ctx.geometry)
        if need[1]:
            grad_w = (g_rows @ cols.T).reshape(ctx.weight_shape)
        if len(need) == 2:
            return grad_x, grad_w
        return grad_x, grad_w, (g_rows.sum(axis=1) if need[2] else None)


def _pool_geometry(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple,
                   dilation: tuple) -> tuple:
    return (output_size(x.shape[2], kernel[0], stride[0], padding[0], dilation[0]),
            output_size(x.shape[3], kernel[1], stride[1], padding[1], dilation[1]))


def _padded_zeros(x_shape: tuple, padding: tuple, dtype: np.dtype) -> np.ndarray:
    n, c, h, w = x_shape
    return np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), dtype=dtype)


def _unpad(grad: np.ndarray, x_shape: tuple, padding: tuple) -> np.ndarray:
    return grad[:, :, padding[0]:padding[0] + x_shape[2], padding[1]:padding[1] + x_shape[3]]


class MaxPool2d(Function):
    """y = the largest value of each window (padding counts as −∞);
    ∂L/∂x = g routed to the position of each window's maximum — the first one on ties, as in
    PyTorch — added up where windows overlap.

    Both passes loop over the kh·kw kernel offsets: forward keeps, per window, the largest value
    seen so far and the offset it came from (a strictly larger value replaces it, so the first
    maximum wins); backward sends g to the slices whose offset won.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel: tuple, stride: tuple, padding: tuple,
                dilation: tuple) -> np.ndarray:
        out_hw = _pool_geometry(x, kernel, stride, padding, dilation)
        x_pad = _pad_hw(x, padding, -np.inf)
        best = best_offset = None
        for p, q, rows, cols in _offsets(kernel, stride, dilation, out_hw):
            values = x_pad[:, :, rows, cols]
            if best is None:
                best = values
                best_offset = np.zeros(best.shape, dtype=np.int8 if kernel[0] * kernel[1] < 128
                                       else np.int32)
                continue
            larger = values > best
            best = np.maximum(best, values)
            # Offsets only grow along the loop, so "replace where larger" is a maximum with
            # offset·[larger] (much quicker in numpy than np.where with a scalar).
            offset = best_offset.dtype.type(p * kernel[1] + q)
            best_offset = np.maximum(best_offset, larger.view(np.int8) * offset)
        ctx.best_offset = best_offset
        ctx.geometry = (x.shape, kernel, stride, padding, dilation, out_hw)
        return best if best.base is None else best.copy()  # a 1×1 window: x's own slice

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x_shape, kernel, stride, padding, dilation, out_hw = ctx.geometry
        grad = _padded_zeros(x_shape, padding, g.dtype)
        # Windows that do not overlap (stride ≥ window extent, pooling's usual case) touch
        # every pixel once: the slices can be assigned instead of added to.
        disjoint = all(s >= (k - 1) * d + 1 for s, k, d in zip(stride, kernel, dilation))
        for p, q, rows, cols in _offsets(kernel, stride, dilation, out_hw):
            routed = g * (ctx.best_offset == p * kernel[1] + q)
            if disjoint:
                grad[:, :, rows, cols] = routed
            else:
                grad[:, :, rows, cols] += routed
        return (_unpad(grad, x_shape, padding),)


class AvgPool2d(Function):
    """y = the mean of each window;  ∂L/∂x = g / divisor added to every pixel of the window.

    The divisor is kh·kw with ``count_include_pad`` (padding counts as zeros), else the number
    of real pixels in the window — PyTorch's two conventions.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel: tuple, stride: tuple, padding: tuple,
                count_include_pad: bool) -> np.ndarray:
        dilation = (1, 1)
        out_hw = _pool_geometry(x, kernel, stride, padding, dilation)
        x_pad = _pad_hw(x, padding, 0.0)
        total = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
        for _, _, rows, cols in _offsets(kernel, stride, dilation, out_hw):
            total += x_pad[:, :, rows, cols]
        if count_include_pad or padding == (0, 0):
            divisor = np.asarray(kernel[0] * kernel[1], dtype=x.dtype)
        else:  # count the real pixels: pool an image of ones the same way
            ones = _pad_hw(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), padding, 0.0)
            divisor = np.zeros((1, 1) + out_hw, dtype=x.dtype)
            for _, _, rows, cols in _offsets(kernel, stride, dilation, out_hw):
                divisor += ones[:, :, rows, cols]
        ctx.divisor = divisor
        ctx.geometry = (x.shape, kernel, stride, padding, dilation, out_hw)
        return total / divisor

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x_shape, kernel, stride, padding, dilation, out_hw = ctx.geometry
        share = g / ctx.divisor
        grad = _padded_zeros(x_shape, padding, g.dtype)
        for _, _, rows, cols in _offsets(kernel, stride, dilation, out_hw):
            grad[:, :, rows, cols] += share
        return (_unpad(grad, x_shape, padding),)
