"""The same expression in the scalar engine (Value) and the tensor engine (Tensor).

Both record a graph and walk it backwards with the chain rule, so they agree to the last digit.
"""
import numpy as np

from tinygrad_bn import Tensor, Value


def f(a, b):
    """f(a, b) = σ(a·b + a²) / (1 + b²) — works on Values and Tensors alike."""
    return (a * b + a ** 2).sigmoid() / (b * b + 1.0)


a, b = Value(0.5), Value(-1.5)
out = f(a, b)
out.backward()

ta = Tensor(np.float64(0.5), requires_grad=True)
tb = Tensor(np.float64(-1.5), requires_grad=True)
t_out = f(ta, tb)
t_out.backward()

print(f"Value : f = {out.data:.12f}   ∂f/∂a = {a.grad:.12f}   ∂f/∂b = {b.grad:.12f}")
print(f"Tensor: f = {t_out.item():.12f}   ∂f/∂a = {ta.grad.item():.12f}   "
      f"∂f/∂b = {tb.grad.item():.12f}")

# The tensor engine does the same for whole arrays at once: one graph node per array op.
xs = Tensor(np.linspace(-1, 1, 5), requires_grad=True)
f(xs, Tensor(np.float64(-1.5))).sum().backward()
print("Tensor over 5 values of a, ∂(Σf)/∂a:", np.round(xs.grad, 6))
assert abs(out.data - t_out.item()) < 1e-12 and abs(a.grad - ta.grad.item()) < 1e-12
