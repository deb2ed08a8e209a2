"""Architecture checks for networks no row-by-row table describes: residual networks
(stages of basic blocks, shortcut types) and "batch norm after every convolution".

Both read the traced forward pass (rows of conv, batch-norm, add... in call order), so
the same computation passes whatever the classes and attributes are called.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..facts import Facts
from ..results import CheckResult
from ..rubric import Check, Rubric
from .common import explain, result, unavailable

_ADD_OPS = {"add", "add_", "__add__", "__iadd__", "__radd__"}


@dataclass
class Conv:
    index: int  # position in the trace
    cin: int
    cout: int
    kernel: int
    stride: int
    hw: tuple[int, ...]
    bias: int  # bias parameters (0 when bias=False)
    where: str


@dataclass
class ResNetShape:
    stem: list[Conv]
    stages: list[tuple[int, int]]  # (width, basic blocks), in order
    projections: list[Conv]  # 1x1 convolutions (shortcuts)
    adds: int  # residual additions on feature maps
    batch_norms: int
    classifier: tuple[int, int] | None  # (in, out) of the last Linear
    conv_bias: int
    stage_sizes: list[int] = field(default_factory=list)  # spatial size at each stage's output
    stage_strides: list[list[int]] = field(default_factory=list)  # strides of each stage's 3x3 convs
    shape_changes: int = 0  # stages whose first block changes the shape (stride or channels)

    def layout(self) -> str:
        widths = "/".join(str(w) for w, _ in self.stages) or "none"
        blocks = "/".join(str(b) for _, b in self.stages) or "none"
        return f"stages of width {widths} with {blocks} basic blocks"


def _convs(rows: list[dict]) -> list[Conv]:
    out = []
    for i, r in enumerate(rows):
        if r.get("type") != "Conv2d" or len(r.get("shape", [])) != 3 or not r.get("in_shape"):
            continue
        attrs = r.get("attrs") or {}
        k = (attrs.get("kernel") or [0])[0]
        groups = attrs.get("groups") or 1
        cin, cout = r["in_shape"][0], r["shape"][0]
        weights = k * k * cin * cout // max(groups, 1)
        out.append(Conv(i, cin, cout, k, (attrs.get("stride") or [1])[0], tuple(r["shape"][1:]),
                        max(0, int(r.get("params", 0)) - weights), str(r.get("where", ""))))
    return out


def analyze_resnet(rows: list[dict], stem_convs: int = 1) -> ResNetShape:
    convs = _convs(rows)
    stem, rest = convs[:stem_convs], convs[stem_convs:]
    projections = [c for c in rest if c.kernel == 1]
    body = [c for c in rest if c.kernel != 1]
    stages: list[list[Conv]] = []
    for conv in body:
        if stages and stages[-1][-1].cout == conv.cout:
            stages[-1].append(conv)
        else:
            stages.append([conv])
    adds = sum(1 for r in rows if r.get("type") == "Other" and r.get("op") in _ADD_OPS and len(r.get("shape", [])) == 3)
    norms = sum(1 for r in rows if str(r.get("type", "")).startswith("BatchNorm"))
    linears = [r for r in rows if r.get("type") == "Linear" and r.get("in_shape") and r.get("shape")]
    classifier = (linears[-1]["in_shape"][-1], linears[-1]["shape"][-1]) if linears else None
    return ResNetShape(stem, [(s[0].cout, len(s) // 2 + len(s) % 2) for s in stages], projections, adds, norms,
                       classifier, sum(c.bias for c in convs), [s[-1].hw[0] if s[-1].hw else 0 for s in stages],
                       [[c.stride for c in s] for s in stages],
                       sum(1 for s in stages if s[0].stride > 1 or s[0].cin != s[0].cout))


def resnet_distance(spec: dict, shape: ResNetShape) -> int:
    """How far a traced network is from the spec: 0 for the right layout. Used to pick
    among a student's classes."""
    want = [tuple(s) for s in spec["stages"]]
    got = shape.stages
    distance = abs(len(want) - len(got)) * 10
    for (w1, b1), (w2, b2) in zip(want, got):
        distance += (w1 != w2) * 3 + abs(b1 - b2)
    return distance + (shape.adds == 0) * 5


def resnet_verdict(spec: dict, shape: ResNetShape, params: int, num_classes: int | None) -> tuple[bool, str, str]:
    """(passed, message, hint) in the handout's terms."""
    name = spec.get("name", "the network")
    want = [tuple(s) for s in spec["stages"]]
    blocks = sum(b for _, b in want)
    expected_layout = "/".join(str(w) for w, _ in want) + " with " + "/".join(str(b) for _, b in want) + " basic blocks"
    if shape.stages != want:
        message = f"Found {shape.layout()} ({params:,} parameters); {name} has stages of width {expected_layout}."
        known = spec.get("known_layouts", {})
        for label, layout in known.items():
            if [tuple(s) for s in layout] == shape.stages:
                message += f" The layout found is {label}."
        return False, message, spec.get("layout_hint", "")
    if shape.adds == 0:
        return False, (f"The layers are right ({shape.layout()}), but forward adds no shortcut: this is a plain "
                       f"network, not a residual one."), "Each basic block returns relu(F(x) + shortcut(x))."
    if shape.adds < blocks:
        return False, (f"Only {shape.adds} of the {blocks} basic blocks add their shortcut in forward."),\
            "Each basic block returns relu(F(x) + shortcut(x))."
    transitions = shape.shape_changes
    n_proj = len(shape.projections)
    counts = {int(k): v for k, v in spec.get("counts", {}).items()}
    if n_proj == 0:
        kind = "identity shortcuts (option A: parameter-free, channels zero-padded where the shape changes)"
    elif n_proj == transitions:
        kind = "1x1 projection shortcuts where the shape changes (option B)"
    elif n_proj >= blocks:
        return False, (f"Every one of the {n_proj} shortcuts is a 1x1 convolution (option C in the paper), "
                       f"{params:,} parameters. {name} uses identity shortcuts, with a projection at most where the "
                       f"number of channels changes ({transitions} place{'s' if transitions != 1 else ''})."), \
            "Use the identity (x itself) as the shortcut whenever input and output shapes agree."
    else:
        return False, (f"{n_proj} shortcuts are 1x1 convolutions; the shape changes in {transitions} places, so "
                       f"option B would have {transitions}."), ""
    if num_classes is not None and shape.classifier and shape.classifier[1] != num_classes:
        return False, f"The last Linear layer has {shape.classifier[1]} outputs; expected {num_classes}.", ""
    message = f"{name}: {shape.layout()}, {shape.adds} residual additions, {kind}; {params:,} parameters"
    if params in counts:
        message += f", as {counts[params]} should have."
    else:
        listed = " or ".join(f"{c:,} for {label.split(' (')[0]}" for c, label in counts.items())
        extra = f" Convolutions with bias=True add {shape.conv_bias:,} parameters that batch norm makes redundant." \
            if shape.conv_bias else ""
        message += f", not {listed}.{extra} The layout is right, so this is accepted."
    if spec.get("first_stage_stride_note") and shape.stage_strides:
        if any(st > 1 for st in shape.stage_strides[0]):
            message += (" The first stage's convolutions use stride 2, as the handout's text says; the paper uses "
                        "stride 1 there. Both are accepted.")
        else:
            message += (" The first stage's convolutions use stride 1, as in the paper (the handout's text says "
                        "stride 2; that slip is not graded).")
    for note in spec.get("notes", []):
        message += " " + note
    return True, message, ""


def batchnorm_verdict(spec: dict, rows: list[dict], params: int) -> tuple[bool, str, str]:
    """Each convolution followed by a batch norm over its channels, and otherwise the
    model it extends (`base_params` weights)."""
    convs = _convs(rows)
    missing = []
    bn_params = 0
    for conv in convs:
        after = next((r for r in rows[conv.index + 1:] if r.get("type") not in ("Other",)), None)
        if after is None or not str(after.get("type", "")).startswith("BatchNorm") or after.get("shape", [0])[0] != conv.cout:
            missing.append(conv)
    for r in rows:
        if str(r.get("type", "")).startswith("BatchNorm"):
            bn_params += int(r.get("params", 0))
    if not convs:
        return False, "No convolution ran in forward.", ""
    if missing:
        which = ", ".join(f"the conv with {c.cout} filters ({c.where})" if c.where else f"the conv with {c.cout} filters"
                          for c in missing)
        return False, f"No batch norm directly after {which}.", "Put nn.BatchNorm2d(channels) right after each nn.Conv2d, before the activation."
    base = spec.get("base_params")
    if base is not None and params - bn_params != base:
        return False, (f"Batch norm follows every convolution, but without it the model has {params - bn_params:,} "
                       f"parameters; {spec.get('base_name', 'the base model')} has {base:,}."), \
            "Add the batch-norm layers and leave the rest of the model as the table describes it."
    widths = " and ".join(str(c.cout) for c in convs)
    return True, (f"Each of the {len(convs)} convolutions is followed by batch norm ({widths} channels): {params:,} "
                  f"parameters, {bn_params:,} of them batch norm's."), ""


def structure(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    model, variant = check.model, check.variant
    outcome = facts.probes.get(("trace", model.symbol, variant.suffix))
    problem = unavailable(check, facts, model.symbol, outcome)
    if problem:
        return problem
    res = outcome.result
    if not res.get("constructed"):
        return result(check, False, f"Not graded: {model.symbol} could not be built (see its 'defined and builds' check).")
    if res.get("error"):
        return result(check, False, explain(res["error"], f"{model.symbol}.forward") + " The structure could not be traced.")
    spec = model.structure
    rows, params = res.get("rows", []), int(res.get("params_total", 0))
    if spec["kind"] == "resnet":
        passed, message, hint = resnet_verdict(spec, analyze_resnet(rows, spec.get("stem_convs", 1)), params,
                                               variant.num_classes)
    else:
        passed, message, hint = batchnorm_verdict(spec, rows, params)
    return result(check, passed, message, hint)


CHECKS = {"structure": structure}
