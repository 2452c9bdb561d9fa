"""Convolution and pooling as `Function`s, built on one idea: im2col and its adjoint, col2im.

A 2-D convolution slides a kernel of kh×kw over a padded image. *im2col* lays every window the
kernel visits out as one row of a matrix ("image to columns"): for an input (N, C, H, W) that is
(N·OH·OW) rows of C·kh·kw numbers. The convolution is then one matrix product with the kernel
reshaped to (O, C·kh·kw) — the work of a Linear layer:

    y[n, o, i, j] = Σ_{c, p, q} w[o, c, p, q] · x_pad[n, c, i·s + p·d, j·s + q·d] + b[o]

(s the stride, d the dilation). Each input pixel appears in several windows, so the adjoint of
im2col, *col2im*, *adds* every window row back onto the pixels it was copied from — the same
rule as broadcasting's adjoint being a sum. Pooling uses the same windows: max or mean over
each row instead of a product with a kernel.

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


def im2col(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
           out_hw: tuple) -> np.ndarray:
    """Every window of x (N, C, H, W) as one row: an array (N·OH·OW, C·kh·kw)."""
    windows = _windows(_pad_hw(x, padding, 0.0), kernel, stride, dilation, out_hw)
    n, c = x.shape[:2]
    # (N, OH, OW, C, kh, kw): one row per output pixel, ordered like the kernel's (C, kh, kw).
    rows = windows.transpose(0, 2, 3, 1, 4, 5)
    return rows.reshape(n * out_hw[0] * out_hw[1], c * kernel[0] * kernel[1])


def _add_windows(grad_windows: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple,
                 padding: tuple, dilation: tuple) -> np.ndarray:
    """The adjoint of `_windows`: add a (N, C, OH, OW, kh, kw) array back onto the pixels each
    entry came from, then cut the padding off. One strided slice per kernel offset (p, q)."""
    n, c, h, w = x_shape
    out_h, out_w = grad_windows.shape[2:4]
    ph, pw = padding
    grad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad_windows.dtype)
    for p in range(kernel[0]):
        top = p * dilation[0]
        rows = slice(top, top + stride[0] * (out_h - 1) + 1, stride[0])
        for q in range(kernel[1]):
            left = q * dilation[1]
            cols = slice(left, left + stride[1] * (out_w - 1) + 1, stride[1])
            grad[:, :, rows, cols] += grad_windows[:, :, :, :, p, q]
    return grad[:, :, ph:ph + h, pw:pw + w]


def col2im(cols: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
           dilation: tuple, out_hw: tuple) -> np.ndarray:
    """The adjoint of `im2col`: rows (N·OH·OW, C·kh·kw) summed back into an (N, C, H, W) image."""
    n, c = x_shape[:2]
    windows = cols.reshape(n, out_hw[0], out_hw[1], c, kernel[0], kernel[1])
    return _add_windows(windows.transpose(0, 3, 1, 2, 4, 5), x_shape, kernel, stride, padding,
                        dilation)


class Conv2d(Function):
    """y = conv2d(x, w) + b for x (N, C, H, W), w (O, C, kh, kw), b (O,) → y (N, O, OH, OW).

    With X = im2col(x) (rows of windows), W = w reshaped to (O, C·kh·kw) and G = g laid out
    as rows (N·OH·OW, O):
        Y = X Wᵀ + b;   ∂L/∂W = Gᵀ X,   ∂L/∂b = Σ G,   ∂L/∂x = col2im(G W).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, *bias: np.ndarray,
                stride: tuple, padding: tuple, dilation: tuple) -> np.ndarray:
        out_channels, _, kh, kw = weight.shape
        out_hw = (output_size(x.shape[2], kh, stride[0], padding[0], dilation[0]),
                  output_size(x.shape[3], kw, stride[1], padding[1], dilation[1]))
        cols = im2col(x, (kh, kw), stride, padding, dilation, out_hw)
        kernel_rows = weight.reshape(out_channels, -1)
        out = cols @ kernel_rows.T                           # (N·OH·OW, O)
        if bias:
            out += bias[0]
        ctx.save_for_backward(cols, kernel_rows)
        ctx.geometry = (x.shape, (kh, kw), stride, padding, dilation, out_hw)
        ctx.weight_shape = weight.shape
        n = x.shape[0]
        return out.reshape(n, out_hw[0], out_hw[1], out_channels).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        cols, kernel_rows = ctx.saved_tensors
        need = ctx.needs_input_grad
        g_rows = g.transpose(0, 2, 3, 1).reshape(-1, kernel_rows.shape[0])   # G
        grad_x = grad_w = None
        if need[0]:
            grad_x = col2im(g_rows @ kernel_rows, *ctx.geometry)
        if need[1]:
            grad_w = (g_rows.T @ cols).reshape(ctx.weight_shape)
        if len(need) == 2:
            return grad_x, grad_w
        return grad_x, grad_w, (g_rows.sum(axis=0) if need[2] else None)


class MaxPool2d(Function):
    """y = the largest value of each window (padding counts as −∞);
    ∂L/∂x = g routed to the position of each window's maximum (the first one, on ties, as in
    PyTorch), added up where windows overlap."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel: tuple, stride: tuple, padding: tuple,
                dilation: tuple) -> np.ndarray:
        out_hw = (output_size(x.shape[2], kernel[0], stride[0], padding[0], dilation[0]),
                  output_size(x.shape[3], kernel[1], stride[1], padding[1], dilation[1]))
        windows = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, dilation, out_hw)
        flat = windows.reshape(windows.shape[:4] + (-1,))    # (N, C, OH, OW, kh·kw), a copy
        best = flat.argmax(axis=-1)
        ctx.best, ctx.geometry = best, (x.shape, kernel, stride, padding, dilation)
        return np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        x_shape, kernel = ctx.geometry[:2]
        k = kernel[0] * kernel[1]
        onehot = ctx.best[..., None] == np.arange(k)         # which offset won each window
        grad_windows = (g[..., None] * onehot).reshape(g.shape + kernel)
        return (_add_windows(grad_windows, *ctx.geometry),)


class AvgPool2d(Function):
    """y = the mean of each window;  ∂L/∂x = g / (divisor) spread evenly over the window.

    The divisor is kh·kw with ``count_include_pad`` (padding counts as zeros), else the number
    of real pixels in the window — PyTorch's two conventions.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel: tuple, stride: tuple, padding: tuple,
                count_include_pad: bool) -> np.ndarray:
        dilation = (1, 1)
        out_hw = (output_size(x.shape[2], kernel[0], stride[0], padding[0], 1),
                  output_size(x.shape[3], kernel[1], stride[1], padding[1], 1))
        windows = _windows(_pad_hw(x, padding, 0.0), kernel, stride, dilation, out_hw)
        if count_include_pad or padding == (0, 0):
            divisor = np.asarray(kernel[0] * kernel[1], dtype=x.dtype)
        else:  # count the real pixels: pool an image of ones with the same windows
            ones = _pad_hw(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), padding, 0.0)
            divisor = _windows(ones, kernel, stride, dilation, out_hw).sum(axis=(4, 5))
        ctx.divisor = divisor
        ctx.geometry = (x.shape, kernel, stride, padding, dilation)
        return windows.sum(axis=(4, 5)) / divisor

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple:
        kernel = ctx.geometry[1]
        share = (g / ctx.divisor)[..., None, None]
        grad_windows = np.broadcast_to(share, g.shape + kernel)
        return (_add_windows(grad_windows, *ctx.geometry),)
