"""Part C's kernel visualization, forged: the checkpoint's conv weights come from a key the scorer
draws for each grade, and the scorer matches what reached the helper itself.

The wrong analysis draws a freshly built model, never the checkpoint. One forgery hands the
helper the weights the old probe used to write (stripes and torch.randn with a fixed seed);
the other rewrites the reply to say that every call matched.
"""
import math

import pytest

from gradekit import REPLY_ROUTES, by_id, grade, mutate, plain_source, write_submission
from grader.kinds.kernel_visualization import pattern, run
from grader.kinds.kernel_visualization.facts import HelperCall, KernelReply

FRESH = ("    model.load_state_dict(checkpoint['model'])\n", "")

CLAIM = '''
import json as _json
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("calls"), list):
        for i, call in enumerate(result["calls"]):
            call["matches"] = i
    return message
'''

OLD_WEIGHTS = '''
import math as _math
def _old_bank(shape):
    out_c, in_c, kh, kw = shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, kh), torch.linspace(-1, 1, kw), indexing="ij")
    bank = torch.empty(shape)
    for o in range(out_c):
        theta = _math.pi * (o % 12) / 12
        u = xs * _math.cos(theta) + ys * _math.sin(theta)
        for i in range(in_c):
            bank[o, i] = torch.exp(-(xs ** 2 + ys ** 2) / 0.5) * torch.cos(2 * _math.pi * (1.5 + (o // 12) % 4) * u
                                                                            + i * _math.pi / max(in_c, 1))
    return bank * 0.1

def analyze_model_kernels():
    g = torch.Generator().manual_seed(11)
    convs = [m for m in AlexNet({'num_classes': 4}).features if isinstance(m, nn.Conv2d)]
    for index, conv in enumerate(convs, start=1):
        shape = tuple(conv.weight.shape)
        visualize_kernels(f'Conv2d-{index}', _old_bank(shape) if index == 1 else torch.randn(shape, generator=g) * 0.05)
'''


def test_a_claim_that_every_call_matched_is_not_believed(tmp_path):
    source = CLAIM + REPLY_ROUTES["encoder"] + mutate(plain_source(), FRESH)
    calls = by_id(grade(write_submission(tmp_path, source), "kernels.calls"))["kernels.calls"]
    assert not calls.passed and "none of the weights it passed are in the checkpoint" in calls.message, calls.message


def test_the_weights_the_old_checkpoint_held_do_not_match(tmp_path):
    source = plain_source().replace("\ndef main(argv):", OLD_WEIGHTS + "\n\ndef main(argv):")
    calls = by_id(grade(write_submission(tmp_path, source), "kernels.calls"))["kernels.calls"]
    assert not calls.passed and "none of the weights it passed are in the checkpoint" in calls.message, calls.message


MANGLED = '''
import json as _json
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("calls"), list):
        result["calls"] = {"name": "conv1"}
    return message
'''


def test_a_reply_of_the_wrong_shape_costs_only_this_part(tmp_path):
    source = MANGLED + REPLY_ROUTES["encoder"] + plain_source()
    checks = by_id(grade(write_submission(tmp_path, source), "kernels.*", "alexnet.construct.nc4"))
    calls = checks["kernels.calls"]
    assert not calls.passed and "sent a reply the grader could not read (KernelReply.calls: expected a list)" \
        in calls.message, calls.message
    assert checks["alexnet.construct.nc4"].passed


def test_a_reply_is_decoded_field_by_field():
    from grader.kinds.wire import FactError, decode

    for bad in ({"calls": {"name": "conv1"}}, {"calls": [{"name": "c", "shape": [3], "values": ["x"]}]},
                {"images": [7]}, {"conv_shapes": [[True]]}):
        with pytest.raises(FactError):
            decode(KernelReply, bad)


def test_the_scorer_computes_the_checkpoint_as_the_worker_fills_it():
    from grader.kinds.kernel_visualization.probe import fill

    key = pattern.draw()
    for c, shape in enumerate(([6, 3, 5, 5], [4, 6, 3, 3], [2, 4, 1, 1])):
        weight = fill(key, c, shape)
        for flat in pattern.positions(shape):
            want = pattern.value(key, c, shape, pattern.unravel(flat, shape))
            assert float(weight.reshape(-1)[flat]) == pytest.approx(want, abs=1e-7)
    assert key != pattern.draw()


def _call(key, c, stored, shape, name="conv"):
    values = [pattern.value(key, c, stored, pattern.unravel(f, shape)) for f in pattern.positions(shape)]
    return HelperCall(name=name, shape=shape, values=values)


def test_each_call_is_matched_to_its_layer_or_to_none():
    key = pattern.draw()
    stored = [[6, 3, 5, 5], [4, 6, 3, 3]]
    calls = [_call(key, 1, stored[1], stored[1]), _call(key, 0, stored[0], [2, 3, 5, 5]),  # a leading slice
             _call(pattern.draw(), 1, stored[1], stored[1]),  # another grade's key
             HelperCall(name="x", shape=[4, 6, 3, 3], values=[0.0] * 36)]
    facts = run.judged(key, KernelReply(calls=calls, conv_shapes=stored))
    assert [c.matches for c in facts.calls] == [1, 0, None, None]
    assert all(c.values == [] for c in facts.calls)  # the samples are not kept in the facts
    wrong = HelperCall(name="y", shape=[4, 6, 3, 3], values=[math.nan] * 36)
    assert run.judged(key, KernelReply(calls=[wrong], conv_shapes=stored)).calls[0].matches is None
