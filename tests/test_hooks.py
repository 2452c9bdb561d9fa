"""Hooks: the values they see, the replacements they make, their removal, and their cost-free
absence.

PyTorch's answers for one scenario (tests/fixtures/hooks_init_cases.py) are stored in
hooks_init_golden.npz, so the comparison runs without torch; tests/test_torch_hooks_init.py
repeats it live against torch.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import Tensor, gradcheck, nn
from tinygrad_bn.hooks import RemovableHandle
from tinygrad_bn.nn.hooks import HookPack, HookUnpack

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOL = 1e-12


def load_cases():
    """tests/fixtures/hooks_init_cases.py, imported by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("hooks_init_cases",
                                                  FIXTURES / "hooks_init_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden() -> dict:
    with np.load(FIXTURES / "hooks_init_golden.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_every_hook_sees_and_replaces_what_torch_does(golden):
    cases = load_cases()
    inputs = {k[len("inputs__"):]: v for k, v in golden.items() if k.startswith("inputs__")}
    ours = cases.run_hooks("tinygrad_bn", inputs)
    expected = {k[len("hooks__"):]: v for k, v in golden.items() if k.startswith("hooks__")}
    assert set(ours) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-10, atol=TOL, err_msg=name)


# --- Tensor.register_hook ----------------------------------------------------------------------

def test_tensor_hook_sees_the_total_gradient_of_a_reused_node():
    x = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = x * 3.0
    seen = []
    h.register_hook(lambda grad: seen.append(grad.copy()))
    (h * h + h).sum().backward()  # ∂/∂h (h² + h) = 2h + 1, from three uses of h
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * h.data + 1)


def test_tensor_hook_replacement_flows_to_parents_and_leaves():
    x = Tensor([1.0, -1.0], requires_grad=True, dtype=np.float64)
    h = x * 2.0
    h.register_hook(lambda grad: Tensor(np.zeros(2)))   # a Tensor replacement is accepted
    (h.sum() + x.sum()).backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])   # only the direct path is left


def test_hooks_chain_in_registration_order_and_handles_remove():
    x = Tensor([1.0], requires_grad=True, dtype=np.float64)
    first = x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    (x * 1.0).sum().backward()
    assert x.grad.tolist() == [20.0]          # (1 + 1) · 10, not 1 · 10 + 1
    first.remove()
    first.remove()                            # harmless twice
    x.grad = None
    (x * 1.0).sum().backward()
    assert x.grad.tolist() == [10.0]


def test_a_handle_is_a_context_manager():
    layer = nn.Identity()
    calls = []
    with layer.register_forward_hook(lambda m, a, o: calls.append(1)) as handle:
        layer(Tensor([1.0]))
    layer(Tensor([1.0]))
    assert calls == [1] and isinstance(handle, RemovableHandle)


def test_bad_hooks_are_refused_with_a_clear_message():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="function"):
        nn.Identity().register_forward_hook("not a function")
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: np.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(3,\) for a tensor of shape \(2,\)"):
        (x * 1.0).sum().backward()


# --- module hooks ----------------------------------------------------------------------------

def test_forward_pre_hook_may_return_a_single_value():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda m, args: args[0] * 2)
    assert layer(Tensor([3.0])).tolist() == [6.0]


def test_full_backward_hook_with_two_inputs_reports_and_replaces_both():
    class Product(nn.Module):
        def forward(self, a, b):
            return a * b

    a = Tensor([2.0, 3.0], requires_grad=True, dtype=np.float64)
    b = Tensor([5.0, 7.0], requires_grad=True, dtype=np.float64)
    seen = {}

    def hook(module, grad_input, grad_output):
        seen["in"], seen["out"] = grad_input, grad_output
        return (grad_input[0] * 0, grad_input[1] * 2)

    product = Product()
    product.register_full_backward_hook(hook)
    out = product(a, b)
    (out * Tensor([1.0, 10.0], dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(seen["out"][0], [1.0, 10.0])
    np.testing.assert_array_equal(seen["in"][0], [5.0, 70.0])   # ∂L/∂a = g · b
    np.testing.assert_array_equal(seen["in"][1], [2.0, 30.0])   # ∂L/∂b = g · a
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_array_equal(b.grad, [4.0, 60.0])


def test_backward_hook_keeps_dtypes_and_skips_non_tensor_arguments():
    class Scale(nn.Module):
        def forward(self, x, factor):
            return x * factor

    x = Tensor([1.0, 2.0], requires_grad=True)   # float32
    seen = []
    layer = Scale()
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    layer(x, 3.0).sum().backward()
    assert seen[0][1] is None and seen[0][0].dtype == np.float32
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 3.0]


def test_backward_hooks_build_nothing_under_no_grad():
    from tinygrad_bn import no_grad
    layer = nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda m, gi, go: None)
    with no_grad():
        out = layer(Tensor([[1.0, 2.0]]))
    assert out.is_leaf


def test_without_hooks_a_call_adds_no_graph_nodes():
    layer = nn.Linear(2, 3)
    x = Tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True)
    plain = layer(x)
    handle = layer.register_full_backward_hook(lambda m, gi, go: None)
    hooked = layer(x)
    handle.remove()
    again = layer(x)
    assert hooked.op == "HookUnpack"
    assert plain.op == again.op == "LinearFunction"   # the hooks' nodes left with the hook
    np.testing.assert_array_equal(plain.data, hooked.data)


@pytest.mark.parametrize("shapes", [[(3,)], [(2, 3), (4,)], [(1, 1), (2, 2, 2), (5,)]])
def test_the_pack_and_unpack_ops_pass_gradcheck(shapes):
    rng = np.random.default_rng(len(shapes))
    inputs = [Tensor(rng.normal(size=s), requires_grad=True, dtype=np.float64) for s in shapes]

    def route(*tensors):
        packed = HookPack.apply(*tensors)
        pieces, start = [], 0
        for t in tensors:
            pieces.append(HookUnpack.apply(packed, start=start, shape=t.shape, dtype=t.dtype))
            start += t.numel()
        return sum((p * p).sum() * (i + 1.0) for i, p in enumerate(pieces))

    assert gradcheck(route, *inputs)
