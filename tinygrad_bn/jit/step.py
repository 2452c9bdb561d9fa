"""`jit` and `CompiledStep`: three eager calls (two recorded and compared), then replays.

Read next: ../../docs/performance.md, "The compiled step".
"""
from __future__ import annotations

import inspect
import operator
from typing import Any, Callable

import numpy as np

from ..graph import topological_order
from ..nn.module import Module
from ..optim.optimizer import Optimizer
from ..random import generator, set_generator
from ..tensor import Tensor
from .program import FlatParameters, Program
from .recording import JitError, Recorder, RecordingGenerator, Traced, refs_in

__all__ = ["jit", "CompiledStep"]

# --- what the step can see: models and optimizers ---------------------------------------------

def _visible_objects(step: Callable, depth: int = 0) -> list:
    """Modules and optimizers that ``step`` names: closure variables, globals, the object of a
    bound method, (one level down) attributes and list items of those, and what the functions
    it names name in turn (two levels)."""
    found: list = []
    roots = []
    function = step
    if inspect.ismethod(step):
        roots.append(step.__self__)
        function = step.__func__
    if inspect.isfunction(function):
        try:
            names = inspect.getclosurevars(function)
        except ValueError:  # a closure cell not filled yet
            names = None
        if names is not None:
            roots += list(names.nonlocals.values()) + list(names.globals.values())
    for root in roots:
        if isinstance(root, (Module, Optimizer)):
            found.append(root)
            continue
        if inspect.isfunction(root) and root is not step and depth < 2:
            found += _visible_objects(root, depth + 1)   # a helper the step calls
            continue
        if inspect.ismodule(root) or inspect.isclass(root) or callable(root):
            continue
        if isinstance(root, (list, tuple)):
            members = list(root)
        elif isinstance(root, dict):
            members = list(root.values())
        else:
            members = list(vars(root).values()) if hasattr(root, "__dict__") else []
        found += [m for m in members if isinstance(m, (Module, Optimizer))]
    unique: dict = {}
    for obj in found:
        unique.setdefault(id(obj), obj)
    return list(unique.values())


def _check_no_hooks(modules: list) -> None:
    for module in modules:
        for name, sub in module.named_modules():
            if sub.has_hooks():
                raise JitError(f"{type(sub).__name__} {name or '(the model)'} has hooks "
                               "registered: a compiled step replays numpy calls and would skip "
                               "them. Remove the hooks (or the monitor), or train without jit.")
        for name, param in module.named_parameters():
            if param.has_hooks():
                raise JitError(f"parameter {name} has a tensor hook: a compiled step would skip "
                               "it. Remove it, or train without jit.")


_TRAINING = operator.attrgetter("training")


class _Watched:
    """The models and optimizers a step names, found once, and what a program depends on."""

    def __init__(self, objects: list) -> None:
        self.objects = objects
        models = [o for o in objects if isinstance(o, Module)]
        self.modules = [m for model in models for m in model.modules()]
        self.params = [p for model in models for p in model.parameters()]
        self.optimizers = [o for o in objects if isinstance(o, Optimizer)]
        # Grouped once by the has_hooks function that answers (one per class, normally
        # Module's and Tensor's): mapping one function over many objects is the cheapest
        # Python-level loop, and this runs before every replay.
        groups: dict = {}
        for obj in self.modules + self.params:
            groups.setdefault(type(obj).has_hooks, []).append(obj)
        self.hook_tests = list(groups.items())

    def settings(self) -> tuple:
        """Training modes, whether any hook is registered, and optimizer options: a program
        traced under other settings does not apply (a new one is traced)."""
        hooks = any([any(map(test, objects)) for test, objects in self.hook_tests])
        options = tuple([tuple([v for k, v in group.items() if k != "params"])
                         for optimizer in self.optimizers for group in optimizer.param_groups])
        return tuple(map(_TRAINING, self.modules)), hooks, options


# --- the decorator ------------------------------------------------------------------------------

class CompiledStep:
    """A training step that runs as a recorded numpy program after three eager calls.

    Call it like the step. Attributes: ``program`` (the text of the latest compiled program),
    ``traces`` (how many programs were compiled), ``replays`` (calls that ran compiled).
    """

    def __init__(self, step: Callable) -> None:
        self.step = step
        self.traces = 0
        self.replays = 0
        self._variants: dict = {}   # key → [eager calls so far, recorder A, Program]
        self._program: Program | None = None
        self._watched: _Watched | None = None
        self._flat = FlatParameters()
        self._flat_buffers = (FlatParameters(), FlatParameters())  # BatchNorm's, likewise
        try:
            self._arg_names = list(inspect.signature(step).parameters)
        except (TypeError, ValueError):
            self._arg_names = []

    @property
    def program(self) -> str:
        if self._program is None:
            return "(not compiled yet: the first three calls run eagerly)"
        return self._program.text()

    def reset(self) -> None:
        """Forget every compiled program (the next calls trace again)."""
        self._variants.clear()
        self._program = None
        self._flat = FlatParameters()
        self._flat_buffers = (FlatParameters(), FlatParameters())

    def __call__(self, *inputs: Any) -> Tensor:
        if not all([isinstance(value, Tensor) for value in inputs]):
            i, value = next((i, v) for i, v in enumerate(inputs) if not isinstance(v, Tensor))
            raise TypeError(f"a compiled step takes Tensors; argument {i} is a "
                            f"{type(value).__name__}")
        if self._watched is None:           # the models and optimizers, found on the first call
            self._watched = _Watched(_visible_objects(self.step))
        objects = self._watched.objects
        arrays = [t.peek() for t in inputs]     # read only: .data may keep a copy
        key = (tuple([(a.shape, a.dtype, t.requires_grad) for a, t in zip(arrays, inputs)]),
               self._watched.settings())
        variant = self._variants.get(key)
        if variant is not None and variant[2] is not None:
            program = variant[2]
            if program.intact():
                program.run(arrays)
                self.replays += 1
                return self._finish(program)
            self.reset()                    # a tensor was given a new array: trace again
        variant = self._variants.setdefault(key, [0, None, None])
        variant[0] += 1
        if variant[0] == 1:                      # warm-up: optimizers create their state
            return self.step(*inputs)
        _check_no_hooks([o for o in objects if isinstance(o, Module)])
        recorder, result, extra = self._record(inputs, objects)
        if variant[1] is None:
            variant[1] = recorder
            return result
        placed_before = [f.buffer is not None for f in (self._flat,) + self._flat_buffers]
        variant[2] = self._compile(variant[1], recorder, extra)
        variant[1] = None                   # the first recording has served its purpose
        if placed_before != [f.buffer is not None for f in (self._flat,) + self._flat_buffers]:
            # Parameters or buffers just moved into a flat buffer: programs compiled before
            # point at their old arrays, so only this one is kept.
            self._variants = {key: variant}
        self._program = variant[2]
        self.traces += 1
        return result

    def _finish(self, program: Program) -> Tensor:
        for param, grad in program.grad_arrays:
            param.grad = grad
        if program.output is None:
            return None
        # A copy: the next replay overwrites the buffer. (_make: the copy needs no checks.)
        return Tensor._make(program.arrays[program.output].copy(), False)

    def _record(self, inputs: tuple, objects: list) -> tuple:
        """Run the step once with every array it can reach traced; returns what compiling needs."""
        recorder = Recorder()
        swapped = []       # (tensor, original array)
        swapped_state = []  # (dict, key, original array)
        names = [f"x{i}" if i >= len(self._arg_names) else self._arg_names[i]
                 for i in range(len(inputs))]
        seen = set()
        for name, tensor in zip(names, inputs):
            swapped.append((tensor, tensor.data, recorder.trace(tensor.data, "input", name)))
        params: list = []
        param_names: dict = {}
        for obj in objects:
            if not isinstance(obj, Module):
                continue
            for prefix, registry in (("", obj.named_parameters()), ("", obj.named_buffers())):
                for name, tensor in registry:
                    if id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                    label = prefix + name.replace(".", "_")
                    label = ("p_" if tensor.requires_grad else "b_") + label
                    param_names[id(tensor)] = label
                    if tensor.requires_grad:
                        params.append(tensor)
                    swapped.append((tensor, tensor.data,
                                    recorder.trace(tensor.data, "state", label)))
        for obj in objects:
            if not isinstance(obj, Optimizer):
                continue
            for group in obj.param_groups:
                for p in group["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        label = f"param{len(param_names)}"
                        param_names[id(p)] = label
                        params.append(p)
                        swapped.append((p, p.data, recorder.trace(p.data, "state", label)))
            for p, state in obj.state.items():
                label = "opt_" + param_names.get(id(p), "param")
                entries = state.items() if isinstance(state, dict) else [("", state)]
                for key, value in list(entries):
                    if not isinstance(value, np.ndarray):
                        continue
                    traced = recorder.trace(value, "state", label + (f"_{key}" if key else ""))
                    if isinstance(state, dict):
                        swapped_state.append((state, key, value, traced))
                        state[key] = traced
                    else:
                        swapped_state.append((obj.state, p, value, traced))
                        obj.state[p] = traced
        for tensor, _, traced in swapped:
            tensor.data = traced
        real = generator()
        set_generator(RecordingGenerator(recorder, real))
        try:
            result = self.step(*inputs)
        finally:
            set_generator(real)
            write_backs = self._restore(recorder, swapped, swapped_state)
        if result is not None and not isinstance(result, Tensor):
            raise JitError(f"a compiled step must return a Tensor (the loss) or None, got "
                           f"{type(result).__name__}")
        if result is not None and any(node.has_hooks() for node in topological_order(result)):
            raise JitError("a tensor of the step has a hook (Tensor.register_hook): a compiled "
                           "step replays numpy calls and would skip it. Remove the hook, or "
                           "train without jit.")
        output = None
        if result is not None:
            output = recorder._ref(result.data).slot if isinstance(result.data, Traced) \
                else None
            result = Tensor(np.asarray(result.data).copy())
        grads = []
        for p in params:
            grad = p.grad
            if isinstance(grad, Traced):
                grads.append((p, recorder.slot_of[id(grad)]))
                p.grad = np.asarray(grad)
            else:
                grads.append((p, None))
        state_slot = {id(t): recorder.slot_of[id(traced)] for t, _, traced in swapped}
        param_slots = [(p, state_slot[id(p)], slot) for p, slot in grads]
        buffer_slots = [(recorder.slot_of[id(traced)], t) for t, _, traced in swapped
                        if isinstance(t, Tensor) and not t.requires_grad
                        and recorder.kinds[recorder.slot_of[id(traced)]] == "state"]
        state_entries = [(recorder.slot_of[id(traced)], container, key)
                         for container, key, _, traced in swapped_state]
        extra = {"output": output, "grads": grads, "write_backs": write_backs,
                 "param_slots": param_slots, "buffer_slots": buffer_slots,
                 "state_entries": state_entries,
                 "inputs": [recorder.slot_of[id(t)] for _, _, t in swapped[:len(inputs)]]}
        return recorder, result, extra

    @staticmethod
    def _restore(recorder: Recorder, swapped: list, swapped_state: list) -> list:
        """Put the real arrays back; where the step replaced one, copy the new values in."""
        write_backs = []
        for tensor, original, traced in swapped:
            current = tensor.data
            if current is not traced and isinstance(current, Traced) \
                    and id(current) in recorder.slot_of:
                np.copyto(original, np.asarray(current))
                write_backs.append((recorder.slot_of[id(traced)], recorder.slot_of[id(current)]))
            tensor.data = original
        for container, key, original, traced in swapped_state:
            current = container[key]
            if current is not traced and isinstance(current, Traced):
                np.copyto(original, np.asarray(current))
                write_backs.append((recorder.slot_of[id(traced)], recorder.slot_of[id(current)]))
            container[key] = original
        return write_backs

    def _compile(self, first: Recorder, second: Recorder, extra: dict) -> Program:
        """Compare the two recordings, then build the replay from the second."""
        for i, (a, b) in enumerate(zip(first.ops, second.ops)):
            if a.signature() != b.signature():
                raise JitError(
                    f"the step did different things on two calls (numpy call {i + 1}: "
                    f"{a.text} at {a.where[0]} the first time, {b.text} at {b.where[0]} the "
                    "second): its Python control flow depends on tensor values (an `if` on a "
                    "loss, a loop until convergence…). A compiled step must make the same "
                    "calls every time; keep such logic outside the step.")
        if len(first.ops) != len(second.ops):
            raise JitError(f"the step made {len(first.ops)} numpy calls the first time and "
                           f"{len(second.ops)} the second: its control flow depends on tensor "
                           "values; keep such logic outside the compiled step.")
        persistent = set()
        for slot, kind in enumerate(second.kinds):
            if kind != "external":
                continue
            if first.arrays[slot] is second.arrays[slot]:
                persistent.add(slot)
            elif not np.array_equal(first.snapshots[slot], second.snapshots[slot],
                                    equal_nan=True):
                where = next((op.where[0] for op in second.ops
                              if any(r.slot == slot for r in refs_in((op.args, op.kwargs)))),
                             "?")
                raise JitError(
                    f"an array of shape {second.arrays[slot].shape} used at {where} is neither "
                    "an input of the step nor state of a model or optimizer it names, and its "
                    "values changed between calls (a gradient left from the previous step? "
                    "call optimizer.zero_grad() in the step). The replay cannot know them.")
        return Program(second, persistent, extra["output"], extra["grads"],
                        extra["write_backs"], extra["inputs"], extra["param_slots"], self._flat,
                        extra["buffer_slots"], self._flat_buffers, extra["state_entries"])


def jit(step: Callable) -> CompiledStep:
    """Compile a training step ``step(*tensors) -> loss`` into a replayed numpy program.

    The step's models and optimizers must be visible from it: closure variables, globals it
    names, or attributes of ``self`` for a bound method. See the module docstring for what is
    kept, what is refused, and when it traces again.

    Example:
        >>> def step(x, y):
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad()
        ...     loss.backward()
        ...     optimizer.step()
        ...     return loss
        >>> fast = jit(step)
        >>> for x, y in loader:
        ...     loss = fast(x, y)          # calls 1–3 eager (recording), then replayed
        >>> print(fast.program)            # one numpy call per line
    """
    if not callable(step):
        raise TypeError(f"jit needs a function, got {type(step).__name__}")
    return CompiledStep(step)
