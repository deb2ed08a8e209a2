"""The Shakespeare writer, forged: the scorer draws the crafted model's distribution for each grade
and counts the characters in the raw texts itself.

The wrong writer takes the argmax. The forgeries write what a correct writer gave under the
old fixed distribution (half 'q', half 'z'), in the texts or in the reply the scorer reads;
neither is a sample of the distribution drawn for this grade.
"""
import math
import shutil

import pytest

from gradekit import HERE, REPLY_ROUTES, by_id, mutate
from grader import api
from grader.kinds.text_generator import run
from grader.kinds.text_generator.facts import RawRun, WriterReply
from grader.results import Status

PLAIN = HERE / "submissions" / "hw5_plain"
ARGMAX = ("sample_next_char_id(logits)  # GEN-SAMPLE", "logits.argmax(dim=-1)")

# What the old probe's favoured characters would have made of a correct writer's text.
OLD_ANSWER = '''
import json as _json
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("runs"), list):
        for r in result["runs"]:
            if isinstance(r, dict) and r.get("text"):
                r["text"] = r["start"] + ("qz" * 60)
        result["crafted"] = True
    return message
'''

IN_THE_SOURCE = {
    "fixed": '''
def shakespeare_writer():
    return FLAGS.start_string + "qzzqzqqzqz" * 10
''',
    "random": '''
def shakespeare_writer():
    return FLAGS.start_string + "".join("qz"[int(i)] for i in torch.randint(2, (100,)))
''',
}

# Claims the output layer could not be set, for the weaker test of two seeds.
UNCRAFTED = '''
import json as _json
def _forge(message):
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("runs"), list):
        result["crafted"] = False
    return message
'''


def _submission(folder, prefix: str = "", suffix: str = "", *replacements):
    shutil.copytree(PLAIN, folder)
    path = folder / "sentence_generation.py"
    path.write_text(prefix + mutate(path.read_text(), *replacements) + suffix)
    return folder


def _grade(folder):
    return by_id(api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=("writer.*",))))


# Draws pinned so the message is known: two letters the forgery never writes, and one that it
# writes half the time (the draw is random per grade, so either can happen in a real grade).
DRAWS = {"apart": {"C": math.log(0.7), "x": math.log(0.3)},
         "shared": {"q": math.log(0.75), "C": math.log(0.25)}}
FORGED_MESSAGES = {"apart": "but the text has 240 other characters (such as 'qz')",
                   "shared": "but the text has 120 other characters (such as 'z')"}


@pytest.mark.parametrize("route, drawn", [(r, "apart") for r in sorted(REPLY_ROUTES)] + [("encoder", "shared")])
def test_the_old_answer_forged_into_the_reply_fails(tmp_path, monkeypatch, route, drawn):
    monkeypatch.setattr(run, "draw", lambda: dict(DRAWS[drawn]))
    checks = _grade(_submission(tmp_path / "sub", OLD_ANSWER + REPLY_ROUTES[route], "", ARGMAX))
    sampling = checks["writer.sampling"]
    assert not sampling.passed and sampling.points == 0, sampling.message
    assert FORGED_MESSAGES[drawn] in sampling.message, sampling.message


@pytest.mark.parametrize("kind, status", [("fixed", Status.FAILED), ("random", Status.MANUAL)])
def test_the_old_answer_written_in_the_source_earns_nothing(tmp_path, kind, status):
    """A writer that never loads the model leaves nothing to craft: its texts from two seeds are
    all the grader sees, and a pass on that alone is the staff's to give."""
    folder = _submission(tmp_path / "sub")
    path = folder / "sentence_generation.py"
    source = path.read_text()
    path.write_text(source.replace("def main(argv):", IN_THE_SOURCE[kind] + "\n\ndef main(argv):"))
    sampling = _grade(folder)["writer.sampling"]
    assert sampling.status is status and sampling.points == 0, sampling.message


def test_a_claim_that_the_model_could_not_be_crafted_earns_nothing(tmp_path):
    checks = _grade(_submission(tmp_path / "sub", UNCRAFTED + REPLY_ROUTES["encoder"]))
    sampling = checks["writer.sampling"]
    assert not sampling.passed and sampling.points == 0, sampling.message
    assert "could not set the writer's output layer" in sampling.message


def test_a_pass_on_two_seeds_alone_is_held_for_staff(tmp_path):
    """A head without a bias cannot be crafted: the seeds decide, and the staff confirm."""
    folder = _submission(tmp_path / "sub", "", "", (
        "        self.classifier = nn.Linear(hidden_size, vocabulary_size)",
        "        self.classifier = nn.Linear(hidden_size, vocabulary_size, bias=False)"))
    sampling = _grade(folder)["writer.sampling"]
    assert sampling.status is Status.MANUAL and sampling.points == 0, sampling.message
    assert "could not set the output layer" in sampling.details["measured_inside"]
    assert "Different seeds give different texts" in sampling.message
    assert "measured-inside-submission" in sampling.tags


def test_every_grade_draws_its_own_distribution():
    draws = [run.draw() for _ in range(20)]
    assert len({tuple(d) for d in draws}) > 1
    for d in draws:
        p = sorted((math.exp(v) for v in d.values()), reverse=True)
        assert len(d) == 2 and 0.70 <= p[0] <= 0.80 and p[0] + p[1] == pytest.approx(1)
        assert all(ch.isalpha() for ch in d)


def _reply(*texts, crafted=True):
    runs = [RawRun(purpose=purpose, start="ROMEO", seed=1, type="str", text="ROMEO" + t)
            for purpose, t in zip(("first", "start", "repeat"), texts)]
    return WriterReply(runs=runs, crafted=crafted, expected_length=100)


def test_the_scorer_counts_the_characters_of_the_raw_texts():
    favoured = {"k": math.log(0.75), "W": math.log(0.25)}
    facts = run.judged(favoured, _reply("k" * 70 + "W" * 30, "k" * 80 + "W" * 20, "k" * 70 + "W" * 30))
    first, second, repeat = facts.runs
    assert first.counts == {"k": 70, "W": 30} and first.other_chars == 0 and first.starts and first.length == 105
    assert repeat.same_as_first is True and second.same_as_first is None
    assert facts.probabilities == pytest.approx({"k": 0.75, "W": 0.25})
    mixed = run.judged(favoured, _reply("kW!x" * 25, "k" * 100, "k" * 100)).runs
    assert mixed[0].other_chars == 50 and mixed[0].sample_of_others == "!x" and mixed[2].same_as_first is False


@pytest.mark.parametrize("texts, verdict", [
    (("k" * 75 + "W" * 25, "k" * 72 + "W" * 28), "in about its proportions ('k' 74% and 'W' 26%)"),
    (("k" * 100, "k" * 100), "only 'k' appeared"),
    (("W" * 75 + "k" * 25, "W" * 72 + "k" * 28), "they are not drawn with the model's probabilities"),
    (("k" * 90 + "e" * 10, "k" * 100), "but the text has 10 other characters"),
])
def test_sampling_is_judged_against_the_drawn_distribution(texts, verdict):
    from grader.kinds.text_generator.verdicts import _against_the_model
    from grader.rubric import load_rubric

    rubric = load_rubric("cs1699-hw5")
    check = next(c for c in rubric.checks() if c.check_id == "writer.sampling")
    facts = run.judged({"k": math.log(0.75), "W": math.log(0.25)}, _reply(*texts))
    result = _against_the_model(check, facts, facts.of("first", "start"))
    assert verdict in result.message, result.message
    assert result.passed == verdict.startswith("in about")
