"""The scalar engine in 20 lines: build an expression, backpropagate, read the gradients."""
from tinygrad_bn import Value

x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")     # inputs
w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")    # weights
b = Value(6.8813735870195432, label="b")                    # bias

n = x1 * w1 + x2 * w2 + b        # a neuron's weighted sum
o = n.tanh()                     # its activation
o.backward()                     # ∂o/∂v for every v, by the chain rule

print(f"o = tanh(x1·w1 + x2·w2 + b) = {o.data:.4f}")
print(f"∂o/∂n = 1 − o² = {1 - o.data ** 2:.4f}   (what backward propagates into n)")
for v in (x1, w1, x2, w2, b):
    print(f"  ∂o/∂{v.label:<2} = {v.grad:+.4f}")
# ∂o/∂w1 = ∂o/∂n · x1: the weight's gradient is the upstream gradient times its input.
assert abs(w1.grad - (1 - o.data ** 2) * x1.data) < 1e-12
