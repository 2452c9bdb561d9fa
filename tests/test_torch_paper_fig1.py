"""paper-fig1's networks against PyTorch: the same initial weights and mini-batches through
torch.nn give the same training, step for step (skips without torch or scikit-learn)."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_bn import nn
from tinygrad_bn.experiments.datasets import load_task
from tinygrad_bn.experiments.training import NetSpec, build_network, train_network

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


def torch_copy(model: nn.Sequential):
    """The same layers in torch.nn, with the same initial weights."""
    layers = []
    for module in model:
        if isinstance(module, nn.Linear):
            layer = torch.nn.Linear(module.in_features, module.out_features,
                                    bias=module.bias is not None)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(module.weight.data.copy()))
                if module.bias is not None:
                    layer.bias.copy_(torch.from_numpy(module.bias.data.copy()))
            layers.append(layer)
        elif isinstance(module, nn.BatchNorm1d):
            layers.append(torch.nn.BatchNorm1d(module.num_features))   # same eps and momentum
        else:
            assert isinstance(module, nn.Sigmoid)
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "BN"])
def test_paper_network_trains_like_torch(batch_norm):
    task = load_task("digits")
    spec = NetSpec(hidden=(100, 100, 100), activation="sigmoid", batch_norm=batch_norm,
                   init_std=0.01)
    reference = torch_copy(build_network(spec, task.features, task.classes, seed=0))
    batches = []
    run = train_network(task, spec, lr=0.5, steps=150, seed=0, batch_size=60, eval_every=50,
                        on_step=lambda step, model, X, y, loss: batches.append((X, y)))

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for X, y in batches:
        loss = torch.nn.functional.cross_entropy(reference(torch.from_numpy(X)),
                                                 torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reference.eval()
    with torch.no_grad():
        logits = reference(torch.from_numpy(task.X_test)).numpy()
    assert len(batches) == 150
    torch_accuracy = float(np.mean(logits.argmax(axis=1) == task.y_test))
    assert abs(run.final["test_accuracy"] - torch_accuracy) <= 1 / len(task.y_test)
    ours = [p.data for p in run.model.parameters()]
    theirs = [p.detach().numpy() for p in reference.parameters()]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
