"""Choose which of a student's classes to grade for a rubric model whose name varies.

The worker traces every candidate (picking.candidates); here, in the scoring process, the
candidate closest to the spec wins: it must build and give one score per class, then the
fewest differences from the table or the residual layout, then the later definition
(notebooks redefine classes as students iterate).
"""
from __future__ import annotations

from dataclasses import dataclass

from .checks.architecture import compare
from .checks.structure import analyze_resnet, batchnorm_verdict, resnet_distance
from .rubric import ModelSpec, Variant


@dataclass
class Pick:
    name: str | None  # the chosen candidate, or None
    default_args: bool  # it builds only with its own defaults, so probes call it with no arguments
    line: int | None
    reason: str  # one sentence for the report
    considered: list[str]


def distance(model: ModelSpec, variant: Variant, cand: dict) -> int:
    rows = cand.get("rows") or []
    if model.structure and model.structure.get("kind") == "resnet":
        return resnet_distance(model.structure, analyze_resnet(rows, model.structure.get("stem_convs", 1)))
    if model.structure:
        ok, _, _ = batchnorm_verdict(model.structure, rows, int(cand.get("params_total") or 0))
        return 0 if ok else 1 + (not any(str(r.get("type", "")).startswith("BatchNorm") for r in rows))
    if model.table is not None:
        return min(compare(model.rows_for(variant, t), rows, model.input).problem_count() for _, t in model.readings())
    return 0


def choose(model: ModelSpec, variant: Variant, candidates: list[dict]) -> Pick:
    want = variant.num_classes
    usable, considered = [], []
    for order, cand in enumerate(candidates):
        name = cand["name"]
        if not cand.get("constructed"):
            considered.append(f"{name} ({_why_not_built(cand.get('error') or {})})")
            continue
        shape = cand.get("output_shape")
        if cand.get("error") or not shape:
            considered.append(f"{name} (forward on a [2, {', '.join(map(str, model.input))}] batch fails)")
            continue
        if want is not None and shape != [want]:
            considered.append(f"{name} (gives {shape}, not {want} scores per image)")
            continue
        usable.append((distance(model, variant, cand), -order, cand))
    if not usable:
        return Pick(None, False, None, "", considered)
    usable.sort(key=lambda u: (u[0], u[1]))
    best = usable[0][2]
    others = [f"{c['name']} ({int(c.get('params_total') or 0):,} parameters)" for _, _, c in usable[1:]]
    what = model.title or model.symbol
    reason = (f"of the nn.Module classes (and model-building functions) defined there, it is the one closest to {what}'s "
              f"{'layout' if model.structure else 'table'}.")
    if others or considered:
        reason += " Also considered: " + "; ".join(others + considered) + "."
    return Pick(best["name"], bool(best.get("default_args")), best.get("line"), reason, others + considered)


def _why_not_built(error: dict) -> str:
    kind, message = error.get("type", ""), str(error.get("message", ""))
    where = f" at line {error['line']}" if error.get("line") else ""
    if kind == "NotImplementedError":
        return f"not implemented yet: it raises NotImplementedError{where}"
    if kind == "TypeError" and "required" in message and "argument" in message:
        return "needs constructor arguments"
    if kind == "NotInstalledError":  # its message names the missing module, the one thing to fix
        return f"building it raised {kind}{where}: {message}"
    return f"building it raised {kind or 'an error'}{where}" if kind else "does not build"
