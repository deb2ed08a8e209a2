"""Small functions whose replies are forged: the scorer judges raw outputs on inputs it drew.

The wrong Swish is sigmoid(x) and the wrong penalty is L2. Each forgery rewrites the
worker's replies with what the old probes used to report for a correct answer (no error,
zero difference, a constant gradient ratio), or replays outputs computed correctly on
inputs of its own choosing. Neither is the right answer on the scorer's inputs.
"""
import shutil
from pathlib import Path

import pytest

from gradekit import HERE, by_id, mutate
from grader import api
from grader.kinds.activation_function import run as activation
from grader.kinds.activation_function.spec import SHAPE
from grader.kinds.weight_penalty import run as penalty

PLAIN = HERE / "submissions" / "ece661_plain"
WRONG = (("return x * torch.sigmoid(x)", "return torch.sigmoid(x)"), ("p.abs().sum()", "p.pow(2).sum()"))

VERDICTS = '''
import grader.protocol as _protocol
_encode = _protocol.encode
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and "silu_routes" in result:  # the activation's reply
        result.update(max_error=0.0, grad_error=0.0, shape_ok=True, worst=None)
    if isinstance(result, dict) and "call" in result and "params" in result:  # the penalty's
        result["params"] = [{"name": n, "grad": True, "min": 1e-3, "max": 1e-3, "zero": False}
                            for n in ("0.weight", "0.bias", "3.weight", "3.bias")]
    return message
_protocol.encode = lambda message: _encode(_forge(message))
'''

REPLAY = '''
import math as _math
import grader.protocol as _protocol
_encode = _protocol.encode
_MINE = [-8 + 16 * i / 299 for i in range(300)]  # inputs of its own, with the right answers
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and "y" in result:
        s = [1 / (1 + _math.exp(-v)) for v in _MINE]
        result["y"] = [v * si for v, si in zip(_MINE, s)]
        result["grad"] = [si + v * si * (1 - si) for v, si in zip(_MINE, s)]
    if isinstance(result, dict) and isinstance(result.get("grads"), dict):
        result["grads"] = {n: [1e-3] * len(g) for n, g in result["grads"].items() if g}
    return message
_protocol.encode = lambda message: _encode(_forge(message))
'''


def _submission(folder: Path, prefix: str = "") -> Path:
    shutil.copytree(PLAIN, folder)
    path = folder / "simplenn_cifar10_dev.py"
    path.write_text(prefix + mutate(path.read_text(), *WRONG))
    return folder


def _grade(folder: Path):
    return by_id(api.grade(folder, "ece661-hw2", api.Options(device="cpu", only=("swish.values", "l1.*"))))


@pytest.mark.parametrize("forgery", [VERDICTS, REPLAY], ids=["verdicts", "replay"])
def test_forged_function_replies_do_not_pass(tmp_path, forgery):
    checks = _grade(_submission(tmp_path / "sub", forgery))
    assert not checks["swish.values"].passed, checks["swish.values"].message
    assert not checks["l1.gradient"].passed, checks["l1.gradient"].message


def test_the_scorer_draws_new_inputs_for_every_grade():
    assert activation.draw() != activation.draw()
    weights = penalty.draw()
    assert {n: len(v) for n, v in weights.items()} == {"0.weight": 108, "0.bias": 4, "3.weight": 320, "3.bias": 5}
    assert min(abs(v) for values in weights.values() for v in values) >= 0.01


def test_the_judgement_is_the_handouts_formula_on_those_inputs():
    import math

    x = activation.draw()
    swish = [(v / (1 + math.exp(-v)), 1 / (1 + math.exp(-v)) * (1 + v * (1 - 1 / (1 + math.exp(-v))))) for v in x]
    right = {"shape": SHAPE, "y": [a for a, _ in swish], "grad": [b for _, b in swish]}
    judged = activation.judged(x, right)
    assert judged["max_error"] < 1e-12 and judged["grad_error"] < 1e-12
    wrong = activation.judged(x, {**right, "y": [1 / (1 + math.exp(-v)) for v in x]})
    assert wrong["max_error"] > 0.5 and wrong["worst"]["want"] == pytest.approx(swish[x.index(wrong["worst"]["x"])][0])
    bad = activation.judged(x, {**right, "y": ["1.0"] * 300})
    assert bad["error"]["message"] == "the grading process sent values that are not 300 numbers"
    weights = penalty.draw()
    l1 = {n: [1e-3 * math.copysign(1, v) for v in w] for n, w in weights.items()}
    params = penalty.judged(weights, {"call": "f(model, strength)", "value": 0.1, "grads": l1})["params"]
    assert all(p["min"] == pytest.approx(1e-3) and p["max"] == pytest.approx(1e-3) for p in params)
