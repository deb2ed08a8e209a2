"""Hand a student's function the checkpoint its own code reads, in the layout handoff.py found.

While the function runs, every `torch.load` it makes gets a fresh copy of the grader's
checkpoint (the path it names is recorded, not trusted: students build it from flags and
experiment names), and `load_state_dict` of that checkpoint into a model built for another
class count fills what matches instead of failing (a 7-class model for the category task).
"""
from __future__ import annotations

import contextlib
import copy
import os
import re
from collections import OrderedDict

import torch
import torch.nn as nn

WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "model_state", "net", "net_state_dict", "network",
                "weights", "params", "model_dict", "state")
_TO_INDEX = re.compile(r"(char|token|letter|word|c|s)_?(2|to)_?(idx|index|id|int|i|ix|num)\b|stoi", re.I)
_TO_CHAR = re.compile(r"(idx|index|id|int|i|ix|num)_?(2|to)_?(char|token|letter|word|c|s)\b|itos", re.I)
_VOCAB = re.compile(r"vocab|chars|characters|alphabet|tokens|letters", re.I)


class AnyCheckpoint(OrderedDict):
    """For code that does not show its layout: a state_dict that also answers
    checkpoint['model'] (or another wrapper key) with the weights, and lends the model's
    own attributes (checkpoint.features, checkpoint.state_dict())."""

    def __init__(self, weights: dict, model: nn.Module | None, extras: dict):
        super().__init__(weights)
        self.__dict__["_weights"] = weights
        self.__dict__["_model"] = model
        self.__dict__["_extras"] = extras

    def __missing__(self, key):
        if key in self._extras:
            return self._extras[key]
        if isinstance(key, str) and "." not in key:
            return self._weights
        raise KeyError(key)

    def __contains__(self, key):
        return OrderedDict.__contains__(self, key) or key in self._extras or key in WRAPPER_KEYS

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, name):
        if name.startswith("__") or self.__dict__.get("_model") is None:
            raise AttributeError(name)
        return getattr(self._model, name)


def extra_value(key: str, namespace: dict, vocabulary: list[str] | None):
    """What to put under a key the student's code reads beside the weights: the vocabulary
    in the form its name says, else the submission's own constant of that name."""
    if vocabulary is not None:
        if _TO_INDEX.search(key):
            return {ch: i for i, ch in enumerate(vocabulary)}
        if _TO_CHAR.search(key):
            return dict(enumerate(vocabulary))
        if _VOCAB.search(key):
            return len(vocabulary) if "size" in key.lower() or key.lower().startswith(("n_", "num")) else list(vocabulary)
    for name in (key, key.upper()):
        value = namespace.get(name)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return value
    for value in namespace.values():  # a config dict of the submission's that has this key
        if isinstance(value, dict) and key in value and isinstance(value[key], (int, float, str)):
            return value[key]
    return None


def build(layout: dict, weights: dict, model: nn.Module | None, extras: dict):
    """The object `torch.load` returns, for a layout as handoff.Layout describes it."""
    kind = layout.get("kind")
    if kind == "state_dict":
        out = OrderedDict(weights)
        out.update(extras)
        return out
    if kind == "wrapped":
        return {layout.get("key") or "model": OrderedDict(weights), **extras}
    if kind == "model" and model is not None:
        return model
    return AnyCheckpoint(OrderedDict(weights), model, extras)


def on_disk(layout: dict, weights: dict, model: nn.Module | None, extras: dict):
    """What the file at the checkpoint path holds (code that opens it another way reads this)."""
    kind = layout.get("kind")
    if kind in ("state_dict", "wrapped") or (kind == "model" and model is not None):
        return build(layout, weights, model, extras)
    return OrderedDict(weights)


class Serving:
    """Patch torch.load and load_state_dict while the student's function runs.

    `make()` returns a fresh checkpoint object for each load; `on_load(module, state_dict)`
    may take over a load of the grader's weights (the writer crafts its own) and returns
    True when it did."""

    def __init__(self, make, on_load=None):
        self.make = make
        self.on_load = on_load
        self.loads: list[str] = []  # the paths the student's code asked for
        self.adapted: list[str] = []  # keys whose shapes differed from the model it was loaded into
        self._ours: set[int] = set()  # data_ptrs of the tensors handed out

    def _remember(self, obj):
        values = obj.values() if isinstance(obj, dict) else []
        for value in values:
            if isinstance(value, torch.Tensor):
                self._ours.add(value.data_ptr())
            elif isinstance(value, dict):
                self._remember(value)
        if isinstance(obj, nn.Module):
            self._ours.update(p.data_ptr() for p in obj.state_dict().values())

    def is_ours(self, state_dict) -> bool:
        return isinstance(state_dict, dict) and any(
            isinstance(v, torch.Tensor) and v.data_ptr() in self._ours for v in list(state_dict.values())[:64])

    @contextlib.contextmanager
    def active(self):
        original_load, original_lsd = torch.load, nn.Module.load_state_dict
        serving = self

        def load(f, *args, **kwargs):
            name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", type(f).__name__)
            if len(serving.loads) < 20:
                serving.loads.append(str(name)[:200])
            obj = serving.make()
            serving._remember(obj)
            return obj

        def load_state_dict(module, state_dict, strict=True, assign=False):
            if serving.on_load is not None and serving.on_load(module, state_dict):
                return torch.nn.modules.module._IncompatibleKeys([], [])
            if not serving.is_ours(state_dict):
                return original_lsd(module, state_dict, strict=strict, assign=assign)
            own = module.state_dict()
            fits = OrderedDict((k, v) for k, v in state_dict.items()
                               if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape)
            if not fits:
                return original_lsd(module, state_dict, strict=strict, assign=assign)
            serving.adapted += [k for k, v in state_dict.items() if k in own and k not in fits][:8]
            original_lsd(module, fits, strict=False, assign=assign)
            return torch.nn.modules.module._IncompatibleKeys([], [])

        torch.load, nn.Module.load_state_dict = load, load_state_dict
        try:
            yield self
        finally:
            torch.load, nn.Module.load_state_dict = original_load, original_lsd


def fresh_weights(weights: dict) -> OrderedDict:
    """A copy whose conv kernels the student's code may change in place (normalising them to
    draw, say) without touching the grader's; the large Linear weights are shared, since
    copying AlexNet's 230 MB for every load would only cost memory."""
    return OrderedDict((k, v.clone() if v.dim() == 4 else v) for k, v in weights.items())


def fresh_model(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
