"""Recording a step: `Traced` arrays report every numpy call made on them to a `Recorder`.

The recorder numbers every array the step touches (a *slot*: an input, a model's or optimizer's
state, a temporary, a constant) and notes each call as an `Op` whose array arguments are `Ref`s
to slots. program.py turns a recording into a replayable program.

Read next: program.py.
"""
from __future__ import annotations

import operator
import os
import sys
from typing import Any

import numpy as np

__all__ = ["JitError", "Ref", "Op", "Traced", "Recorder", "RecordingGenerator", "refs_in",
           "DEFAULTS"]

_JIT = os.path.dirname(os.path.abspath(__file__))      # this package: never "the caller"
_HERE = os.path.dirname(_JIT)                           # the tinygrad_bn package
_NUMPY = os.path.dirname(np.__file__)

# Array functions whose result depends only on the argument's shape and type: constants.
_SHAPE_ONLY = {np.ones_like, np.zeros_like, np.full_like, np.empty_like}


# Keyword arguments left out of the program's text when they have numpy's default value.
DEFAULTS = {"dtype": None, "where": True, "keepdims": False, "casting": "same_kind"}


class JitError(RuntimeError):
    """The step cannot be compiled or replayed; the message says why and what to change."""


# --- recording ------------------------------------------------------------------------------

class Ref:
    """A reference to recorded array number ``slot`` inside an op's arguments."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot


class Op:
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
    if isinstance(value, Ref):
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
        if where == "?" and not path.startswith(_NUMPY) and not path.startswith(_JIT):
            where = f"{os.path.relpath(path, os.path.dirname(_HERE))}:{frame.f_lineno}"
            name = frame.f_code.co_qualname
        if frame.f_code.co_qualname == "Tensor.backward" and path.startswith(_HERE):
            in_backward = True
            break
        frame = frame.f_back
    return where, name, in_backward


class Traced(np.ndarray):
    """An ndarray that reports every numpy operation on it to its `Recorder`."""

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


class Recorder:
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

    def trace(self, array: np.ndarray, kind: str, name: str) -> Traced:
        """Register ``array`` (an input or state) and return its traced view."""
        view = array.view(Traced)
        view._recorder = self
        self._register(view, array, kind, name)
        return view

    def _wrap(self, plain: Any, kind: str = "temp") -> Any:
        if not isinstance(plain, (np.ndarray, np.generic)):
            return plain
        plain = np.asarray(plain)
        view = plain.view(Traced)
        view._recorder = self
        self._register(view, plain, kind)
        if kind == "constant":
            self.snapshots[self.slot_of[id(view)]] = plain.copy()
        return view

    def _ref(self, value: Any) -> Any:
        """Arguments with every array replaced by a `Ref`; unknown plain arrays registered."""
        if isinstance(value, np.ndarray):
            slot = self.slot_of.get(id(value))
            if slot is None:
                if isinstance(value, Traced):
                    raise JitError("an array was copied out of the recording (np.array or "
                                   "np.asarray of a traced array?): the jit cannot follow it")
                slot = self._register(value, value, "external")
                self.snapshots[slot] = value.copy()
            return Ref(slot)
        if isinstance(value, tuple):
            return tuple(self._ref(v) for v in value)
        if isinstance(value, list):
            return [self._ref(v) for v in value]
        return value

    def _plain(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.arrays[value.slot]
        if isinstance(value, tuple):
            return tuple(self._plain(v) for v in value)
        if isinstance(value, list):
            return [self._plain(v) for v in value]
        return value

    def _record(self, kind: str, func: Any, text: str, args: tuple, kwargs: dict,
                writes: tuple = (), results: tuple = ()) -> Op:
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
        op = Op(kind, func, text, args, kwargs, writes, results, (where, name))
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
        if not isinstance(wrapped, Traced):
            return wrapped
        op = self._record("call", func, text, refs, kw_refs,
                          results=(self.slot_of[id(wrapped)],))
        op.view = isinstance(result, np.ndarray) and any(
            np.may_share_memory(result, self.arrays[r.slot]) for r in refs_in(refs))
        return wrapped

    def copy(self, array: Traced, dtype: np.dtype, text: str) -> Any:
        ref = self._ref(array)
        result = self.arrays[ref.slot].astype(dtype)
        wrapped = self._wrap(result)
        self._record("copy", None, text, (ref,), {"dtype": dtype},
                     results=(self.slot_of[id(wrapped)],))
        return wrapped

    def setitem(self, array: Traced, index: Any, value: Any) -> None:
        refs = self._ref((array, index, value))
        operator.setitem(*self._plain(refs))
        self._record("setitem", operator.setitem, "[]=", refs, {}, writes=(refs[0].slot,))

    def guard(self, array: Traced) -> bool:
        ref = self._ref(array)
        value = bool(self.arrays[ref.slot])
        op = self._record("guard", None, "bool", (ref,), {})
        op.expected = value
        return value

    def value_read(self, array: Traced) -> None:
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


def refs_in(value: Any) -> list:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, (tuple, list)):
        return [r for v in value for r in refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    return []


class RecordingGenerator:
    """Stands in for the library's generator while recording: each draw becomes an op."""

    def __init__(self, recorder: Recorder, real: np.random.Generator) -> None:
        self._recorder, self._real = recorder, real

    def __getattr__(self, name: str) -> Any:
        if name in ("random", "standard_normal", "uniform", "normal", "integers"):
            return lambda *args, **kwargs: self._recorder.draw(self._real, name, args, kwargs)
        raise JitError(f"generator().{name} inside a compiled step is not supported")

