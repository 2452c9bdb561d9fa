"""Compiling a recording into a `Program`: fixed buffers, one (function, arguments) per call.

The passes, in order: arrays that are the same every step (constants, calls on constants only,
views of fixed buffers) are made once; plain SGD becomes two calls on flat buffers (scaling the
gradients in place when the step keeps no ``.grad``); BatchNorm's running statistics and
counters are updated at the end of the step, every layer's at once, on flat buffers too; calls
nobody reads are dropped; a temporary takes the buffer of one read for the last time. Each
call is then bound once, as numpy runs it fastest: keyword arguments bound, Python numbers as
0-d arrays of the operands' type (as full arrays for np.maximum/np.minimum), np.sum/np.max
as their ufunc's reduce; the calls are written out, one line each, as the source of one
generated Python function that a replay calls (inputs that are only read are read where the
caller has them). Every pass keeps each element's arithmetic as eager execution does it, so
results are the same to the last bit. ``Program.text()`` is the readable listing, one numpy
call per line.

Read next: step.py, which records, compares and replays.
"""
from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from ..random import generator
from ..tensor import Tensor
from .recording import DEFAULTS, JitError, Op, Recorder, Ref, refs_in

__all__ = ["Program", "FlatParameters", "OUT_FUNCTIONS"]

# Array functions that accept ``out=``: replay writes their result into a preallocated buffer.
OUT_FUNCTIONS = {np.sum, np.max, np.min, np.amax, np.amin, np.mean, np.prod, np.argmax,
                 np.argmin, np.any, np.all, np.dot, np.clip, np.cumsum}

# Array functions that are their ufunc's reduce (axis defaults to None, not the reduce's 0).
_AS_REDUCE = {np.sum: np.add.reduce, np.prod: np.multiply.reduce, np.max: np.maximum.reduce,
              np.amax: np.maximum.reduce, np.min: np.minimum.reduce, np.amin: np.minimum.reduce}


# --- the compiled program ----------------------------------------------------------------------

class Program:
    """A recorded step turned into a list of (function, arguments) calls on fixed buffers."""

    def __init__(self, recorder: Recorder, persistent: set, output: int | None,
                 grads: list, write_backs: list, inputs: list, param_slots: list,
                 flat: FlatParameters, buffer_slots: list | None = None,
                 flat_buffers: tuple | None = None, state_entries: list | None = None) -> None:
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
                for (_, p_slot, _), g_slot, view, start in zip(param_slots, grad_slots, views,
                                                                flat.offsets):
                    arrays[p_slot] = view
                    grad_views[g_slot] = grad_buffer[start:start + view.size].reshape(view.shape)
                self.flat, self.flat_rate = flat, lr
                # lr·g is written over the gradients themselves when nobody reads them after
                # the step (zero_grad set every .grad to None): one parameter-sized buffer
                # fewer for the caches to hold.
                scaled = grad_buffer if all(slot is None for _, slot in grads) \
                    else np.empty_like(flat.buffer)
                self.flat_update = (np.asarray(lr, dtype=flat.buffer.dtype), grad_buffer,
                                    scaled, {id(op) for op in rec.ops[-2 * len(param_slots):]})
        # BatchNorm's buffers: running statistics and counters moved to flat buffers, updated
        # at the end of the step (``flat_buffers``: where to move them, one for each).
        self.at_end: list = []              # _AtEnd updates, in the order they run
        if flat_buffers is not None:
            tensors = dict(buffer_slots)
            counters = _counters(rec, tensors)
            if len(counters) > 1:
                self._stack_counters(counters, tensors, flat_buffers[1], arrays)
            averages = _running_averages(rec, tensors)
            if averages:
                self._stack_running_averages(averages, tensors, flat_buffers[0], arrays,
                                             grad_views)
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
            refs = refs_in((op.args, op.kwargs))
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
                sources = [arrays[r.slot] for r in refs_in(op.args)]
                if any(np.may_share_memory(value, s) for s in sources):
                    arrays[op.results[0]] = value
                    source = refs_in(op.args)[0].slot
                    root[op.results[0]] = root[source]
                    self.views[op.results[0]] = op
                    continue
                op.view = False
            for slot in op.results:   # (gradients and batch statistics: views laid out once)
                arrays[slot] = grad_views[slot] if slot in grad_views else \
                    np.empty_like(rec.arrays[slot])
            live_ops.append(op)
        self.arrays, self.root = arrays, root
        self.grad_arrays = [(param, None if slot is None else arrays[slot])
                            for param, slot in grads]
        read_at_end = {slot for update in self.at_end for slot in update.reads}
        self.ops = self._live(live_ops, read_at_end | {root[s] for s, _ in write_backs}
                              | {root[s] for _, s in grads if s is not None}
                              | ({root[output]} if output is not None else set()))
        self._reuse_buffers(read_at_end | {root[s] for s, _ in write_backs}
                            | set(grad_views)
                            | {root[s] for _, s in grads if s is not None}
                            | ({root[output]} if output is not None else set()))
        # Recorded calls made elsewhere (the updates at the end): left out of the listing and
        # the calls, kept above for liveness.
        self.moved = {id(op) for update in self.at_end for op in update.ops}
        if self.flat_update:
            self.moved |= self.flat_update[3]
        # What `intact` checks before every replay: each tensor and optimizer-state entry of
        # the step still holds the array this program reads and writes.
        tensors = [(p, slot) for p, slot, _ in param_slots] + \
            [(t, slot) for slot, t in buffer_slots or ()]
        self._tensors = ([t for t, _ in tensors], [arrays[slot] for _, slot in tensors])
        entries = state_entries or []
        self._entries = ([c for _, c, _ in entries], [k for _, _, k in entries],
                         [arrays[slot] for slot, _, _ in entries])
        self.calls = prologue + [self._call(op) for op in self.ops if id(op) not in self.moved]
        for update in self.at_end:
            # A statistic computed once (a constant batch, folded) is not in its place: copy it.
            update.calls[:0] = [(np.copyto, (view, arrays[slot]))
                                for slot, view in update.reads.items() if arrays[slot] is not view]
            self.calls += update.calls
        if self.flat_update:
            rate, grad_buffer, scaled, _ = self.flat_update
            self.calls += [(np.multiply, (rate, grad_buffer, scaled)),
                           (np.subtract, (self.flat.buffer, scaled, self.flat.buffer))]
        self.calls += [(np.copyto, (arrays[dest], arrays[src])) for dest, src in write_backs]
        # The recording's own arrays are no longer needed (the listing reads shapes and names
        # from the program's arrays): let them go, so a compiled step holds one set of buffers.
        for slot, kind in enumerate(rec.kinds):
            if kind not in ("state", "external"):
                rec.arrays[slot] = None
        rec.keep.clear()
        rec.slot_of.clear()
        rec.snapshots.clear()
        # One Python function that makes every call in turn (``run``). An input that no call
        # writes and no view made once reads is read where the caller has it, not copied.
        viewed = {root[slot] for slot in self.views}
        written_now = {root[w] for op in self.ops for w in op.writes}
        kept = viewed | written_now | {dest for dest, _ in write_backs} | \
            ({root[output]} if output is not None else set())
        self.replay = _replay_function(self.calls, [arrays[slot] for slot in inputs],
                                       [slot not in kept for slot in inputs])

    def _place_alike(self, entries: list, tensors: dict, flat: FlatParameters) -> tuple:
        """The entries (state slot first) whose arrays have the first one's type, and views of
        ``flat`` for their tensors (None if they cannot be placed): one buffer, one type."""
        rec = self.rec
        dtype = rec.arrays[entries[0][0]].dtype
        entries = [e for e in entries if rec.arrays[e[0]].dtype == dtype]
        return entries, flat.place([tensors[e[0]] for e in entries],
                                   [rec.arrays[e[0]] for e in entries])

    def _stack_running_averages(self, averages: list, tensors: dict, flat: FlatParameters,
                                arrays: list, preset: dict) -> None:
        """Running statistics updated as three calls at the end of the step, for every BatchNorm
        at once: the running means and variances become views of one flat buffer (moved there
        once, as the parameters are), and each batch mean and variance is computed straight
        into its place in a second one, laid out alike. Element by element the arithmetic is
        eager's, ``r = r·a;  r = r + b·v``; nothing in a training step reads ``r``, so doing it
        last changes nothing. ``preset`` receives the batch statistics' buffers."""
        rec = self.rec
        averages, views = self._place_alike(averages, tensors, flat)
        if views is None:
            return
        batch = np.empty_like(flat.buffer)
        decay, rates = np.empty_like(flat.buffer), np.empty_like(flat.buffer)
        for (r, a, b, _, source, _), view, start in zip(averages, views, flat.offsets):
            end = start + view.size
            arrays[r] = view
            preset[source] = batch[start:end].reshape(rec.arrays[source].shape)
            decay[start:end], rates[start:end] = a, b     # as numpy converts a number: once
        stats, scaled = flat.buffer, np.empty_like(batch)
        decays = ", ".join(repr(a) for a in dict.fromkeys(a for _, a, *_ in averages))
        factors = ", ".join(repr(b) for b in dict.fromkeys(b for _, _, b, *_ in averages))
        self.at_end.append(_AtEnd(
            flat, [(np.multiply, (stats, decay, stats)), (np.multiply, (rates, batch, scaled)),
                   (np.add, (stats, scaled, stats))],
            [op for *_, ops in averages for op in ops], {a[4]: preset[a[4]] for a in averages},
            [("np.multiply(stats, decay, out=stats)", "update_running_stats, all at once:"),
             ("np.multiply(rates, batch_stats, out=scaled)", "running means and variances: stats,"),
             ("np.add(stats, scaled, out=stats)", "the batch's: batch_stats (flat buffers)"),
             (f"#   decay = {decays} (1 − momentum); rates = {factors}", None),
             ("#   (momentum; momentum·n/(n − 1) for the variances); batch_stats holds "
              + ", ".join(f"t{a[4]}" for a in averages), None)]))

    def _stack_counters(self, counters: list, tensors: dict, flat: FlatParameters,
                        arrays: list) -> None:
        """Counters (``num_batches_tracked += 1``) as one call at the end of the step: views of
        one buffer, moved there once. (numpy's in-place call on a single number takes a slow
        path, ≈ 0.6 µs; on several at once, 0.2 µs.)"""
        counters, views = self._place_alike(counters, tensors, flat)
        if views is None:
            return
        steps = np.empty_like(flat.buffer)
        for (r, k, _), view, start in zip(counters, views, flat.offsets):
            arrays[r] = view
            steps[start:start + view.size] = k
        added = ", ".join(repr(k) for k in dict.fromkeys(k for _, k, _ in counters))
        self.at_end.append(_AtEnd(
            flat, [(np.add, (flat.buffer, steps, flat.buffer))], [op for *_, op in counters],
            {}, [(f"np.add(counts, {added}, out=counts)",
                     "num_batches_tracked, all at once (flat)")]))

    def intact(self) -> bool:
        """False once a parameter, buffer or optimizer state of the step was given a new array
        (``p.data = …``, a flat buffer of another compiled step, ``Module.to``): this program
        would read and write the old one."""
        # map: no Python-level loop, since this runs before every replay.
        containers, keys, arrays = self._entries
        return all(map(operator.is_, map(Tensor.peek, self._tensors[0]), self._tensors[1])) \
            and all(map(operator.is_, map(operator.getitem, containers, keys), arrays))

    def _reuse_buffers(self, pinned: set) -> None:
        """Give a temporary the buffer of an earlier one whose last reader has run (same shape,
        type and layout), as an allocator reuses freed memory: fewer buffers, warmer caches.
        ``pinned`` buffers are read after the step (gradients, the loss) and keep their own.
        The views made once are made again, on the buffers their sources now have."""
        rec, root, arrays = self.rec, self.root, self.arrays
        own = {s for op in self.ops for s in op.results
               if root[s] == s and rec.kinds[s] == "temp" and s not in pinned}
        last_use: dict = {}
        for i, op in enumerate(self.ops):
            for ref in refs_in((op.args, op.kwargs)):
                last_use[root[ref.slot]] = i
            for slot in op.writes:
                last_use[root[slot]] = i
        free: dict = {}     # (shape, dtype, strides) → [(last use of its occupant, buffer)]
        for i, op in enumerate(self.ops):
            for slot in op.results:
                if slot not in own:
                    continue
                layout = (arrays[slot].shape, arrays[slot].dtype, arrays[slot].strides)
                pool = free.setdefault(layout, [])
                done = next((j for j, (end, _) in enumerate(pool) if end < i), None)
                if done is not None:
                    arrays[slot] = pool.pop(done)[1]
                pool.append((last_use.get(slot, i), arrays[slot]))
        for slot, op in self.views.items():
            arrays[slot] = op.func(*self._resolve(op.args, arrays),
                                   **self._resolve(op.kwargs, arrays))

    def _fold(self, op: Op, arrays: list) -> tuple:
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
                needed |= {root[r.slot] for r in refs_in((op.args, op.kwargs))} | writes
        return live[::-1]

    @staticmethod
    def _resolve(value: Any, arrays: list) -> Any:
        if isinstance(value, Ref):
            return arrays[value.slot]
        if isinstance(value, tuple):
            return tuple(Program._resolve(v, arrays) for v in value)
        if isinstance(value, list):
            return [Program._resolve(v, arrays) for v in value]
        if isinstance(value, dict):
            return {k: Program._resolve(v, arrays) for k, v in value.items()}
        return value

    def _call(self, op: Op) -> tuple:
        """(function, positional arguments) for one replayed call: keyword arguments are bound
        once (functools.partial) or passed by position, since ``f(*a, **k)`` per call costs."""
        arrays = self.arrays
        args, kwargs = self._resolve(op.args, arrays), self._resolve(op.kwargs, arrays)
        kwargs = {k: v for k, v in kwargs.items() if not (k in DEFAULTS and v is DEFAULTS[k])}
        func = op.func
        if op.kind == "ufunc":
            if op.text.endswith(".at"):
                return _bind(func, kwargs), args
            outs = tuple(arrays[w] for w in (op.writes or op.results))
            if op.text.endswith(".reduce") and set(kwargs) <= {"axis", "keepdims"}:
                # reduce(array, axis, dtype, out, keepdims), all by position
                return func, (args[0], kwargs.get("axis", 0), None, outs[0],
                              kwargs.get("keepdims", False))
            if func is np.matmul and not kwargs and _dot_fits(args, outs[0]):
                return np.dot, args + outs      # the same product, less dispatch for 2-D
            if "." not in op.text[3:]:                      # a plain ufunc call
                args = _scalars_as_arrays(args)
                if func in (np.maximum, np.minimum):  # numpy deprecates their positional out
                    args = _numbers_as_full_arrays(op.args, args, outs[0])
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
        out = arrays[op.results[0]] if op.results else None
        if func in _AS_REDUCE and len(args) == 1 and set(kwargs) <= {"axis", "keepdims"}:
            # np.sum(a, axis, keepdims=…) is numpy's Python wrapper around np.add.reduce:
            # calling the reduce directly skips ≈ 0.8 µs of wrapping, with the same result.
            return _AS_REDUCE[func], (args[0], kwargs.get("axis"), None, out,
                                      kwargs.get("keepdims", False))
        if func in OUT_FUNCTIONS:
            return _bind(func, dict(kwargs, out=out)), args
        return _assign, (arrays[op.results[0]], _bind(func, kwargs), args)

    def run(self, inputs: list) -> None:
        self.replay(*inputs)

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
        if isinstance(value, Ref):
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

    def _line(self, op: Op) -> str:
        args = [self._text_of(a) for a in op.args]
        kw = [f"{k}={self._text_of(v)}" for k, v in op.kwargs.items()
              if not (k in DEFAULTS and v is DEFAULTS[k])]
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
        if op.kind == "ufunc" or op.func in OUT_FUNCTIONS:
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
        for i, op in enumerate(self.ops):
            now = ("forward" if i < first_backward else
                   "backward" if i <= last_backward else "update")
            if now != phase:
                lines.append(f"# --- {now} ---")
                phase = now
            if id(op) not in self.moved:
                lines.append(f"{self._line(op):<60}  # {op.where[1]}")
        if (self.at_end or self.flat_update) and phase != "update":
            lines.append("# --- update ---")
        for update in self.at_end:
            lines += [line if note is None else f"{line:<60}  # {note}"
                      for line, note in update.text]
        if self.flat_update:
            scaled = "grads" if self.flat_update[2] is self.flat_update[1] else "scaled"
            lines += [f"np.multiply({self.flat_rate!r}, grads, out={scaled})".ljust(60)
                      + "  # SGD.step, every parameter at once:",
                      f"np.subtract(params, {scaled}, out=params)".ljust(60)
                      + "  # params, grads: one flat buffer each"]
        return "\n".join(lines)


class _AtEnd:
    """Calls a pass moved to the end of the step, on tensors it moved to ``flat``: ``calls``
    (function, arguments) to replay, ``ops`` the recorded calls they stand for, ``reads`` the
    slots they read → the arrays they read them from (kept alive to the end), ``text`` (line,
    comment) pairs."""

    def __init__(self, flat: FlatParameters, calls: list, ops: list, reads: dict,
                 text: list) -> None:
        self.flat, self.calls, self.ops, self.reads, self.text = flat, calls, ops, reads, text


def _counters(rec: Recorder, movable: dict) -> list:
    """In-place additions of a whole number, ``r += k`` (BatchNorm's num_batches_tracked), to
    state that no other call of the step reads or writes: [(r, k, op)]."""
    uses = _uses(rec)
    return [(op.writes[0], op.args[1], op) for i, op in enumerate(rec.ops)
            if _is_ufunc(op, np.add, writes=1) and type(op.args[1]) is int
            and isinstance(op.args[0], Ref) and op.args[0].slot == op.writes[0]
            and op.writes[0] in movable and rec.kinds[op.writes[0]] == "state"
            and uses[op.writes[0]] == {i}]


def _uses(rec: Recorder) -> dict:
    """slot → indices of the recorded calls that read or write it."""
    uses: dict = {}
    for i, op in enumerate(rec.ops):
        for slot in [r.slot for r in refs_in((op.args, op.kwargs))] + list(op.writes):
            uses.setdefault(slot, set()).add(i)
    return uses


def _running_averages(rec: Recorder, movable: dict) -> list:
    """In-place running averages ``r *= a;  t = b·v;  r += t`` (how BatchNorm updates its running
    statistics) on state ``r`` that no other call of the step reads or writes, with ``v`` a
    temporary (or a view of one, ``source``) that nothing changes afterwards:
    [(r, a, b, v, source, (the three ops))]."""
    uses = _uses(rec)
    producer: dict = {}
    view_of: dict = {}
    written = set()
    for op in rec.ops:
        written.update(op.writes)
        for slot in op.results:
            producer[slot] = op
        if op.kind == "call" and op.view and op.text in (".reshape", ".ravel") \
                and isinstance(op.args[0], Ref):
            view_of[op.results[0]] = op.args[0].slot     # the same values in the same order
    found = []
    for i, scale in enumerate(rec.ops):
        if not (_is_ufunc(scale, np.multiply, writes=1) and isinstance(scale.args[0], Ref)
                and scale.args[0].slot == scale.writes[0] and type(scale.args[1]) is float):
            continue
        r = scale.writes[0]
        others = sorted(uses[r] - {i})
        if r not in movable or rec.kinds[r] != "state" or len(others) != 1:
            continue
        add = rec.ops[others[0]]
        if not (_is_ufunc(add, np.add, writes=1) and add.writes[0] == r
                and all(isinstance(a, Ref) for a in add.args) and add.args[0].slot == r):
            continue
        t = add.args[1].slot
        term = producer.get(t)
        if term is None or uses[t] != {others[0]} or not (
                _is_ufunc(term, np.multiply, writes=0) and type(term.args[0]) is float
                and isinstance(term.args[1], Ref)):
            continue
        v = term.args[1].slot
        source = view_of.get(v, v)
        made = producer.get(source)
        if made is None or made.kind != "ufunc" or rec.kinds[source] != "temp" \
                or any(s in written for s in (v, source)) \
                or any(view_of.get(s) == source and s in written for s in view_of) \
                or rec.arrays[v].size != rec.arrays[r].size \
                or rec.arrays[v].dtype != rec.arrays[r].dtype:
            continue
        found.append((r, scale.args[1], term.args[0], v, source, (scale, term, add)))
    return found


def _is_ufunc(op: Op, func: Any, writes: int) -> bool:
    """``op`` is ``func(a, b)`` with no keywords, in place (writes=1) or into a new array."""
    return (op.kind == "ufunc" and op.func is func and not op.kwargs and len(op.args) == 2
            and len(op.writes) == writes and len(op.results) == 1 - writes)


def _plain_sgd(rec: Recorder, param_slots: list) -> tuple | None:
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
        g_slot = scale.args[1].slot if len(scale.args) == 2 and isinstance(scale.args[1], Ref) \
            else None
        if g_slot is None or rec.kinds[g_slot] != "temp" or \
                rec.arrays[p_slot].dtype != dtype or rec.arrays[g_slot].dtype != dtype:
            return None
        is_scale = (scale.kind == "ufunc" and scale.func is np.multiply and not scale.writes
                    and not scale.kwargs and len(scale.args) == 2
                    and type(scale.args[0]) is float and isinstance(scale.args[1], Ref)
                    and scale.args[1].slot == g_slot)
        is_subtract = (subtract.kind == "ufunc" and subtract.func is np.subtract
                       and subtract.writes == (p_slot,) and not subtract.kwargs
                       and len(subtract.args) == 2 and isinstance(subtract.args[1], Ref)
                       and isinstance(subtract.args[0], Ref)
                       and subtract.args[0].slot == p_slot
                       and subtract.args[1].slot == scale.results[0])
        if not (is_scale and is_subtract) or (rate is not None and scale.args[0] != rate):
            return None
        rate = scale.args[0]
        grad_slots.append(g_slot)
    if len(set(grad_slots)) != len(grad_slots):
        return None
    return rate, grad_slots


class FlatParameters:
    """Tensors of a compiled step moved, once, into one flat buffer (as views of it): the
    parameters, so that plain SGD updates them all in two numpy calls; BatchNorm's running
    statistics and counters likewise (`Program.intact` tells when one was given a new array)."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None
        self.params: list = []
        self.views: list = []
        self.offsets: list = []     # where each parameter starts in the buffer

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
                self.offsets.append(start)
                start += array.size
            self.params = list(params)
            return self.views
        same = len(params) == len(self.params) and all(
            p is q and a is v for p, q, a, v in zip(params, self.params, arrays, self.views))
        return self.views if same else None


def _replay_function(calls: list, input_buffers: list, direct: list) -> Any:
    """One function that copies the inputs into their buffers, then makes every call with its
    arguments, one line each: ``replay(x, y)``. Generated once, as source text: a loop over
    bound calls costs ≈ 0.08 µs per call more than the calls written out. Every function and
    argument is a closure variable of the generated function (``v<n>``, one per object).

    An input marked ``direct`` (read only, by calls that take it as a plain argument) is used
    where the caller has it when its layout is the plain one (C-ordered, aligned), and copied
    into its buffer otherwise: the copy costs as much as a small product."""
    names: dict = {}            # id(object) → its name in the generated source
    values: list = []

    def name(value: Any) -> str:
        if id(value) not in names:
            names[id(value)] = f"v{len(values)}"
            values.append(value)
        return names[id(value)]

    inputs = [f"i{k}" for k in range(len(input_buffers))]
    lines = []
    for buffer, given, plain in zip(input_buffers, inputs, direct):
        copy = f"{name(np.copyto)}({name(buffer)}, {given})"
        if plain and buffer.flags.carray and all(_only_plain(buffer, f, a) for f, a in calls):
            names[id(buffer)] = given
            lines += [f"    if not {given}.flags.carray:", f"        {copy}",
                      f"        {given} = {name(buffer)}"]
        else:
            lines.append(f"    {copy}")
    for func, args in calls:
        call = f"{name(func)}({', '.join(name(a) for a in args)})"
        if func is _assign:     # written out: np.copyto(buffer, func(*arguments))
            buffer, inner, inner_args = args
            call = (f"{name(np.copyto)}({name(buffer)}, "
                    f"{name(inner)}({', '.join(name(a) for a in inner_args)}))")
        elif isinstance(func, functools.partial) and not func.args:   # keywords written out
            keywords = [f"{k}={name(v)}" for k, v in func.keywords.items()]
            call = f"{name(func.func)}({', '.join([name(a) for a in args] + keywords)})"
        elif func is _guard:    # _guard (which raises) only runs when the test came out other
            call = f"if bool({name(args[0])}) is not {args[1]}: {call}"
        lines.append(f"    {call}")
    source = (f"def make({', '.join(f'v{k}' for k in range(len(values)))}):\n"
              f"  def replay({', '.join(inputs)}):\n" + "\n".join(lines + ["    return None"])
              + "\n  return replay\n")
    scope: dict = {}
    exec(compile(source, "<compiled step>", "exec"), scope)  # noqa: S102 (our own text)
    return scope["make"](*values)


def _only_plain(array: np.ndarray, func: Any, args: tuple) -> bool:
    """``array`` appears in the call ``func(*args)`` only as a whole argument (not inside a
    tuple, a bound partial or a nested call), so the generated line can name another array."""
    def inside(value: Any) -> bool:
        if value is array:
            return True
        if isinstance(value, (tuple, list)):
            return any(inside(v) for v in value)
        if isinstance(value, dict):
            return any(inside(v) for v in value.values())
        if isinstance(value, functools.partial):
            return inside(value.args) or inside(value.keywords)
        return False
    return not inside(func) and not any(inside(a) for a in args if a is not array)


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


def _numbers_as_full_arrays(recorded: tuple, args: tuple, out: np.ndarray) -> tuple:
    """np.maximum(x, 0) against a constant array of x's shape, made once: the same values, but
    numpy's max/min loops are vectorised for two arrays and much slower against a single
    number (3× for a (60, 100) float32 array). Only numbers written in the step (not arrays
    that change) are expanded."""
    return tuple(np.full(out.shape, a, dtype=a.dtype)
                 if not isinstance(r, Ref) and isinstance(a, np.ndarray) and a.ndim == 0
                 and out.size > 1 else a
                 for r, a in zip(recorded, args))


def _dot_fits(args: tuple, out: np.ndarray) -> bool:
    """np.dot(a, b, out) can stand for np.matmul: 2-D operands of out's type, out C-ordered."""
    return (len(args) == 2 and all(isinstance(a, np.ndarray) and a.ndim == 2
                                   and a.dtype == out.dtype for a in args)
            and out.flags.c_contiguous)


def _copy_unsafe(buffer: np.ndarray, source: np.ndarray) -> None:
    np.copyto(buffer, source, casting="unsafe")     # what .astype() does


def _assign(buffer: np.ndarray, func: Any, args: tuple) -> None:
    """Calls without ``out=``: compute, then copy into the slot's fixed buffer."""
    np.copyto(buffer, func(*args))


def _draw(method: str, args: tuple, kwargs: dict, buffer: np.ndarray) -> None:
    # The generator is looked up at every replay: manual_seed replaces it.
    np.copyto(buffer, getattr(generator(), method)(*args, **kwargs))


def _guard(array: np.ndarray, expected: bool, where: tuple) -> None:
    if bool(array) != expected:
        raise JitError(f"a test on tensor values at {where[0]} (in {where[1]}) came out "
                       f"{not expected} where the traced step had {expected}: the compiled "
                       "program only holds the branch taken when it was traced (this step may "
                       "have been partly applied). Check the inputs, or run the step eagerly.")

