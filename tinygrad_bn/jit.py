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

A new input shape or dtype, another training/eval mode or changed optimizer options
(``lr``, momentum…) are not errors: the step is traced again for them (three eager calls), and
each traced variant is kept, so a smaller last batch per epoch is traced once.

Read next: docs/performance.md ("The compiled step").
"""
from __future__ import annotations

import functools
import inspect
import operator
import os
import sys
from typing import Any, Callable

import numpy as np

from .graph import topological_order
from .nn.module import Module
from .optim.optimizer import Optimizer
from .random import generator, set_generator
from .tensor import Tensor

__all__ = ["jit", "CompiledStep", "JitError"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_NUMPY = os.path.dirname(np.__file__)
_THIS_FILE = os.path.abspath(__file__)

# Array functions that accept ``out=``: replay writes their result into a preallocated buffer.
_OUT_FUNCTIONS = {np.sum, np.max, np.min, np.amax, np.amin, np.mean, np.prod, np.argmax,
                  np.argmin, np.any, np.all, np.dot, np.clip, np.cumsum}
# Array functions whose result depends only on the argument's shape and type: constants.
_SHAPE_ONLY = {np.ones_like, np.zeros_like, np.full_like, np.empty_like}


# Keyword arguments left out of the program's text when they have numpy's default value.
_DEFAULTS = {"dtype": None, "where": True, "keepdims": False, "casting": "same_kind"}


class JitError(RuntimeError):
    """The step cannot be compiled or replayed; the message says why and what to change."""


# --- recording ------------------------------------------------------------------------------

class _Ref:
    """A reference to recorded array number ``slot`` inside an op's arguments."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot


class _Op:
    """One recorded numpy call.

    kind: "call" (``func(*args, **kwargs)``, results new), "ufunc" (a ufunc method, maybe with
    ``out``), "setitem", "copy" (``.copy()``/``.astype``), "guard" (a truth test), "draw" (a
    random draw). ``writes``: slots changed in place; ``results``: slots the call creates.
    """

    __slots__ = ("kind", "func", "text", "args", "kwargs", "writes", "results", "where",
                 "phase", "view", "expected")

    def __init__(self, kind: str, func: Any, text: str, args: tuple, kwargs: dict,
                 writes: tuple, results: tuple, where: tuple) -> None:
        self.kind, self.func, self.text, self.args, self.kwargs = kind, func, text, args, kwargs
        self.writes, self.results, self.where = writes, results, where
        self.phase, self.view, self.expected = "", False, None

    def signature(self) -> tuple:
        return (self.kind, self.text, _shape_of(self.args), _shape_of(self.kwargs),
                self.writes, self.results, self.expected)


def _shape_of(value: Any) -> Any:
    """A comparable description of recorded arguments (arrays by slot, scalars by value)."""
    if isinstance(value, _Ref):
        return ("ref", value.slot)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(_shape_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _shape_of(v)) for k, v in value.items()))
    if isinstance(value, np.dtype) or isinstance(value, type):
        return str(value)
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    return (type(value).__name__, value)


def _caller() -> tuple:
    """(file:line, qualified function name, inside Tensor.backward?) of the library or user
    code that made the current numpy call — for the program's comments and error messages."""
    frame = sys._getframe(2)
    where, name, in_backward = "?", "?", False
    while frame is not None:
        path = frame.f_code.co_filename
        if where == "?" and not path.startswith(_NUMPY) and path != _THIS_FILE:
            where = f"{os.path.relpath(path, os.path.dirname(_HERE))}:{frame.f_lineno}"
            name = frame.f_code.co_qualname
        if frame.f_code.co_qualname == "Tensor.backward" and path.startswith(_HERE):
            in_backward = True
            break
        frame = frame.f_back
    return where, name, in_backward


class _Traced(np.ndarray):
    """An ndarray that reports every numpy operation on it to its `_Recorder`."""

    _recorder: Any = None

    def __array_finalize__(self, obj: Any) -> None:
        self._recorder = getattr(obj, "_recorder", None)

    @property
    def base(self) -> Any:
        # Every traced array is a view made by the recorder of a plain result; report that
        # result's own base, so that code asking "is this a view?" (Tensor.backward) sees what
        # eager execution sees.
        return np.ndarray.base.__get__(self).base

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return self._recorder.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: tuple, args: tuple, kwargs: dict) -> Any:
        return self._recorder.function(func, args, kwargs)

    # Methods that numpy implements without asking the protocols above.
    def reshape(self, *shape: Any, **kw: Any) -> Any:
        return self._recorder.call(np.ndarray.reshape, ".reshape", (self,) + shape, kw)

    def transpose(self, *axes: Any) -> Any:
        return self._recorder.call(np.ndarray.transpose, ".transpose", (self,) + axes, {})

    def swapaxes(self, a: int, b: int) -> Any:
        return self._recorder.call(np.ndarray.swapaxes, ".swapaxes", (self, a, b), {})

    @property
    def T(self) -> Any:
        return self._recorder.call(np.ndarray.transpose, ".transpose", (self,), {})

    def ravel(self, order: str = "C") -> Any:
        return self._recorder.call(np.ndarray.ravel, ".ravel", (self, order), {})

    def __getitem__(self, index: Any) -> Any:
        return self._recorder.call(operator.getitem, "[]", (self, index), {})

    def __setitem__(self, index: Any, value: Any) -> None:
        self._recorder.setitem(self, index, value)

    def copy(self, order: str = "C") -> Any:
        return self._recorder.copy(self, self.dtype, ".copy")

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:
        return self._recorder.copy(self, np.dtype(dtype), ".astype")

    def fill(self, value: Any) -> None:
        self._recorder.ufunc(np.copyto, "__call__", (self, value), {})

    def __bool__(self) -> bool:
        return self._recorder.guard(self)

    def _value_read(self, *args: Any, **kwargs: Any) -> Any:
        self._recorder.value_read(self)

    __float__ = __int__ = __index__ = __complex__ = item = tolist = _value_read


class _Recorder:
    """Records one call of the step: the arrays it touches (slots) and the calls (ops)."""

    def __init__(self) -> None:
        self.arrays: list = []     # the plain value of each slot
        self.kinds: list = []      # "input", "state", "temp", "constant", "external"
        self.names: list = []
        self.snapshots: dict = {}  # slot → copy at first sight, for constants and externals
        self.slot_of: dict = {}    # id(array object) → slot
        self.keep: list = []       # keeps every registered object alive (ids stay unique)
        self.ops: list = []

    # --- slots

    def _register(self, obj: np.ndarray, plain: np.ndarray, kind: str, name: str = "") -> int:
        slot = len(self.arrays)
        self.arrays.append(plain)
        self.kinds.append(kind)
        self.names.append(name)
        self.slot_of[id(obj)] = slot
        self.keep.append(obj)
        return slot

    def trace(self, array: np.ndarray, kind: str, name: str) -> _Traced:
        """Register ``array`` (an input or state) and return its traced view."""
        view = array.view(_Traced)
        view._recorder = self
        self._register(view, array, kind, name)
        return view

    def _wrap(self, plain: Any, kind: str = "temp") -> Any:
        if not isinstance(plain, (np.ndarray, np.generic)):
            return plain
        plain = np.asarray(plain)
        view = plain.view(_Traced)
        view._recorder = self
        self._register(view, plain, kind)
        if kind == "constant":
            self.snapshots[self.slot_of[id(view)]] = plain.copy()
        return view

    def _ref(self, value: Any) -> Any:
        """Arguments with every array replaced by a `_Ref`; unknown plain arrays registered."""
        if isinstance(value, np.ndarray):
            slot = self.slot_of.get(id(value))
            if slot is None:
                if isinstance(value, _Traced):
                    raise JitError("an array was copied out of the recording (np.array or "
                                   "np.asarray of a traced array?): the jit cannot follow it")
                slot = self._register(value, value, "external")
                self.snapshots[slot] = value.copy()
            return _Ref(slot)
        if isinstance(value, tuple):
            return tuple(self._ref(v) for v in value)
        if isinstance(value, list):
            return [self._ref(v) for v in value]
        return value

    def _plain(self, value: Any) -> Any:
        if isinstance(value, _Ref):
            return self.arrays[value.slot]
        if isinstance(value, tuple):
            return tuple(self._plain(v) for v in value)
        if isinstance(value, list):
            return [self._plain(v) for v in value]
        return value

    def _record(self, kind: str, func: Any, text: str, args: tuple, kwargs: dict,
                writes: tuple = (), results: tuple = ()) -> _Op:
        where, name, in_backward = _caller()
        for slot in writes:
            if self.kinds[slot] == "external":
                raise JitError(
                    f"the step writes into an array of shape {self.arrays[slot].shape} at "
                    f"{where} (in {name}) that the jit does not follow: either state that "
                    "belongs to no model or optimizer the step names (pass them as closure "
                    "variables, globals, or attributes of the object whose method is compiled), "
                    "or an array made without a traced operand (np.zeros, np.empty, np.array "
                    "…), whose later use numpy would not report: make it with "
                    "np.zeros_like(x, shape=…) from a traced array instead.")
        op = _Op(kind, func, text, args, kwargs, writes, results, (where, name))
        op.phase = "backward" if in_backward else ""
        self.ops.append(op)
        return op

    # --- what numpy reports

    def ufunc(self, ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
        refs = self._ref(tuple(inputs))
        out = kwargs.pop("out", None)
        if out is not None and not isinstance(out, tuple):
            out = (out,)
        out_refs = self._ref(out) if out is not None else None
        kw_refs = {k: self._ref(v) for k, v in kwargs.items()}
        plain_kwargs = {k: self._plain(v) for k, v in kw_refs.items()}
        if out_refs is not None:
            plain_kwargs["out"] = self._plain(out_refs)
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        result = func(*self._plain(refs), **plain_kwargs)
        text = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if method == "at":       # ufunc.at(a, index, b): a changed in place
            self._record("ufunc", func, text, refs, kw_refs, writes=(refs[0].slot,))
            return None
        if out_refs is not None:
            self._record("ufunc", func, text, refs, kw_refs,
                         writes=tuple(r.slot for r in out_refs))
            return out[0] if len(out) == 1 else out
        results = result if isinstance(result, tuple) else (result,)
        wrapped = tuple(self._wrap(r) for r in results)
        self._record("ufunc", func, text, refs, kw_refs,
                     results=tuple(self.slot_of[id(w)] for w in wrapped))
        return wrapped[0] if len(wrapped) == 1 else wrapped

    def function(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if func in (np.may_share_memory, np.shares_memory, np.shape, np.ndim, np.size):
            return func(*self._plain(self._ref(args)), **kwargs)  # about memory or shape only
        if func in _SHAPE_ONLY:
            return self._wrap(func(*self._plain(self._ref(args)), **kwargs), "constant")
        if func is np.copyto:
            return self.ufunc(np.copyto, "__call__", args, kwargs)
        return self.call(func, f"np.{func.__name__}", args, kwargs)

    def call(self, func: Any, text: str, args: tuple, kwargs: dict) -> Any:
        refs, kw_refs = self._ref(tuple(args)), {k: self._ref(v) for k, v in kwargs.items()}
        if "out" in kw_refs:
            raise JitError(f"{text}(..., out=...) inside a compiled step is not supported")
        result = func(*self._plain(refs), **{k: self._plain(v) for k, v in kw_refs.items()})
        wrapped = self._wrap(result)
        if not isinstance(wrapped, _Traced):
            return wrapped
        op = self._record("call", func, text, refs, kw_refs,
                          results=(self.slot_of[id(wrapped)],))
        op.view = isinstance(result, np.ndarray) and any(
            np.may_share_memory(result, self.arrays[r.slot]) for r in _refs_in(refs))
        return wrapped

    def copy(self, array: _Traced, dtype: np.dtype, text: str) -> Any:
        ref = self._ref(array)
        result = self.arrays[ref.slot].astype(dtype)
        wrapped = self._wrap(result)
        self._record("copy", None, text, (ref,), {"dtype": dtype},
                     results=(self.slot_of[id(wrapped)],))
        return wrapped

    def setitem(self, array: _Traced, index: Any, value: Any) -> None:
        refs = self._ref((array, index, value))
        operator.setitem(*self._plain(refs))
        self._record("setitem", operator.setitem, "[]=", refs, {}, writes=(refs[0].slot,))

    def guard(self, array: _Traced) -> bool:
        ref = self._ref(array)
        value = bool(self.arrays[ref.slot])
        op = self._record("guard", None, "bool", (ref,), {})
        op.expected = value
        return value

    def value_read(self, array: _Traced) -> None:
        where, name, _ = _caller()
        raise JitError(
            f"the step reads a tensor's value as a Python number at {where} (in {name}): a "
            "compiled step replays numpy calls only, so Python code using that number would not "
            "run again. Return the tensor from the step and read it after the call (e.g. "
            "fast(x, y).item()), or run this step without jit. (BatchNorm1d with "
            "momentum=None reads num_batches_tracked this way.)")

    def draw(self, real: np.random.Generator, method: str, args: tuple, kwargs: dict) -> Any:
        result = getattr(real, method)(*args, **kwargs)
        wrapped = self._wrap(result)
        self._record("draw", method, f"rng.{method}", args, kwargs,
                     results=(self.slot_of[id(wrapped)],))
        return wrapped


def _refs_in(value: Any) -> list:
    if isinstance(value, _Ref):
        return [value]
    if isinstance(value, (tuple, list)):
        return [r for v in value for r in _refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs_in(v)]
    return []


class _RecordingGenerator:
    """Stands in for the library's generator while recording: each draw becomes an op."""

    def __init__(self, recorder: _Recorder, real: np.random.Generator) -> None:
        self._recorder, self._real = recorder, real

    def __getattr__(self, name: str) -> Any:
        if name in ("random", "standard_normal", "uniform", "normal", "integers"):
            return lambda *args, **kwargs: self._recorder.draw(self._real, name, args, kwargs)
        raise JitError(f"generator().{name} inside a compiled step is not supported")


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


class _Watched:
    """The models and optimizers a step names, found once, and what a program depends on."""

    def __init__(self, objects: list) -> None:
        self.objects = objects
        models = [o for o in objects if isinstance(o, Module)]
        self.modules = [m for model in models for m in model.modules()]
        self.params = [p for model in models for p in model.parameters()]
        self.optimizers = [o for o in objects if isinstance(o, Optimizer)]
        # Bound once: this runs before every replay.
        self.hook_tests = [m.has_hooks for m in self.modules] + [p.has_hooks for p in self.params]

    def settings(self) -> tuple:
        """Training modes, whether any hook is registered, and optimizer options: a program
        traced under other settings does not apply (a new one is traced)."""
        hooks = any([has_hooks() for has_hooks in self.hook_tests])
        options = tuple([tuple([v for k, v in group.items() if k != "params"])
                         for optimizer in self.optimizers for group in optimizer.param_groups])
        return tuple([m.training for m in self.modules]), hooks, options


# --- the compiled program ----------------------------------------------------------------------

class _Program:
    """A recorded step turned into a list of (function, args, kwargs) calls on fixed buffers."""

    def __init__(self, recorder: _Recorder, persistent: set, output: int | None,
                 grads: list, write_backs: list, inputs: list, param_slots: list,
                 flat: _FlatParameters) -> None:
        rec = self.rec = recorder
        self.output, self.grads, self.inputs = output, grads, inputs
        # Every slot's array during replay, fixed once: views are made once, here.
        root = list(range(len(rec.arrays)))
        arrays: list = [None] * len(rec.arrays)
        self.flat, self.flat_update, grad_views = None, None, {}
        plain_sgd = _plain_sgd(rec, param_slots)
        if plain_sgd is not None:
            lr, grad_slots = plain_sgd
            params = [param for param, _, _ in param_slots]
            views = flat.place(params, [rec.arrays[slot] for _, slot, _ in param_slots])
            if views is not None:
                # SGD as two calls on flat buffers: every parameter is a view of one buffer
                # (moved there once), every gradient a view of another, laid out alike.
                grad_buffer = np.empty_like(flat.buffer)
                for (_, p_slot, _), g_slot, view in zip(param_slots, grad_slots, views):
                    arrays[p_slot] = view
                    start = view.__array_interface__["data"][0] - \
                        flat.buffer.__array_interface__["data"][0]
                    offset = start // view.itemsize
                    grad_views[g_slot] = grad_buffer[offset:offset + view.size].reshape(view.shape)
                self.flat = flat
                self.flat_update = (np.asarray(lr, dtype=flat.buffer.dtype), grad_buffer,
                                    np.empty_like(flat.buffer),
                                    {id(op) for op in rec.ops[-2 * len(param_slots):]})
        written = {w for op in rec.ops for w in op.writes}
        prologue = []
        for slot, kind in enumerate(rec.kinds):
            if arrays[slot] is not None:
                continue                                 # a parameter moved to the flat buffer
            if kind in ("state", "external") and (kind == "state" or slot in persistent):
                arrays[slot] = rec.arrays[slot]          # live: the real object
            elif kind in ("constant", "external"):
                snapshot = rec.snapshots[slot]
                if slot in written:                      # written in place: reset every step
                    arrays[slot] = np.empty_like(snapshot)
                    prologue.append((np.copyto, (arrays[slot], snapshot)))
                else:
                    arrays[slot] = snapshot
            elif kind == "input":
                arrays[slot] = np.empty_like(rec.arrays[slot])
        for slot, kind in enumerate(rec.kinds):
            if kind == "external" and slot not in persistent and slot in written:
                pass  # a fresh array each call (e.g. np.zeros in a backward): reset above
            elif kind == "external" and slot in persistent and slot in written:
                where = next(op.where[0] for op in rec.ops if slot in op.writes)
                raise JitError(f"the step changes an array of shape {rec.arrays[slot].shape} "
                               f"at {where} that belongs to no model or optimizer the step "
                               "names: pass them as closure variables, globals, or attributes "
                               "of the object whose method is compiled")
        self.views: dict = {}
        self.folded: dict = {}
        # Arrays whose values are the same every step: constants nobody writes, and the results
        # of calls on nothing else (folded: computed once, here, like the views).
        fixed = {slot for slot, kind in enumerate(rec.kinds)
                 if kind in ("constant", "external") and slot not in written
                 and slot not in persistent}
        live_ops = []
        for op in rec.ops:
            refs = _refs_in((op.args, op.kwargs))
            if op.kind in ("ufunc", "call", "copy") and not op.writes and refs \
                    and all(r.slot in fixed for r in refs) \
                    and not any(slot in written for slot in op.results):
                values = self._fold(op, arrays)
                for slot, value in zip(op.results, values):
                    arrays[slot] = value
                    fixed.add(slot)
                self.folded[op.results[0]] = op
                continue
            if op.kind == "call" and op.view:
                value = op.func(*self._resolve(op.args, arrays),
                                **self._resolve(op.kwargs, arrays))
                sources = [arrays[r.slot] for r in _refs_in(op.args)]
                if any(np.may_share_memory(value, s) for s in sources):
                    arrays[op.results[0]] = value
                    source = _refs_in(op.args)[0].slot
                    root[op.results[0]] = root[source]
                    self.views[op.results[0]] = op
                    continue
                op.view = False
            for slot in op.results:
                arrays[slot] = grad_views[slot] if slot in grad_views else \
                    np.empty_like(rec.arrays[slot])
            live_ops.append(op)
        self.arrays, self.root = arrays, root
        self.ops = self._live(live_ops, {root[s] for s, _ in write_backs}
                              | {root[s] for _, s in grads if s is not None}
                              | ({root[output]} if output is not None else set()))
        flat_ops = self.flat_update[3] if self.flat_update else set()
        self.calls = prologue + [self._call(op) for op in self.ops if id(op) not in flat_ops]
        if self.flat_update:
            rate, grad_buffer, scaled, _ = self.flat_update
            self.calls += [(np.multiply, (rate, grad_buffer, scaled)),
                           (np.subtract, (self.flat.buffer, scaled, self.flat.buffer))]
        self.calls += [(np.copyto, (arrays[dest], arrays[src])) for dest, src in write_backs]

    def _fold(self, op: _Op, arrays: list) -> tuple:
        args, kwargs = self._resolve(op.args, arrays), self._resolve(op.kwargs, arrays)
        if op.kind == "copy":
            return (np.array(args[0], dtype=op.kwargs["dtype"]),)
        result = op.func(*args, **kwargs)
        results = result if isinstance(result, tuple) else (result,)
        return tuple(np.array(r) for r in results)  # own copies, never views

    def _live(self, ops: list, needed: set) -> list:
        """Drop calls whose results nobody uses (e.g. a sum computed only for its shape)."""
        rec, root = self.rec, self.root
        side_effect_kinds = ("state", "external", "input")
        live = []
        for op in reversed(ops):
            writes = {root[s] for s in op.writes}
            effect = op.kind in ("guard", "draw") or any(
                rec.kinds[w] in side_effect_kinds and rec.kinds[w] != "external"
                or (rec.kinds[w] == "external" and self.arrays[w] is rec.arrays[w])
                for w in writes)
            if effect or writes & needed or {root[s] for s in op.results} & needed:
                live.append(op)
                needed |= {root[r.slot] for r in _refs_in((op.args, op.kwargs))} | writes
        return live[::-1]

    @staticmethod
    def _resolve(value: Any, arrays: list) -> Any:
        if isinstance(value, _Ref):
            return arrays[value.slot]
        if isinstance(value, tuple):
            return tuple(_Program._resolve(v, arrays) for v in value)
        if isinstance(value, list):
            return [_Program._resolve(v, arrays) for v in value]
        if isinstance(value, dict):
            return {k: _Program._resolve(v, arrays) for k, v in value.items()}
        return value

    def _call(self, op: _Op) -> tuple:
        """(function, positional arguments) for one replayed call: keyword arguments are bound
        once (functools.partial) or passed by position, since ``f(*a, **k)`` per call costs."""
        arrays = self.arrays
        args, kwargs = self._resolve(op.args, arrays), self._resolve(op.kwargs, arrays)
        kwargs = {k: v for k, v in kwargs.items() if not (k in _DEFAULTS and v is _DEFAULTS[k])}
        func = op.func
        if op.kind == "ufunc":
            if op.text.endswith(".at"):
                return _bind(func, kwargs), args
            outs = tuple(arrays[w] for w in (op.writes or op.results))
            if op.text.endswith(".reduce") and set(kwargs) <= {"axis", "keepdims"}:
                # reduce(array, axis, dtype, out, keepdims), all by position
                return func, (args[0], kwargs.get("axis", 0), None, outs[0],
                              kwargs.get("keepdims", False))
            if "." not in op.text[3:]:                      # a plain ufunc call
                args = _scalars_as_arrays(args)
                if func in (np.maximum, np.minimum):  # numpy deprecates their positional out
                    return _bind(func, dict(kwargs, out=outs)), args
                return _bind(func, kwargs), args + outs
            return _bind(func, dict(kwargs, out=outs)), args
        if op.kind == "setitem":
            return operator.setitem, args
        if op.kind == "copy":
            return _copy_unsafe, (arrays[op.results[0]], args[0])
        if op.kind == "guard":
            return _guard, (args[0], op.expected, op.where)
        if op.kind == "draw":
            return _draw, (op.func, args, kwargs, arrays[op.results[0]])
        if func in _OUT_FUNCTIONS:
            return _bind(func, dict(kwargs, out=arrays[op.results[0]])), args
        return _assign, (arrays[op.results[0]], _bind(func, kwargs), args)

    def run(self, inputs: list) -> None:
        for slot, array in zip(self.inputs, inputs):
            np.copyto(self.arrays[slot], array)
        for func, args in self.calls:
            func(*args)

    # --- the text

    def name(self, slot: int) -> str:
        rec = self.rec
        kind = rec.kinds[slot]
        if kind in ("input", "state"):
            return rec.names[slot]
        if kind == "external" and self.arrays[slot] is rec.arrays[slot]:
            return f"ext{slot}"
        if kind in ("constant", "external"):
            return f"c{slot}"
        return f"t{slot}"

    def _text_of(self, value: Any) -> str:
        if isinstance(value, _Ref):
            return self.name(value.slot)
        if isinstance(value, tuple):
            inner = ", ".join(self._text_of(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(self._text_of(v) for v in value) + "]"
        if isinstance(value, slice):
            parts = ["" if p is None else repr(p) for p in (value.start, value.stop, value.step)]
            return ":".join(parts[:2] if value.step is None else parts)
        if isinstance(value, np.dtype):
            return f"np.{value.name}"
        if isinstance(value, float):
            return repr(value)
        if value is Ellipsis:
            return "..."
        return repr(value)

    def _line(self, op: _Op) -> str:
        args = [self._text_of(a) for a in op.args]
        kw = [f"{k}={self._text_of(v)}" for k, v in op.kwargs.items()
              if not (k in _DEFAULTS and v is _DEFAULTS[k])]
        results = ", ".join(self.name(s) for s in op.results)
        if op.kind == "setitem":
            return f"{args[0]}[{args[1].strip('()').rstrip(',')}] = {args[2]}"
        if op.kind == "guard":
            return f"check bool({args[0]}) is {op.expected}"
        if op.kind == "copy":
            return f"np.copyto({results}, {args[0]})"
        if op.kind == "draw":
            return f"generator().{op.func}({', '.join(args + kw)}, out={results})"
        if op.text == "[]":
            return f"{results} = {args[0]}[{args[1].strip('()').rstrip(',')}]"
        if op.text.startswith("."):
            return f"{results} = {args[0]}{op.text}({', '.join(args[1:] + kw)})"
        if op.kind == "ufunc" and op.writes:
            outs = ", ".join(self.name(w) for w in op.writes)
            if op.text.endswith(".at"):
                return f"{op.text}({', '.join(args + kw)})"
            return f"{op.text}({', '.join(args + kw)}, out={outs})"
        if op.kind == "ufunc" or op.func in _OUT_FUNCTIONS:
            return f"{op.text}({', '.join(args + kw)}, out={results})"
        return f"{results} = {op.text}({', '.join(args + kw)})"

    def text(self) -> str:
        rec = self.rec
        lines = ["# inputs and state (models' and optimizers' arrays, changed in place); t<n> are "
                 "buffers", "# allocated once, c<n> constants"]
        for slot, kind in enumerate(rec.kinds):
            if kind in ("input", "state"):
                array = self.arrays[slot]
                lines.append(f"#   {rec.names[slot]}: {kind}, {array.dtype} {array.shape}")
        if self.folded:
            lines.append("# constants computed once, before the first replay:")
            lines += [f"#   {self._line(op)}" for op in self.folded.values()]
        if self.views:
            lines.append("# views made once, before the first replay:")
            lines += [f"#   {self._line(op)}" for op in self.views.values()]
        phase = None
        first_backward = next((i for i, op in enumerate(self.ops) if op.phase == "backward"),
                              len(self.ops))
        last_backward = max((i for i, op in enumerate(self.ops) if op.phase == "backward"),
                            default=-1)
        flat_ops = self.flat_update[3] if self.flat_update else set()
        for i, op in enumerate(self.ops):
            now = ("forward" if i < first_backward else
                   "backward" if i <= last_backward else "update")
            if now != phase:
                lines.append(f"# --- {now} ---")
                phase = now
            if id(op) not in flat_ops:
                lines.append(f"{self._line(op):<60}  # {op.where[1]}")
        if self.flat_update:
            if phase != "update":
                lines.append("# --- update ---")
            rate = self.flat_update[0].item()
            lines += [f"np.multiply({rate!r}, grads, out=scaled)".ljust(60)
                      + "  # SGD.step: p ← p − lr·g for every parameter at once,",
                      "np.subtract(params, scaled, out=params)".ljust(60)
                      + "  # params and grads: one flat buffer each"]
        return "\n".join(lines)


def _plain_sgd(rec: _Recorder, param_slots: list) -> tuple | None:
    """(learning rate, gradient slots) if the recorded update is exactly plain SGD — per
    parameter, in order, ``t = lr·g; p −= t`` and nothing else after backward — else None."""
    update = rec.ops[len(rec.ops) - 2 * len(param_slots):]
    last_backward = max((i for i, op in enumerate(rec.ops) if op.phase == "backward"),
                        default=-1)
    if not param_slots or last_backward + 1 != len(rec.ops) - len(update):
        return None
    dtype = rec.arrays[param_slots[0][1]].dtype
    rate, grad_slots = None, []
    for (_, p_slot, _), scale, subtract in zip(param_slots, update[0::2], update[1::2]):
        g_slot = scale.args[1].slot if len(scale.args) == 2 and isinstance(scale.args[1], _Ref) \
            else None
        if g_slot is None or rec.kinds[g_slot] != "temp" or \
                rec.arrays[p_slot].dtype != dtype or rec.arrays[g_slot].dtype != dtype:
            return None
        is_scale = (scale.kind == "ufunc" and scale.func is np.multiply and not scale.writes
                    and not scale.kwargs and len(scale.args) == 2
                    and type(scale.args[0]) is float and isinstance(scale.args[1], _Ref)
                    and scale.args[1].slot == g_slot)
        is_subtract = (subtract.kind == "ufunc" and subtract.func is np.subtract
                       and subtract.writes == (p_slot,) and not subtract.kwargs
                       and len(subtract.args) == 2 and isinstance(subtract.args[1], _Ref)
                       and isinstance(subtract.args[0], _Ref)
                       and subtract.args[0].slot == p_slot
                       and subtract.args[1].slot == scale.results[0])
        if not (is_scale and is_subtract) or (rate is not None and scale.args[0] != rate):
            return None
        rate = scale.args[0]
        grad_slots.append(g_slot)
    if len(set(grad_slots)) != len(grad_slots):
        return None
    return rate, grad_slots


class _FlatParameters:
    """Every parameter of a compiled step moved, once, into one flat buffer (as views of it), so
    that plain SGD updates them all in two numpy calls."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None
        self.params: list = []
        self.views: list = []

    def place(self, params: list, arrays: list) -> list | None:
        """Views of the buffer for ``params`` (moving them there the first time); None if the
        parameters are not (or no longer) the ones placed."""
        if self.buffer is None:
            dtype = arrays[0].dtype
            self.buffer = np.empty(sum(a.size for a in arrays), dtype)
            start = 0
            for param, array in zip(params, arrays):
                view = self.buffer[start:start + array.size].reshape(array.shape)
                np.copyto(view, array)
                param.data = view           # the parameter keeps its values, in the buffer
                self.views.append(view)
                start += array.size
            self.params = list(params)
            return self.views
        same = len(params) == len(self.params) and all(
            p is q and a is v for p, q, a, v in zip(params, self.params, arrays, self.views))
        return self.views if same else None

    def intact(self) -> bool:
        """False once someone assigned a parameter a new array (its values left the buffer)."""
        return all(p.data is v for p, v in zip(self.params, self.views))


def _bind(func: Any, kwargs: dict) -> Any:
    return functools.partial(func, **kwargs) if kwargs else func


def _scalars_as_arrays(args: tuple) -> tuple:
    """Python numbers as 0-d arrays of the array operands' type, made once.

    numpy converts a Python number in ``array * 0.5`` to the array's type on every call (it is
    a *weak* scalar); converting it once gives the same values without that cost. Only where
    the conversion is exactly numpy's: a float with floating arrays, an int with int or float
    arrays.
    """
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    if not arrays:
        return args
    dtype = np.result_type(*arrays)
    converted = []
    for a in args:
        convertible = (isinstance(a, float) and dtype.kind == "f") or (
            isinstance(a, int) and not isinstance(a, bool) and dtype.kind in "fiu")
        converted.append(np.asarray(a, dtype=dtype) if convertible else a)
    return tuple(converted)


def _copy_unsafe(buffer: np.ndarray, source: np.ndarray) -> None:
    np.copyto(buffer, source, casting="unsafe")     # what .astype() does


def _assign(buffer: np.ndarray, func: Any, args: tuple) -> None:
    """Calls without ``out=``: compute, then copy into the slot's fixed buffer."""
    np.copyto(buffer, func(*args))


def _draw(method: str, args: tuple, kwargs: dict, buffer: np.ndarray) -> None:  # noqa
    # The generator is looked up at every replay: manual_seed replaces it.
    np.copyto(buffer, getattr(generator(), method)(*args, **kwargs))


def _guard(array: np.ndarray, expected: bool, where: tuple) -> None:
    if bool(array) != expected:
        raise JitError(f"a test on tensor values at {where[0]} (in {where[1]}) came out "
                       f"{not expected} where the traced step had {expected}: the compiled "
                       "program only holds the branch taken when it was traced (this step may "
                       "have been partly applied). Check the inputs, or run the step eagerly.")


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
        self._variants: dict = {}   # key → [eager calls so far, recorder A, _Program]
        self._program: _Program | None = None
        self._watched: _Watched | None = None
        self._flat = _FlatParameters()
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
        self._flat = _FlatParameters()

    def __call__(self, *inputs: Any) -> Tensor:
        for i, value in enumerate(inputs):
            if not isinstance(value, Tensor):
                raise TypeError(f"a compiled step takes Tensors; argument {i} is a "
                                f"{type(value).__name__}")
        if self._watched is None:           # the models and optimizers, found on the first call
            self._watched = _Watched(_visible_objects(self.step))
        objects = self._watched.objects
        key = (tuple([(t.shape, t.dtype.str, t.requires_grad) for t in inputs]),
               self._watched.settings())
        variant = self._variants.setdefault(key, [0, None, None])
        if variant[2] is not None and variant[2].flat is not None \
                and not variant[2].flat.intact():
            self.reset()                    # a parameter was given a new array: trace again
            variant = self._variants.setdefault(key, [0, None, None])
        if variant[2] is not None:
            program = variant[2]
            program.run([t.data for t in inputs])
            self.replays += 1
            return self._finish(program)
        variant[0] += 1
        if variant[0] == 1:                      # warm-up: optimizers create their state
            return self.step(*inputs)
        _check_no_hooks([o for o in objects if isinstance(o, Module)])
        recorder, result, extra = self._record(inputs, objects)
        if variant[1] is None:
            variant[1] = recorder
            return result
        variant[2] = self._compile(variant[1], recorder, extra)
        self._program = variant[2]
        self.traces += 1
        return result

    def _finish(self, program: _Program) -> Tensor:
        for param, slot in program.grads:
            param.grad = None if slot is None else program.arrays[slot]
        if program.output is None:
            return None
        return Tensor(program.arrays[program.output])  # a copy: the next replay overwrites it

    def _record(self, inputs: tuple, objects: list) -> tuple:
        """Run the step once with every array it can reach traced; returns what compiling needs."""
        recorder = _Recorder()
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
        set_generator(_RecordingGenerator(recorder, real))
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
            output = recorder._ref(result.data).slot if isinstance(result.data, _Traced) \
                else None
            result = Tensor(np.asarray(result.data).copy())
        grads = []
        for p in params:
            grad = p.grad
            if isinstance(grad, _Traced):
                grads.append((p, recorder.slot_of[id(grad)]))
                p.grad = np.asarray(grad)
            else:
                grads.append((p, None))
        state_slot = {id(t): recorder.slot_of[id(traced)] for t, _, traced in swapped}
        param_slots = [(p, state_slot[id(p)], slot) for p, slot in grads]
        extra = {"output": output, "grads": grads, "write_backs": write_backs,
                 "param_slots": param_slots,
                 "inputs": [recorder.slot_of[id(t)] for _, _, t in swapped[:len(inputs)]]}
        return recorder, result, extra

    @staticmethod
    def _restore(recorder: _Recorder, swapped: list, swapped_state: list) -> list:
        """Put the real arrays back; where the step replaced one, copy the new values in."""
        write_backs = []
        for tensor, original, traced in swapped:
            current = tensor.data
            if current is not traced and isinstance(current, _Traced) \
                    and id(current) in recorder.slot_of:
                np.copyto(original, np.asarray(current))
                write_backs.append((recorder.slot_of[id(traced)], recorder.slot_of[id(current)]))
            tensor.data = original
        for container, key, original, traced in swapped_state:
            current = container[key]
            if current is not traced and isinstance(current, _Traced):
                np.copyto(original, np.asarray(current))
                write_backs.append((recorder.slot_of[id(traced)], recorder.slot_of[id(current)]))
            container[key] = original
        return write_backs

    def _compile(self, first: _Recorder, second: _Recorder, extra: dict) -> _Program:
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
                              if any(r.slot == slot for r in _refs_in((op.args, op.kwargs)))),
                             "?")
                raise JitError(
                    f"an array of shape {second.arrays[slot].shape} used at {where} is neither "
                    "an input of the step nor state of a model or optimizer it names, and its "
                    "values changed between calls (a gradient left from the previous step? "
                    "call optimizer.zero_grad() in the step). The replay cannot know them.")
        return _Program(second, persistent, extra["output"], extra["grads"],
                        extra["write_backs"], extra["inputs"], extra["param_slots"], self._flat)


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
