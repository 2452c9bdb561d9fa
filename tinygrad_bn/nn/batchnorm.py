"""`BatchNorm1d` and `BatchNorm2d`: Batch Normalization, as the course notes teach it and as
PyTorch computes it. Both are one implementation, `_BatchNorm`; they differ only in the input
shapes they accept, (N, C) / (N, C, L) or (N, C, H, W), and the statistics are always taken per
channel over every other axis (N, N·L or N·H·W values).

Where it goes: after a Linear layer and before the activation — Linear → BatchNorm1d → ReLU —
or after a convolution — Conv2d → BatchNorm2d → ReLU.

Read next: ../optim/sgd.py, which trains γ and β like every other parameter.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, increment_version
from . import functional as F
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    r"""Normalise each feature over the mini-batch, then scale by γ and shift by β.

    For a mini-batch B of m values of one feature (the notes' notation):

        μ_B  = (1/m) Σᵢ xᵢ                      batch mean
        σ²_B = (1/m) Σᵢ (xᵢ − μ_B)²             batch variance (biased: divides by m)
        ẑᵢ   = (xᵢ − μ_B) / √(σ²_B + ε)          normalised: mean 0, variance ≈ 1
        yᵢ   = γ·ẑᵢ + β                          scale and shift, both learned

    γ and β let the network undo the normalisation if that is better: with γ = √(σ²_B + ε) and
    β = μ_B the layer returns its input. (ε sits *inside* the square root, as in PyTorch; the
    variant (x − μ)/(σ + ε) that some notes print differs badly for features of tiny variance.)

    Training mode uses the batch statistics and updates the running estimates

        running_mean ← (1 − momentum)·running_mean + momentum·μ_B
        running_var  ← (1 − momentum)·running_var  + momentum·σ²_B·m/(m − 1)

    storing the *unbiased* variance, as PyTorch does. ``momentum=None`` uses the cumulative
    average instead (momentum = 1/num_batches_tracked). Evaluation mode (``eval()``)
    normalises with the running estimates, so a single example can be classified and its
    output does not depend on the rest of the batch — which is why train and eval outputs of
    the same batch differ.

    Args:
        num_features: C, the number of features (channels).
        eps: added to the variance for numerical stability.
        momentum: weight of the new batch in the running averages (not the optimizer's momentum),
            or None for a cumulative average.
        affine: learn γ (``weight``, alias ``gamma``) and β (``bias``, alias ``beta``).
        track_running_stats: keep running estimates; without them evaluation also uses batch
            statistics. Set to False *after* construction, as in PyTorch, training leaves the
            buffers alone and evaluation keeps using them.
        fused: keyword-only. True runs one op with the closed-form backward (fast); False builds
            the normalisation from primitive ops so a rendered graph shows every step.

    Shape: (N, C, *) as each subclass accepts → same shape; m counts every value of one
    channel (N, N·L or N·H·W). An empty batch gives an empty output and leaves the running
    estimates as they were (num_batches_tracked still counts it, as in PyTorch).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, fused: bool = True):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive integer, "
                             f"got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"{type(self).__name__}: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got "
                             f"{momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats, self.fused = affine, track_running_stats, fused
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))   # γ
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))    # β
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    # The notes call the scale and shift γ and β; PyTorch calls them weight and bias.
    # Both names reach the *same* Parameter objects.
    @property
    def gamma(self) -> Parameter | None:
        return self.weight

    @gamma.setter
    def gamma(self, value: Parameter) -> None:
        self.weight = value

    @property
    def beta(self) -> Parameter | None:
        return self.bias

    @beta.setter
    def beta(self, value: Parameter) -> None:
        self.bias = value

    # The input layouts a subclass accepts: its number of dimensions, and how to name them.
    _dims: tuple = ()
    _layout: str = ""

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, num_batches_tracked 0 (in place), as PyTorch."""
        if self.track_running_stats and self.running_mean is not None:
            for buffer, value in ((self.running_mean, 0.0), (self.running_var, 1.0),
                                  (self.num_batches_tracked, 0)):
                buffer.data.fill(value)
                increment_version(buffer)

    def reset_parameters(self) -> None:
        """`reset_running_stats`, and γ = 1, β = 0 (in place), as at construction."""
        self.reset_running_stats()
        if self.affine:
            for param, value in ((self.weight, 1.0), (self.bias, 0.0)):
                param.data.fill(value)
                increment_version(param)

    def _complete_state_dict(self, state_dict: dict, prefix: str) -> None:
        # Checkpoints from PyTorch before 0.4.1 have no num_batches_tracked; like PyTorch, loading
        # one keeps the module's current count.
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and self.num_batches_tracked is not None \
                and key not in state_dict:
            state_dict[key] = self.num_batches_tracked.data.copy()

    def forward(self, input: Tensor) -> Tensor:
        shape = input.shape
        if len(shape) not in self._dims or shape[1] != self.num_features:
            raise ValueError(self._shape_error(shape))
        # As PyTorch decides, reading the flag *and* the buffers, so that changing
        # `track_running_stats` after construction behaves as there: training then neither
        # updates nor counts, and evaluation still normalises with the buffers it has.
        training, momentum = self.training, self.momentum
        counter = self.num_batches_tracked
        if training and self.track_running_stats and counter is not None:
            if input.numel() != self.num_features:  # one value per channel: batch_norm raises
                counter.data += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / max(int(counter.data), 1)
        elif momentum is None:
            momentum = 0.0
        running_mean, running_var = self.running_mean, self.running_var
        if training and not self.track_running_stats:
            running_mean = running_var = None
        use_batch_stats = training or running_mean is None or running_var is None
        return F.batch_norm(input, running_mean, running_var, self.weight, self.bias,
                            use_batch_stats, momentum, self.eps, fused=self.fused)

    def _shape_error(self, shape: tuple) -> str:
        name = type(self).__name__
        if len(shape) not in self._dims:
            return (f"{name} expects a {self._layout} input, got {len(shape)}-D input of "
                    f"shape {shape}")
        return (f"{name}({self.num_features}) got an input of shape {shape}: expected "
                f"{self.num_features} features on axis 1")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences (see `_BatchNorm`):
    statistics per channel over N (or N·L) values.

    Example:
        >>> bn = BatchNorm1d(2)
        >>> y = bn(Tensor([[7.0, 70.0], [8.0, 80.0], [9.0, 90.0], [6.0, 60.0]]))
    """

    _dims = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images (see `_BatchNorm`): statistics per channel
    over the N·H·W values of that channel, so every pixel of a feature map shares one μ and σ²
    (the convolutional form of the paper's §3.2).

    Example:
        >>> bn = BatchNorm2d(3)
        >>> y = bn(Tensor.randn((8, 3, 5, 5)))
    """

    _dims = (4,)
    _layout = "4-D (N, C, H, W)"
