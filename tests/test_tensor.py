"""Tensor semantics: dtypes, attributes, backward rules and clear errors for bad input."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor


# --- dtypes as in PyTorch ---------------------------------------------------------------------

def test_python_floats_become_float32_and_ints_int64():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3).dtype == np.int64
    assert Tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert Tensor([True, False]).dtype == np.bool_


def test_numpy_arrays_keep_their_dtype_and_are_copied():
    source = np.arange(3.0)
    t = Tensor(source)
    assert t.dtype == np.float64
    source[0] = 99.0
    assert t.data[0] == 0.0
    assert Tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_python_numbers_are_weak_scalars():
    f32 = Tensor([1.0, 2.0])
    assert (f32 * 2.0).dtype == np.float32
    assert (2.0 * f32).dtype == np.float32
    assert (f32 + 1).dtype == np.float32
    f64 = Tensor(np.array([1.0]))
    assert (f64 + 0.1).data[0] == 1.1  # full float64 precision, no float32 rounding
    assert (f64 + 0.1).dtype == np.float64


def test_mixed_dtypes_follow_numpy_promotion():
    out = Tensor(np.ones(2, np.float32)) + Tensor(np.ones(2, np.float64))
    assert out.dtype == np.float64
    assert (Tensor([1, 2]) * 0.5).dtype == np.float64  # as np.array([1, 2]) * 0.5


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        Tensor([1, 2], requires_grad=True)


def test_non_numeric_data_raises_type_error():
    with pytest.raises(TypeError, match="numeric"):
        Tensor("abc")
    with pytest.raises(TypeError, match="numeric"):
        Tensor([{"a": 1}])


# --- attributes ---------------------------------------------------------------------------------

def test_attributes():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.requires_grad and x.grad is None
    assert x.op == "" and x.parents == () and x.is_leaf
    y = x * 2.0
    assert y.op == "Mul" and y.parents[0] is x and not y.is_leaf
    assert x.T.shape == (3, 2)
    assert Tensor([[2.5]]).item() == 2.5
    assert isinstance(x.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.parents == ()


def test_comparisons_give_bool_tensors_without_grad_and_eq_keeps_identity():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (x < 2).data.tolist() == [True, False, False]
    assert (x >= 2).data.tolist() == [False, True, True]
    assert (x <= Tensor([1.0, 1.0, 1.0])).data.tolist() == [True, False, False]
    assert (x > 2.5).dtype == np.bool_ and not (x > 2.5).requires_grad
    assert x.eq(Tensor([1.0, 0.0, 3.0])).data.tolist() == [True, False, True]
    y = Tensor([1.0, 2.0, 3.0])
    assert x != y and x == x
    assert len({x, y, x}) == 2


# --- backward -----------------------------------------------------------------------------------

def test_backward_on_a_one_element_tensor_seeds_one():
    x = Tensor([3.0], requires_grad=True)
    (x * x).backward()
    assert x.grad.tolist() == [6.0]


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for one-element"):
        (x * 2.0).backward()
    (x * 2.0).backward(gradient=np.array([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(np.ones(3))


def test_backward_without_any_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2.0).backward()


def test_leaf_gradients_accumulate_until_zeroed_and_intermediates_do_not():
    x = Tensor([2.0], requires_grad=True)
    h = x * x
    y = h * 3.0
    y.backward()
    y.backward()  # the graph is kept: a second pass adds the same gradient again
    assert x.grad.tolist() == [24.0]  # 2 · (3 · 2x)
    assert h.grad.tolist() == [3.0]   # intermediates hold the latest pass only
    x.zero_grad()
    assert x.grad is None
    y.backward()
    assert x.grad.tolist() == [12.0]


def test_grads_of_zero_dimensional_tensors_are_arrays():
    x = Tensor(np.float64(2.0), requires_grad=True)
    y = x * x
    (y * 3.0).backward()
    (y * 3.0).backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad == 24.0
    assert type(y.grad) is np.ndarray


def test_every_node_keeps_its_grad_after_backward():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a.exp()
    c = b.sum()
    c.backward()
    np.testing.assert_allclose(b.grad, [1.0, 1.0])
    np.testing.assert_allclose(c.grad, 1.0)


def test_leaf_grads_never_share_memory():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad += 100.0
    assert y.grad.tolist() == [1.0, 1.0]


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2.0
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.parents == ()


def _in_thread(target, *args):
    """Run target(*args) in a new thread; return the thread, and a list that will hold its
    exception (an assertion failing in a thread must fail the test)."""
    errors = []

    def run():
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _join(*threads_and_errors):
    for thread, errors in threads_and_errors:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a thread did not finish (deadlock?)"
        if errors:
            raise errors[0]


def test_grad_mode_is_per_thread_through_the_interleaving_a_in_b_in_a_out_b_out():
    # The steps are forced into the order A enters no_grad, B enters, A leaves, B leaves. With a
    # process-wide flag A restores "off" when it leaves (B had turned it off again), and B then
    # restores A's saved "off" too: grad mode stayed off for good.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def thread_a():
        with tg.no_grad():
            a_in.set()
            assert b_in.wait(10)
            seen["A inside"] = tg.is_grad_enabled()
        seen["A after"] = tg.is_grad_enabled()
        a_out.set()

    def thread_b():
        assert a_in.wait(10)
        seen["B before"] = tg.is_grad_enabled()
        with tg.no_grad():
            b_in.set()
            assert a_out.wait(10)
            seen["B inside"] = tg.is_grad_enabled()
        seen["B after"] = tg.is_grad_enabled()

    _join(_in_thread(thread_a), _in_thread(thread_b))
    assert seen == {"A inside": False, "B before": True, "B inside": False, "A after": True,
                    "B after": True}
    assert tg.is_grad_enabled()
    x = Tensor([1.0], requires_grad=True)
    assert (x * 2.0).requires_grad  # and this thread still builds graphs


def test_no_grad_in_one_thread_does_not_stop_graph_building_in_another():
    inside, built = threading.Event(), threading.Event()
    results = {}

    def evaluator():
        with tg.no_grad():
            inside.set()
            assert built.wait(10)  # stay inside until the other thread has built its graph
            results["evaluator"] = (Tensor([1.0], requires_grad=True) * 2.0).requires_grad

    def trainer():
        assert inside.wait(10)
        x = Tensor([3.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        results["trainer"] = (y.requires_grad, x.grad.tolist())
        built.set()

    _join(_in_thread(evaluator), _in_thread(trainer))
    assert results == {"evaluator": False, "trainer": (True, [6.0])}


def test_integer_indexing_with_repeats_accumulates():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 1.0]


def test_reshape_accepts_a_tuple_or_numbers_and_transpose_permute_match_numpy():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.reshape(6, 4).shape == x.reshape((6, 4)).shape == (6, 4)
    assert x.reshape(-1).shape == (24,)
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(x.data, 0, 2))
    np.testing.assert_array_equal(x.permute(1, 2, 0).data, np.transpose(x.data, (1, 2, 0)))


# --- errors that name the problem ---------------------------------------------------------------

def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones(4))


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        Tensor(np.ones(3)) * Tensor(np.ones(2))


def test_log_of_a_negative_is_nan_with_a_warning_not_a_crash():
    with pytest.warns(RuntimeWarning):
        out = Tensor([-1.0]).log()
    assert np.isnan(out.data[0])


def test_bad_reshape_permute_and_axis_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="not an ordering"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(TypeError, match="number or Tensor exponent"):
        x ** "2"


# --- constructors and seeding -------------------------------------------------------------------

def test_constructors_and_manual_seed():
    assert Tensor.zeros((2, 3)).data.sum() == 0 and Tensor.zeros(4).shape == (4,)
    assert Tensor.ones((2,), dtype=np.float64).dtype == np.float64
    tg.manual_seed(7)
    a = Tensor.randn((3, 3), requires_grad=True)
    tg.manual_seed(7)
    b = Tensor.randn((3, 3))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32 and a.requires_grad
    u = Tensor.uniform((1000,), -2.0, 3.0)
    assert u.data.min() >= -2.0 and u.data.max() < 3.0
    r = Tensor.rand(1000)
    assert 0.0 <= r.data.min() and r.data.max() < 1.0
    with pytest.raises(ValueError, match="low < high"):
        Tensor.uniform((2,), 1.0, 1.0)
    with pytest.raises(ValueError, match="non-negative integer"):
        tg.manual_seed(-1)


def test_function_apply_wraps_arrays_and_numbers_as_constant_inputs():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = tg.ops.Mul.apply(x, np.array([3.0, 4.0], dtype=np.float32))
    z = tg.ops.Add.apply(2.0, y)
    assert all(isinstance(p, Tensor) for p in y.parents + z.parents)
    assert not z.parents[0].requires_grad and z.parents[1] is y
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
