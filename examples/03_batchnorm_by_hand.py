"""The course notes' worked example: Batch Normalization of an m = 4 batch, by hand.

Students (cgpa, iq) = (7, 70), (8, 80), (9, 90), (6, 60) go through a scalar BatchNorm. Every
μ_B, σ²_B, ẑ and y below is a Value in a graph, so backward gives each one's gradient.
"""
from tinygrad_bn import Value, scalar

batch = [[Value(7.0), Value(70.0)], [Value(8.0), Value(80.0)],
         [Value(9.0), Value(90.0)], [Value(6.0), Value(60.0)]]
gamma = [Value(1.0, label="γ_cgpa"), Value(1.0, label="γ_iq")]   # scale, starts at 1
beta = [Value(0.0, label="β_cgpa"), Value(0.0, label="β_iq")]    # shift, starts at 0
out = scalar.batch_norm(batch, gamma, beta, eps=1e-5)

# In this batch iq is exactly 10 × cgpa, so both columns normalise to the same ẑ: BatchNorm
# removes each feature's location and scale.
for c, name in enumerate(("cgpa", "iq")):
    column = [row[c].data for row in batch]
    mean = sum(column) / 4
    var = sum((x - mean) ** 2 for x in column) / 4
    print(f"{name}: μ_B = {mean:g}, σ²_B = {var:g} (biased: divides by m = 4)")
    print("   ẑ = (x − μ_B)/√(σ²_B + ε):", [f"{row[c].data:+.4f}" for row in out])

# A toy loss so that gradients flow: L = Σᵢ wᵢ·y_cgpa,i, with weights standing in for the
# rest of a network.
weights = [1.0, -2.0, 0.5, 3.0]
loss = sum((w * row[0] for w, row in zip(weights, out)), Value(0.0))
loss.backward()
print(f"\nL = Σ wᵢ·yᵢ = {loss.data:.4f}")
print(f"∂L/∂γ_cgpa = Σ wᵢ·ẑᵢ = {gamma[0].grad:+.4f}   ∂L/∂β_cgpa = Σ wᵢ = {beta[0].grad:+.4f}")
print("∂L/∂x (cgpa):", [f"{row[0].grad:+.4f}" for row in batch],
      f"(sum {sum(row[0].grad for row in batch):+.1e}: shifting every x changes nothing)")

lr = 0.1
new_gamma = gamma[0].data - lr * gamma[0].grad
new_beta = beta[0].data - lr * beta[0].grad
print(f"\nOne SGD step, η = {lr}:")
print(f"  γ ← γ − η·∂L/∂γ = {gamma[0].data:g} − {lr}·({gamma[0].grad:+.4f}) = {new_gamma:.4f}")
print(f"  β ← β − η·∂L/∂β = {beta[0].data:g} − {lr}·({beta[0].grad:+.4f}) = {new_beta:.4f}")
