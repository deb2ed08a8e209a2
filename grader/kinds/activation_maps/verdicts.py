"""The activation-maps check: the student's first two conv layers run on the handout's
images, and the grader draws what they produce."""
from __future__ import annotations

from ...checks.common import explain, result, unavailable
from ...facts import Facts
from ...results import CheckResult
from ...rubric import Check, Rubric


def maps(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    p = check.task.params
    symbol = p["model"]
    outcome = facts.probes.get(("activations", check.task.id))
    problem = unavailable(check, facts, symbol, outcome)
    if problem:
        return problem
    res = outcome.result or {}
    if res.get("error"):
        return result(check, False, explain(res["error"], f"Running {symbol} on the handout's images"))
    images = res.get("images", [])
    want = list(p["channels"])
    problems = []
    for image in images:
        got = [layer["channels"] for layer in image.get("layers", [])]
        if len(got) < len(want):
            problems.append(f"on {image['name']} only {len(got)} conv layer{'s' if len(got) != 1 else ''} ran")
        elif got[:len(want)] != want:
            problems.append(f"the first two conv layers give {' and '.join(map(str, got[:2]))} maps, not "
                            f"{' and '.join(map(str, want))}")
    if problems:
        return result(check, False, f"Running {symbol} on the handout's images: {problems[0]}.",
                      f"The handout's {symbol} has {want[0]} filters in its first conv layer"
                      + (f" and {want[1]} in its second." if len(want) > 1 else "."))
    first = images[0]["layers"] if images else []
    shapes = " and ".join(f"{layer['channels']} maps of {layer['size'][0]}x{layer['size'][1]}" for layer in first[:2])
    names = " and ".join(image["name"] for image in images)
    message = (f"{symbol}'s first two conv layers (after their ReLU) on {names}: {shapes}, drawn in the HTML report. "
               "They come from the weights the model starts with: the grader does not train it.")
    if any(image.get("synthetic") for image in images):
        message += " The course's images were not available to this grader, so generated stand-ins were used."
    if any(not layer.get("relu_seen") for image in images for layer in image.get("layers", [])):
        message += " No ReLU was seen right after a conv layer, so the grader applied one before drawing."
    flat = sum(sum(layer.get("flat", [])) for image in images for layer in image.get("layers", []))
    total = sum(len(layer.get("flat", [])) for image in images for layer in image.get("layers", []))
    if flat:
        message += f" {flat} of the {total} maps are blank (zero everywhere after the ReLU, usual for untrained weights)."
    return result(check, True, message, images=list(facts.images.get(check.task.id, [])))


CHECKS = {"maps": maps}
