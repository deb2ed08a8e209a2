"""The scoring side of the activation maps: the request (the model, the handout's images), and the
grids drawn from the maps once nothing of the submission runs."""
from __future__ import annotations

from ...render.png import draw_activation_maps
from ...replies import IMAGE_LAYER, NAME, Need, Text

RANKS = {"activations": 5}
VERIFIED = False  # measured in the worker: see the kind's `unverified`
RESULTS = {"activations": {"images": [{"name": Need(NAME), "synthetic": bool, "layers": [IMAGE_LAYER]}],
                           "unreadable": [Text(300)]}}


def probe_key(check) -> tuple:
    return ("activations", check.task.id)


def required_symbols(check) -> list[str]:
    return [check.task.params["model"]]


def inside_key(check) -> None:
    return None


def request(runner, key: tuple, check) -> tuple[str, dict, str]:
    p = check.task.params
    model = runner.rubric.model(p["model"])
    args, kwargs = runner._call_args(model, model.variants[0])
    images = [[name, runner.inputs.get(name)] for name in p["images"]]
    return "activations", {"symbol": model.symbol, "args": args, "kwargs": kwargs, "images": images,
                           "input": list(model.input), "seed": runner.rubric.training.seed}, \
        f"running {model.symbol} on {len(images)} images"


def after(runner) -> None:
    for key, outcome in runner.facts.probes.items():
        if key[0] == "activations" and outcome.result:
            draw_activation_maps(runner.facts, key[1], outcome.result)
