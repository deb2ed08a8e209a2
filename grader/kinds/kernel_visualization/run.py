"""The scoring side of the kernel visualization: it draws the checkpoint's key, matches what the
helper was given, and reads the PNGs the code saved.

The worker sends each weight that reached the helper as its shape and a sample of its values;
the scorer computes what the checkpoint holds at those positions (pattern.value) and so finds
which conv layer each call drew. To forge a match, a submission must read the weights from the
checkpoint it was given, which is the homework.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ...pngfile import read_png
from ..wire import decode
from . import pattern
from .facts import KernelFacts, KernelReply
from .spec import DEFAULT_FLAGS

RANKS = {"kernels": 5}
VERIFIED = False  # judged by the scorer itself
IMAGES = 12  # PNGs read, at most


def probe_key(check) -> tuple:
    return ("kernels", check.task.id)


def required_symbols(check) -> list[str]:
    p = check.task.params
    return [p["function"], p["model"], p["helper"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    task = check.task
    model = runner.rubric.model(task.params["model"])
    variant = next((v for v in model.variants if v.num_classes == task.params["num_classes"]), model.variants[0])
    args, kwargs = model.call_for(dataclasses.replace(variant, values={**variant.values,
                                                                      "num_classes": task.params["num_classes"]}))
    drawn = pattern.draw()
    runner.kind_state.setdefault("kernel_visualization", {})[key] = drawn
    return "kernels", {"function": task.params["function"], "helper": task.params["helper"], "model": model.symbol,
                       "args": args, "kwargs": kwargs, "key": drawn,
                       "flags": task.params.get("flags") or DEFAULT_FLAGS,
                       "layout": (runner.facts.handoffs.get(task.id) or {}).get("layout")}, \
        f"{task.params['function']}()"


def judge(runner, key: tuple, reply: dict) -> dict:
    drawn = runner.kind_state["kernel_visualization"].pop(key)
    return judged(drawn, decode(KernelReply, reply)).as_wire()


def judged(drawn: dict, reply: KernelReply) -> KernelFacts:
    calls = [dataclasses.replace(c, matches=pattern.matches(drawn, reply.conv_shapes, c.shape, c.values), values=[])
             for c in reply.calls]
    return KernelFacts(calls=calls, conv_shapes=reply.conv_shapes, images=reply.images,
                       made_folders=reply.made_folders, fewer_channels=reply.fewer_channels, served=reply.served,
                       error=reply.error)


def after(runner) -> None:
    """Read the PNGs the student's code saved, now that nothing of theirs is running: only
    regular files inside the module's folder, reached without links, small enough, and
    really PNG; everything else is listed as not shown."""
    for key, outcome in runner.facts.probes.items():
        if key[0] != "kernels" or not isinstance(outcome.result, dict):
            continue
        task_id = key[1]
        task = next(t for t in runner.rubric.tasks if t.id == task_id)
        res = decode(KernelFacts, outcome.result)
        module = runner.facts.symbol(task.params["function"]).get("module") or runner.modules[0]["module"]
        base = (runner.root / module).parent.resolve()
        calls = [c.name.lower() for c in res.calls]
        names = [n for n in res.images[:IMAGES] if "\x00" not in n and len(n) <= 500]
        names.sort(key=lambda n: (calls.index(Path(n).stem.lower()) if Path(n).stem.lower() in calls else len(calls), n))
        keys, rejected = [], []
        for name in names:
            data, why = read_png(base, name)
            if data is None:
                rejected.append(f"{name} ({why})")
                continue
            runner.facts.artifacts[f"{task_id}/{name}"] = data
            keys.append(f"{task_id}/{name}")
        runner.facts.images[task_id] = keys
        runner.facts.rejected_images[task_id] = rejected
