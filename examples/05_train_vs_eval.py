"""Why a BatchNorm layer gives different outputs in train() and eval() mode.

Training mode normalises with the *current batch's* mean and variance; evaluation mode uses
running averages accumulated during training. This script shows the running statistics
converging to the data's true statistics, and the two modes' outputs converging with them.
"""
import numpy as np

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn
from tinygrad_bn.nn import functional as F

rng = np.random.default_rng(0)
true_mean, true_std = np.array([7.0, 100.0]), np.array([0.9, 15.0])   # cgpa, iq
bn = nn.BatchNorm1d(2).double()
fixed_batch = Tensor(rng.normal(true_mean, true_std, (8, 2)))

print("step  running_mean        running_var           |train − eval| on a fixed batch")
for step in range(1, 61):
    bn.train()
    bn(Tensor(rng.normal(true_mean, true_std, (32, 2))))   # updates the running statistics
    if step in (1, 2, 5, 10, 20, 40, 60):
        with tg.no_grad():
            # train mode normalises with this batch's own statistics (computed here without
            # touching the running buffers, which passing None for them does)...
            train_out = F.batch_norm(fixed_batch, None, None, bn.weight, bn.bias,
                                     training=True).data
            eval_out = bn.eval()(fixed_batch).data   # ...eval mode with the running statistics
        gap = np.abs(train_out - eval_out).mean()
        print(f"{step:>4}  {np.round(bn.running_mean.data, 2)!s:<18}  "
              f"{np.round(bn.running_var.data, 2)!s:<20}  {gap:.3f}")

print(f"\ntrue mean {true_mean}, true variance {true_std ** 2}")
print("running_var is the unbiased batch variance (divides by m − 1), averaged with momentum 0.1:")
print("  running ← 0.9·running + 0.1·batch statistic, so it forgets its start at 1 ≈ 0.9ᵗ")
print("The gap never reaches 0: a batch of 8 has its own mean and variance, which differ from")
print("the population's. That difference is the batch noise that makes BN a regulariser.")
