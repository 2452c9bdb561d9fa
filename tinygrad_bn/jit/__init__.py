"""`jit`: trace a training step once, replay it as a flat numpy program.

``fast = tinygrad_bn.jit(step)`` wraps ``step(x, y) -> loss`` (Tensors in, the loss Tensor out,
the model, loss and optimizer taken from the enclosing scope), as tinygrad's ``TinyJit`` wraps
a function of its kernels. The first call runs eagerly (optimizers create their state); the next
two run eagerly *and record* every numpy call that the step makes — forward, backward and the
optimizer update — and must record the same program; from the fourth call on, that program is
replayed on the new inputs: one numpy call after another into buffers allocated once, with no
Tensor, no graph and no topological sort. ``fast.program`` is the recorded program as text, one
numpy call per line: what a training step computes, flattened (docs/performance.md shows one).

How the recording works — every op's math stays written once, in ops.py and nn/:
during a recorded call the step's inputs, every parameter and buffer of the models the step
can see, and every array in their optimizers' state are swapped for `_Traced` views of the same
memory. `_Traced` is an ndarray subclass that numpy asks first (``__array_ufunc__``,
``__array_function__``) whenever it takes part in an operation; it runs the operation on plain
arrays, notes the call, and wraps the result, so everything computed from a traced array is
traced too. The engine runs unchanged; only the arrays it works on report what happens to them.

What the replay keeps from eager execution, exactly:
* BatchNorm's running statistics and ``num_batches_tracked`` (updated by recorded in-place calls);
* SGD momentum and Adam moments (optimizer state is traced; Adam keeps its step count in an
  array for this reason), the gradients left in ``.grad`` at the end of the step;
* dropout: random draws are recorded as calls of the library's generator, so replay draws from
  `tinygrad_bn.random.generator` and the seeded stream advances as in eager execution;
* ``no_grad`` parts and checks on values (``if (x < 0).any()``): a truth test of a traced array
  is recorded as a *guard* that the replay re-evaluates, raising `JitError` if it goes the other
  way.

What it refuses, with `JitError` (a RuntimeError):
* the two recorded calls disagree (different calls, or an array that is neither an input nor
  state changing between them): Python control flow that depends on tensor values;
* a tensor value turned into a Python number inside the step (``float(loss)``, ``.item()``,
  BatchNorm's ``momentum=None``): the replay runs no Python, so it could not redo what the number
  was used for — return the tensor and read it after the call;
* hooks on the models or on any tensor of the step (they are Python code the replay would skip);
* the step changing an array that belongs to no model or optimizer it can see.

Plain SGD (no momentum or decay) is replayed as two calls on flat buffers: compiling moves every
parameter, once, into one buffer (``p.data`` becomes a view of it, values unchanged); giving a
parameter a new array afterwards makes the step trace again. BatchNorm's running statistics and
``num_batches_tracked`` move likewise (one buffer each), and their updates, which nothing in a
training step reads, run at the end of the step for every layer at once: four calls in all
instead of seven per BatchNorm layer, with the same arithmetic element by element.

A new input shape or dtype, another training/eval mode or changed optimizer options
(``lr``, momentum…) are not errors: the step is traced again for them (three eager calls), and
each traced variant is kept, so a smaller last batch per epoch is traced once.

The package: recording.py (traced arrays and the recorder) → program.py (compiling and replaying)
→ step.py (the decorator: when to record, compare, replay).

Read next: docs/performance.md ("The compiled step").
"""
from __future__ import annotations

from .recording import JitError
from .step import CompiledStep, jit

__all__ = ["jit", "CompiledStep", "JitError"]
