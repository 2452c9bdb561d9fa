"""`tinygrad_bn.jit`: a compiled step computes exactly what the eager step computes, and refuses
what it cannot replay.

Every comparison runs the same step twice from the same seed — once eagerly, once through
`jit` — on the same sequence of batches, then compares every parameter, running statistic,
optimizer state and gradient. The compiled run replays from its fourth call on, so most of the
steps compared are replays.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn, optim
from tinygrad_bn.jit import JitError
from tinygrad_bn.random import generator


def _mlp(sizes: tuple, activation: type, dropout: float = 0.0) -> nn.Sequential:
    layers: list = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.BatchNorm1d(fan_out), activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


class Run:
    """A model, its optimizer and loss, and a training step over them (as users write one)."""

    def __init__(self, sizes, dtype, loss="bce", optimizer="sgd", activation=nn.ReLU,
                 dropout=0.0, seed=0):
        tg.manual_seed(seed)
        self.model = _mlp(sizes, activation, dropout).to(dtype)
        params = self.model.parameters()
        self.optimizer = (optim.SGD(params, lr=0.1, momentum=0.9) if optimizer == "sgd"
                          else optim.Adam(params, lr=1e-2))
        self.loss_fn = nn.BCEWithLogitsLoss() if loss == "bce" else nn.CrossEntropyLoss()

    def step(self, x, y):
        loss = self.loss_fn(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


def _batches(sizes, batch, dtype, loss, count, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.standard_normal((batch, sizes[0])).astype(dtype)
        if loss == "bce":
            y = Tensor((rng.random((batch, 1)) < 0.5).astype(dtype))
        else:
            y = Tensor(rng.integers(0, sizes[-1], batch))
        out.append((Tensor(x), y))
    return out


def _optimizer_state(run: Run) -> list:
    arrays = []
    for state in run.optimizer.state.values():
        values = state.values() if isinstance(state, dict) else [state]
        arrays += [np.asarray(v) for v in values]
    return arrays


def _compare(eager: Run, compiled: Run, exact: bool) -> None:
    ours, theirs = eager.model.state_dict(), compiled.model.state_dict()
    pairs = [(key, ours[key], theirs[key]) for key in ours]
    pairs += [(f"optimizer state {i}", a, b)
              for i, (a, b) in enumerate(zip(_optimizer_state(eager), _optimizer_state(compiled)))]
    pairs += [(f"{name}.grad", p.grad, q.grad) for (name, p), q in
              zip(eager.model.named_parameters(), compiled.model.parameters())]
    for key, a, b in pairs:
        if a is None or b is None:      # a gradient that neither step kept
            assert a is b, key
        elif exact:
            assert np.array_equal(a, b), f"{key} differs: max |Δ| {np.max(np.abs(a - b))}"
        else:
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg=key)


CASES = {
    # name: (sizes, batch, loss, optimizer, activation, steps)
    "placement": ((2, 16, 16, 1), 32, "bce", "sgd", nn.ReLU, 100),
    "medium (smaller)": ((64, 32, 32, 10), 16, "ce", "sgd", nn.ReLU, 20),
    "paper setup (smaller)": ((49, 20, 20, 20, 10), 12, "ce", "sgd", nn.Sigmoid, 20),
    "adam": ((8, 16, 16, 3), 16, "ce", "adam", nn.ReLU, 20),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_steps_leave_what_eager_steps_leave(case, dtype):
    sizes, batch, loss, optimizer, activation, steps = CASES[case]
    eager = Run(sizes, dtype, loss, optimizer, activation)
    compiled = Run(sizes, dtype, loss, optimizer, activation)
    fast = tg.jit(compiled.step)
    for x, y in _batches(sizes, batch, dtype, loss, steps):
        expected = eager.step(x, y)
        got = fast(x, y)
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-6)
    assert fast.replays == steps - 3 and fast.traces == 1
    _compare(eager, compiled, exact=dtype == np.float64)


def test_dropout_draws_advance_the_seeded_generator_as_eager_steps_do():
    sizes = (6, 12, 12, 1)
    eager = Run(sizes, np.float64, dropout=0.3)
    after_eager = None
    batches = _batches(sizes, 10, np.float64, "bce", 8)
    tg.manual_seed(5)
    for x, y in batches:
        eager.step(x, y)
    after_eager = generator().random()
    compiled = Run(sizes, np.float64, dropout=0.3)
    fast = tg.jit(compiled.step)
    tg.manual_seed(5)
    for x, y in batches:
        fast(x, y)
    assert fast.replays == 5
    assert generator().random() == after_eager
    _compare(eager, compiled, exact=True)
    assert "generator().random" in fast.program


def test_the_program_is_one_numpy_call_per_line_in_three_sections():
    run = Run((2, 16, 16, 1), np.float32)
    fast = tg.jit(run.step)
    assert "not compiled yet" in fast.program
    for x, y in _batches((2, 16, 16, 1), 32, np.float32, "bce", 4):
        fast(x, y)
    text = fast.program
    sections = [line for line in text.splitlines() if line.startswith("# ---")]
    assert sections == ["# --- forward ---", "# --- backward ---", "# --- update ---"]
    calls = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(line.count("np.") + line.count("[") >= 1 for line in calls)
    assert any(line.startswith("np.matmul(x, ") for line in calls)       # first layer, x Wᵀ
    assert any(line.startswith("np.add(stats, scaled, out=stats)") for line in calls)
    assert not any("b_1_running_mean" in line for line in calls)   # running stats: all at once
    assert any("out=p_0_weight" in line for line in calls)                # the SGD update


def test_no_grad_parts_of_a_step_are_replayed():
    sizes = (4, 8, 8, 1)
    results = []
    for compile_it in (False, True):
        run = Run(sizes, np.float64)
        seen = []

        def step(x, y):
            loss = run.step(x, y)
            with tg.no_grad():
                seen_logits = run.model(x)      # a forward without a graph, BN counts it too
            return loss + seen_logits.sum() * 0.0

        callable_ = tg.jit(step) if compile_it else step
        for x, y in _batches(sizes, 8, np.float64, "bce", 6):
            seen.append(callable_(x, y).item())
        results.append((seen, run.model.state_dict()))
    (a, state_a), (b, state_b) = results
    assert a == b
    assert all(np.array_equal(state_a[k], state_b[k]) for k in state_a)


def test_a_new_batch_shape_is_traced_again_and_kept():
    sizes = (3, 8, 1)
    eager, compiled = Run(sizes, np.float64), Run(sizes, np.float64)
    fast = tg.jit(compiled.step)
    rng = np.random.default_rng(0)
    for i in range(16):
        batch = 5 if i % 4 == 3 else 8        # a smaller last batch, as a DataLoader gives
        x = Tensor(rng.standard_normal((batch, 3)))
        y = Tensor((rng.random((batch, 1)) < 0.5).astype(np.float64))
        assert fast(x, y).item() == eager.step(x, y).item()
    assert fast.traces == 2                  # one program per batch shape
    _compare(eager, compiled, exact=True)


def test_a_new_input_dtype_and_a_changed_learning_rate_are_traced_again():
    sizes = (3, 8, 1)
    eager, compiled = Run(sizes, np.float64), Run(sizes, np.float64)
    fast = tg.jit(compiled.step)
    batches = _batches(sizes, 8, np.float64, "bce", 12)
    for i, (x, y) in enumerate(batches):
        if i == 6:
            for run in (eager, compiled):
                run.optimizer.param_groups[0]["lr"] = 0.01
        assert fast(x, y).item() == eager.step(x, y).item()
    assert fast.traces == 2
    _compare(eager, compiled, exact=True)


def test_a_branch_on_tensor_values_is_caught_when_the_two_traces_differ():
    run = Run((2, 4, 1), np.float64)

    def step(x, y):
        loss = run.loss_fn(run.model(x), y)
        if (x.data.sum() > 0):           # value-dependent control flow
            loss = loss * 2.0
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        return loss

    fast = tg.jit(step)
    y = Tensor(np.ones((4, 1)))
    fast(Tensor(np.ones((4, 2))), y)             # eager
    fast(Tensor(np.ones((4, 2))), y)             # first recording: the `if` is taken
    with pytest.raises(JitError, match="control flow depends on tensor values"):
        fast(Tensor(-np.ones((4, 2))), y)        # second recording: it is not


def test_a_branch_that_flips_after_compiling_is_caught_by_its_guard():
    run = Run((2, 4, 1), np.float64)

    def step(x, y):
        loss = run.loss_fn(run.model(x), y)
        if (x.data.sum() > 0):
            loss = loss * 2.0
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        return loss

    fast = tg.jit(step)
    y = Tensor(np.ones((4, 1)))
    for _ in range(4):
        fast(Tensor(np.ones((4, 2))), y)
    assert fast.replays == 1 and "check bool(" in fast.program
    with pytest.raises(JitError, match="came out False where the traced step had True"):
        fast(Tensor(-np.ones((4, 2))), y)


def test_reading_a_value_as_a_python_number_inside_the_step_is_refused():
    run = Run((2, 4, 1), np.float64)

    def step(x, y):
        loss = run.step(x, y)
        print(float(loss.data))
        return loss

    fast = tg.jit(step)
    x, y = Tensor(np.ones((4, 2))), Tensor(np.ones((4, 1)))
    fast(x, y)
    with pytest.raises(JitError, match="reads a tensor's value as a Python number"):
        fast(x, y)


def test_hooks_are_refused():
    run = Run((2, 4, 1), np.float64)
    handle = run.model[0].register_forward_hook(lambda module, args, out: None)
    fast = tg.jit(run.step)
    x, y = Tensor(np.ones((4, 2))), Tensor(np.ones((4, 1)))
    fast(x, y)
    with pytest.raises(JitError, match="has hooks registered"):
        fast(x, y)
    handle.remove()

    def step(x, y):
        h = run.model(x)
        h.register_hook(lambda grad: grad)
        loss = run.loss_fn(h, y)
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        return loss

    fast = tg.jit(step)
    fast(x, y)
    with pytest.raises(JitError, match="register_hook"):
        fast(x, y)


def test_state_the_step_cannot_see_is_refused():
    class Hidden:
        def __init__(self):
            self.inner = type("Box", (), {})()
            self.inner.run = Run((2, 4, 1), np.float64)

    hidden = Hidden()

    def step(x, y):
        return hidden.inner.run.step(x, y)      # two attributes deep: not looked at

    fast = tg.jit(step)
    x, y = Tensor(np.ones((4, 2))), Tensor(np.ones((4, 1)))
    fast(x, y)
    with pytest.raises(JitError, match="belongs to no model or optimizer"):
        fast(x, y)          # the first recording: BatchNorm writes its running mean


def test_an_array_made_without_a_traced_operand_and_written_is_refused():
    run = Run((2, 4, 1), np.float64)

    def step(x, y):
        logits = run.model(x)
        scratch = np.zeros(logits.shape)        # numpy cannot report what happens to it …
        scratch += logits.data                  # … after this traced write into it
        loss = run.loss_fn(logits + Tensor(scratch) * 0.0, y)
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        return loss

    fast = tg.jit(step)
    x, y = Tensor(np.ones((4, 2))), Tensor(np.ones((4, 1)))
    fast(x, y)
    with pytest.raises(JitError, match="made without a traced operand"):
        fast(x, y)


def test_indexing_gradients_are_followed():
    sizes = (4, 8, 2)
    results = []
    for compile_it in (False, True):
        run = Run(sizes, np.float64)

        def step(x, y):
            out = run.model(x)
            loss = ((out[:, 0] - y) ** 2).mean() + out[[0, 0, 1], 1].sum() * 0.01
            run.optimizer.zero_grad()
            loss.backward()
            run.optimizer.step()
            return loss

        callable_ = tg.jit(step) if compile_it else step
        rng = np.random.default_rng(0)
        losses = [callable_(Tensor(rng.standard_normal((6, 4))),
                            Tensor(rng.standard_normal(6))).item() for _ in range(8)]
        results.append((losses, run.model.state_dict()))
    (a, state_a), (b, state_b) = results
    assert a == b and all(np.array_equal(state_a[k], state_b[k]) for k in state_a)


def test_inputs_must_be_tensors():
    fast = tg.jit(lambda x: x)
    with pytest.raises(TypeError, match="takes Tensors"):
        fast(np.ones(3))


def test_train_compile_gives_the_numbers_of_the_eager_run():
    from click.testing import CliRunner

    from tinygrad_bn.cli import main as cli

    runner = CliRunner()
    arguments = ["train", "--epochs", "6", "--json", "--momentum", "0.9", "--seed", "2"]
    eager = runner.invoke(cli, arguments)
    compiled = runner.invoke(cli, arguments + ["--compile"])
    assert eager.exit_code == 0 and compiled.exit_code == 0, compiled.output
    assert compiled.output == eager.output
    refused = runner.invoke(cli, ["train", "--compile", "--monitor", "somewhere"])
    assert refused.exit_code == 2
    assert "--compile and --monitor cannot be combined" in refused.output


def test_plain_sgd_updates_every_parameter_at_once_in_one_flat_buffer():
    sizes = (3, 8, 8, 1)
    runs = [Run(sizes, np.float64), Run(sizes, np.float64)]
    for run in runs:
        run.optimizer = optim.SGD(run.model.parameters(), lr=0.05)    # no momentum
    eager, compiled = runs
    fast = tg.jit(compiled.step)
    batches = _batches(sizes, 8, np.float64, "bce", 12)
    for i, (x, y) in enumerate(batches):
        if i == 8:   # a parameter given a new array leaves the flat buffer: traced again
            for run in runs:
                run.model[0].weight.data = run.model[0].weight.data.copy()
        assert fast(x, y).item() == eager.step(x, y).item()
        if i == 5:
            assert "np.subtract(params, scaled, out=params)" in fast.program
            bases = {p.data.base is not None and id(p.data.base)
                     for p in compiled.model.parameters()}
            assert len(bases) == 1 and False not in bases     # views of one buffer
    assert fast.traces == 2
    _compare(eager, compiled, exact=True)


def test_programs_compiled_before_the_parameters_moved_are_not_replayed():
    sizes = (3, 6, 1)
    runs = [Run(sizes, np.float64), Run(sizes, np.float64)]
    eager, compiled = runs
    fast = tg.jit(compiled.step)
    batches = _batches(sizes, 8, np.float64, "bce", 16)
    for i, (x, y) in enumerate(batches):
        momentum = 0.9 if i < 4 or i >= 8 else 0.0   # momentum, none (flat SGD), momentum again
        for run in runs:
            run.optimizer.param_groups[0]["momentum"] = momentum
        assert fast(x, y).item() == eager.step(x, y).item()
    _compare(eager, compiled, exact=True)


@pytest.mark.parametrize("name", ["placement", "medium", "paper"])
def test_the_benchmark_configurations_full_size_compiled_equal_eager_in_float32(name):
    from tinygrad_bn import benchmark

    config = next(c for c in benchmark.CONFIGS if c.name == name)
    state, (x, target) = benchmark.initial_state(config), benchmark.make_batch(config)
    eager = benchmark.TinygradMLP(config, state, x, target)
    compiled = benchmark.CompiledMLP(config, state, x, target)
    assert [eager.step() for _ in range(6)] == [compiled.step() for _ in range(6)]
    assert compiled.compiled.replays == 3
    ours, theirs = eager.state_dict(), compiled.state_dict()
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key


def _step_zero_grad_last(run: Run):
    """The step as the benchmark writes it: zero_grad after the update, so no .grad is kept."""
    def step(x, y):
        loss = run.loss_fn(run.model(x), y)
        loss.backward()
        run.optimizer.step()
        run.optimizer.zero_grad()
        return loss
    return step


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", ["placement", "paper setup (smaller)"])
def test_running_statistics_and_plain_sgd_updated_in_flat_buffers_as_eager(case, dtype):
    sizes, batch, loss, _, activation, _ = CASES[case]
    runs = [Run(sizes, dtype, loss, activation=activation) for _ in range(2)]
    for run in runs:
        run.optimizer = optim.SGD(run.model.parameters(), lr=0.05)       # plain SGD
    eager, compiled = runs
    fast = tg.jit(_step_zero_grad_last(compiled))
    eager_step = _step_zero_grad_last(eager)
    for i, (x, y) in enumerate(_batches(sizes, batch, dtype, loss, 100)):
        if i == 60:   # a running statistic given a new array leaves its flat buffer: traced again
            for run in runs:
                run.model[1].running_var.data = run.model[1].running_var.data.copy()
        expected, got = eager_step(x, y), fast(x, y)
        np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-6)
        if i == 50:
            calls = [line for line in fast.program.splitlines() if not line.startswith("#")]
            assert [line.split("  #")[0].strip() for line in calls[-6:]] == [
                "np.add(counts, 1, out=counts)",             # num_batches_tracked
                "np.multiply(stats, decay, out=stats)",
                "np.multiply(rates, batch_stats, out=scaled)",
                "np.add(stats, scaled, out=stats)",
                "np.multiply(0.05, grads, out=grads)",       # no .grad kept: scaled in place
                "np.subtract(params, grads, out=params)"]
            for kind in (dtype, np.int64):      # running statistics; counters
                buffers = [b.data for b in compiled.model.buffers() if b.dtype == kind]
                assert len({id(b.base) for b in buffers}) == 1 and buffers[0].base is not None
    assert fast.traces == 2 and all(p.grad is None for p in compiled.model.parameters())
    _compare(eager, compiled, exact=dtype == np.float64)
    # Evaluation mode reads the running statistics where the compiled step left them.
    x = _batches(sizes, batch, dtype, loss, 1, seed=7)[0][0]
    eager.model.eval(), compiled.model.eval()
    np.testing.assert_array_equal(compiled.model(x).data, eager.model(x).data)


def test_a_step_compiled_before_another_moved_the_tensors_it_reads_is_traced_again():
    # An evaluation step compiled first reads the parameters' and running statistics' arrays;
    # compiling the training step then moves them into flat buffers. The evaluation step must
    # notice (its arrays are no longer the tensors'), not replay the stale ones.
    sizes = (4, 8, 2)
    runs = [Run(sizes, np.float64, "ce") for _ in range(2)]
    for run in runs:
        run.optimizer = optim.SGD(run.model.parameters(), lr=0.05)

    def evaluation(run):
        def step(x, y):
            with tg.no_grad():
                return run.loss_fn(run.model(x), y)
        return step

    eager, compiled = runs
    fast_eval, fast_train = tg.jit(evaluation(compiled)), tg.jit(_step_zero_grad_last(compiled))
    eager_eval, eager_train = evaluation(eager), _step_zero_grad_last(eager)
    (x, y), = _batches(sizes, 6, np.float64, "ce", 1)
    for run in runs:
        run.model.eval()
    for _ in range(4):
        assert fast_eval(x, y).item() == eager_eval(x, y).item()
    for run in runs:
        run.model.train()
    for _ in range(6):
        assert fast_train(x, y).item() == eager_train(x, y).item()
    for run in runs:
        run.model.eval()
    for _ in range(5):
        assert fast_eval(x, y).item() == eager_eval(x, y).item()
    assert fast_eval.traces == 2


def test_inputs_read_in_place_or_copied_by_their_layout_give_the_eager_numbers():
    # Replay reads a plain (C-ordered) input where the caller has it and copies any other
    # layout first; either way each step computes what eager does, and the inputs stay as given.
    sizes, batch, loss = (8, 16, 16, 3), 16, "ce"
    eager, compiled = Run(sizes, np.float64, loss), Run(sizes, np.float64, loss)
    fast = tg.jit(compiled.step)
    for i, (x, y) in enumerate(_batches(sizes, batch, np.float64, loss, 12)):
        values = x.numpy()
        layouts = [values, np.asfortranarray(values),
                   np.repeat(values, 2, axis=1)[:, ::2]]      # a strided view, not contiguous
        given = Tensor(layouts[i % 3])
        before = given.numpy().copy()
        expected, got = eager.step(x, y), fast(given, y)
        assert got.item() == expected.item(), f"step {i}"
        assert np.array_equal(given.numpy(), before)
    assert fast.replays == 9
    _compare(eager, compiled, exact=True)
