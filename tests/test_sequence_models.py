"""The sequence models (cs1699-hw5's review classifier and character model) measured by the
verifier from recorded calls: the recorder, the stand-in, hostile artefacts, and whole grades
with the ways students write forward and the ways a forger would lie."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gradekit import HERE, REPLY_ROUTES, by_id, mutate
from grader import api
from grader.kinds.next_char_model import measure as generation
from grader.kinds.sentiment_model import measure as sentiment
from grader.kinds.sentiment_model.calls import Recorded
from grader.kinds.sentiment_model.export import _record_all
from grader.results import Status
from grader.verifier import standin
from grader.verifier.artefact import ArtefactError
from grader.worker import failures
from grader.worker.export import Unsupported, write_raw
from grader.worker.record import record

PLAIN = HERE / "submissions" / "hw5_plain"
MARK = "measured-inside-submission"


class Cell(nn.Module):
    """A small GRU-like cell: enough state arithmetic for the checks to mean something."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.gate = nn.Linear(input_size + hidden_size, 2 * hidden_size)
        self.hidden_size = hidden_size

    def forward(self, x, state=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state  # [B, H]
        z, c = self.gate(torch.cat([x, h], 1)).chunk(2, 1)  # [B, H] each
        return torch.sigmoid(z) * h + (1 - torch.sigmoid(z)) * torch.tanh(c)


class LoopReviews(nn.Module):
    """Reads the lengths into Python, as the handout's own loop does."""

    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, read_tokens=False, drop_half=False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        self.rnn_model = rnn_module(embedding_dim, hidden_size)
        self.classifier = nn.Linear(hidden_size // 2 if drop_half else hidden_size, 2)
        self.read_tokens, self.drop_half = read_tokens, drop_half

    def forward(self, batch_reviews, batch_lengths):
        steps = int(batch_lengths.max())
        if self.read_tokens and batch_reviews[0, 0].item() < 0:  # never true, but it reads a token
            steps = 1
        data = self.embedding(batch_reviews[:, :steps])  # [B, T, E]
        state, outputs = None, []
        for t in range(steps):
            state = self.rnn_model(data[:, t], state)
            outputs.append(state)
        last = torch.stack([outputs[n - 1][i] for i, n in enumerate(batch_lengths.tolist())])  # [B, H]
        return self.classifier(last[:, :last.shape[1] // 2] if self.drop_half else last)


def _recorded(tmp_path, model, calls, names, fixed, kind) -> Path:
    graphs, failed, items = _record_all(model, calls, names, fixed)
    weights = [(t, p, p.requires_grad) for t, p in model.named_parameters()]
    tensors = write_raw(tmp_path / "weights.bin", weights + items)
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": 1, "kind": "sequence", "model": kind, "class_name": type(model).__name__, "weights": True,
        "tensors": tensors, "calls": graphs, "failed": failed}))
    return tmp_path


def _sentiment_artefact(tmp_path, **options) -> Path:
    torch.manual_seed(0)
    model = LoopReviews(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN, **options).eval()
    return _recorded(tmp_path, model, sentiment.calls(0), sentiment.NAMES, sentiment.FIXED, "sentiment")


def test_a_forward_that_loops_over_the_lengths_is_recorded_and_measured_as_it_runs(tmp_path):
    torch.manual_seed(0)
    model = LoopReviews(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN).eval()
    live = sentiment.facts(model, 0)
    folder = _sentiment_artefact(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["calls"]) == ["eval/float32/4x13:int64/=5,3,7,2", "eval/float32/4x7:int64/=5,3,7,2",
                                         "eval/float64/4x7:int64/=7,5,3,6"]
    verified = sentiment.verify(str(folder), 0, 256)
    assert verified == live
    assert verified["padding_invariant"] and verified["reads_last_token"] and verified["unreachable"] == []


def test_unused_units_are_found_through_the_stand_in(tmp_path):
    verified = sentiment.verify(str(_sentiment_artefact(tmp_path, drop_half=True)), 0, 256)
    assert verified["shape"] == [4, 2] and verified["padding_invariant"]
    # Units 6-11 of the last step's state still feed the recurrence: only the embedding's
    # rows (tokens, never tested) and no unit of the cell are dead.
    assert [f["name"] for f in verified["unreachable"]] == []
    torch.manual_seed(0)
    model = LoopReviews(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN).eval()
    model.spare = nn.Linear(3, 3)  # computed nowhere
    verified = sentiment.verify(str(_recorded(tmp_path, model, sentiment.calls(0), sentiment.NAMES,
                                              sentiment.FIXED, "sentiment")), 0, 256)
    assert [(f["name"], f["whole"]) for f in verified["unreachable"]] == [("spare.weight", True), ("spare.bias", True)]


def test_a_read_of_the_tokens_stops_recording_at_the_students_line(monkeypatch):
    monkeypatch.setattr(failures, "ROOTS", [str(Path(__file__).parent)])
    model = LoopReviews(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN, read_tokens=True).eval()
    with pytest.raises(Unsupported) as stopped, torch.no_grad():
        record(model, sentiment.reviews(0), sentiment.NAMES, sentiment.FIXED, [], "forward")
    assert str(stopped.value).startswith("forward reads the values of the review tokens into Python (.item(), int() or "
                                         "float())")
    assert stopped.value.where.startswith("test_sequence_models.py:")


def test_a_read_caught_by_forward_still_stops_recording():
    class Hiding(LoopReviews):
        def forward(self, batch_reviews, batch_lengths):
            try:
                batch_reviews.tolist()
            except Exception:
                pass
            return super().forward(batch_reviews, batch_lengths)

    with pytest.raises(Unsupported, match=r"the review tokens into Python \(\.tolist\(\)\)"), torch.no_grad():
        record(Hiding(50, 16, Cell, 12).eval(), sentiment.reviews(0), sentiment.NAMES, sentiment.FIXED, [], "f")


def test_constants_made_in_forward_travel_with_the_graph(tmp_path):
    import numpy as np

    class Weighted(LoopReviews):
        def forward(self, batch_reviews, batch_lengths):
            scale = torch.tensor([1.0, 2.0])  # [2]
            mask = torch.from_numpy(np.array([1.0, 0.5], dtype=np.float32))  # made outside torch's operators
            return super().forward(batch_reviews, batch_lengths) * scale * mask

    torch.manual_seed(0)
    model = Weighted(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN).eval()
    live = sentiment.facts(model, 0)
    folder = _recorded(tmp_path, model, sentiment.calls(0), sentiment.NAMES, sentiment.FIXED, "sentiment")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sum(t["target"].endswith("/c0") for t in manifest["tensors"]) == 3  # one per recorded call
    assert sentiment.verify(str(folder), 0, 256) == live


def test_a_mask_built_from_the_lengths_runs_in_the_verifier(tmp_path):
    """`.float()` records a call with one keyword (dtype=...), which the verifier once took for a value."""
    class Masked(LoopReviews):
        def forward(self, batch_reviews, batch_lengths):
            data = self.embedding(batch_reviews)  # [B, T, E]
            state, outputs = None, []
            for t in range(data.shape[1]):
                state = self.rnn_model(data[:, t], state)
                outputs.append(state)
            last = (torch.arange(data.shape[1])[None, :] == batch_lengths[:, None] - 1).float()  # [B, T]
            return self.classifier((torch.stack(outputs, 1) * last[..., None]).sum(1))

    torch.manual_seed(0)
    model = Masked(sentiment.VOCABULARY, sentiment.EMBEDDING, Cell, sentiment.HIDDEN).eval()
    live = sentiment.facts(model, 0)
    folder = _recorded(tmp_path, model, sentiment.calls(0), sentiment.NAMES, sentiment.FIXED, "sentiment")
    assert live["padding_invariant"] and sentiment.verify(str(folder), 0, 256) == live


def test_an_operator_the_verifier_does_not_run_stops_recording():
    class Strided(LoopReviews):
        def forward(self, batch_reviews, batch_lengths):
            return super().forward(batch_reviews, batch_lengths).as_strided((4, 2), (2, 1))

    with pytest.raises(Unsupported, match="forward uses aten.as_strided, which the grader does not run"), \
            torch.no_grad():
        record(Strided(50, 16, Cell, 12).eval(), sentiment.reviews(0), sentiment.NAMES, sentiment.FIXED, [], "f")


class Chars(nn.Module):
    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, fail_with_state=False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn_model = rnn_module(embedding_dim, hidden_size)
        self.classifier = nn.Linear(hidden_size, vocabulary_size)
        self.fail_with_state = fail_with_state

    def forward(self, history, state=None):
        if state is not None and self.fail_with_state:
            raise ValueError("no state, please")
        data = self.embedding(history)  # [B, T, E]
        for t in range(data.shape[1]):
            state = self.rnn_model(data[:, t], state)
        return self.classifier(state), state  # [B, V], [B, H]


def _generation_artefact(tmp_path, **options) -> tuple[Path, dict]:
    torch.manual_seed(0)
    model = Chars(generation.VOCABULARY, generation.EMBEDDING, Cell, generation.HIDDEN, **options).eval()
    live = generation.facts(model, 0)
    torch.manual_seed(0)
    model = Chars(generation.VOCABULARY, generation.EMBEDDING, Cell, generation.HIDDEN, **options).eval()
    with torch.no_grad():
        _, state = model(generation.history(0)[:, :generation.SPLIT])
    return _recorded(tmp_path, model, generation.calls(0, state), generation.NAMES, generation.FIXED,
                     "generation"), live


def test_the_character_model_continues_from_a_state_in_the_verifier(tmp_path):
    folder, live = _generation_artefact(tmp_path)
    verified = generation.verify(str(folder), 0, 256)
    assert verified == live
    assert verified["continues"] and verified["no_gradient"] == [] and verified["shape"] == [3, 30]


def test_a_failure_on_one_call_is_that_calls_answer(tmp_path):
    folder, live = _generation_artefact(tmp_path, fail_with_state=True)
    verified = generation.verify(str(folder), 0, 256)
    assert verified["shape"] == [3, 30] and "continues" not in verified
    error = verified["error"]
    assert (error["type"], error["message"], error["stage"]) == ("ValueError", "no state, please", "continuation")
    assert live["error"]["message"] == "no state, please"
    # The forward check's parts were measured before: the failure costs the continuation only.
    assert verified["no_gradient"] == [] and verified["unreachable"] == []


def test_the_stand_in_refuses_calls_it_was_not_given(tmp_path):
    model = standin.load(_sentiment_artefact(tmp_path), 256, "sentiment", sentiment.FIXED).eval()
    tokens, _ = sentiment.reviews(0)
    with pytest.raises(Exception, match="not handed over for this call"):
        model(tokens, torch.tensor([7, 7, 7, 7]))  # lengths the grader never uses
    with pytest.raises(ArtefactError, match="not a generation one"):
        standin.load(tmp_path, 256, "generation", generation.FIXED)


def _rewrite(folder: Path, change) -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("change, why", [
    (lambda m: m["tensors"][0].update(target="embedding..weight"), "not a module path"),
    (lambda m: m["calls"].update({f"k{i}": {"returns": "tensor"} for i in range(9)}), "more than the checks make"),
    (lambda m: next(iter(m["calls"].values())).update(returns={"dict": ["tensor"]}), "returns something other"),
    (lambda m: next(iter(m["calls"].values()))["nodes"][0].update(target="aten.from_file.default"),
     "aten.from_file, which the verifier does not run"),
    (lambda m: m.update(kind="model"), "not of a sequence model"),
    (lambda m: next(iter(m["calls"].values())).update(returns={"tuple": ["tensor", "tensor"]}),
     "not the structure it declares"),
])
def test_hostile_sequence_artefacts_are_refused(tmp_path, change, why):
    folder = _rewrite(_sentiment_artefact(tmp_path), change)
    with pytest.raises(ArtefactError, match=why):
        sentiment.verify(str(folder), 0, 256)


def test_a_recorded_failure_is_reduced_to_plain_text(tmp_path):
    def plant(m):
        key = next(iter(m["calls"]))
        m["calls"].pop(key)
        m["failed"][key] = {"type": "X" * 500, "message": {"nested": 1}, "line": True, "trace": [1, "a"]}

    model = standin.load(_rewrite(_sentiment_artefact(tmp_path), plant), 256, "sentiment", sentiment.FIXED).eval()
    with pytest.raises(Recorded) as raised:
        model(*sentiment.reviews(0))
    assert raised.value.error == {"type": "X" * 80, "message": "", "file": None, "code": None, "line": None,
                                  "trace": ["a"]}


# ----------------------------------------------------------------------------- whole grades

def _submission(tmp_path, **files) -> Path:
    import shutil

    folder = tmp_path / "hw5"
    shutil.copytree(PLAIN, folder)
    for name, replacements in files.items():
        path = folder / f"{name}.py"
        path.write_text(mutate(path.read_text(), *replacements))
    return folder


def _grade(folder, *only):
    return api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=only))


LOOP = ("        data = self.embedding(batch_reviews)\n",
        "        steps = int(batch_lengths.max())\n        data = self.embedding(batch_reviews[:, :steps])\n")
PICK = ("        last = outputs[torch.arange(data.shape[0]), batch_lengths - 1, :]  # SENT-LAST",
        "        last = torch.stack([outputs[i, n - 1] for i, n in enumerate(batch_lengths)])")
PEEK = ("        data = self.embedding(batch_reviews)\n",
        "        data = self.embedding(batch_reviews)\n        if float(batch_reviews.sum()) < 0:\n"
        "            data = -data\n")


def test_the_handouts_loops_over_the_lengths_are_checked_by_the_verifier(tmp_path):
    checks = by_id(_grade(_submission(tmp_path, sentiment_analysis=(LOOP, PICK)), "sentiment.*", "generation.*"))
    assert all(c.passed and MARK not in c.tags for c in checks.values()), \
        {k: (c.message, c.tags) for k, c in checks.items()}


def test_a_forward_that_reads_the_tokens_is_held_with_the_line_that_stopped_recording(tmp_path):
    checks = by_id(_grade(_submission(tmp_path, sentiment_analysis=(PEEK,)), "sentiment.*"))
    for check in checks.values():
        assert check.status is Status.MANUAL and check.points == 0 and MARK in check.tags
        assert check.details["measured_inside"] == (
            "measured inside the submission's process: forward reads the values of the review tokens into Python "
            "(.item(), int() or float()), so a graph of this call would hold only this batch's answer at "
            "sentiment_analysis.py line 24")
        assert check.hint.startswith("Change the code the message names, and the grader checks this itself")


FORGE = '''
import json as _json
def _forge(reply):
    result = reply.get("result")
    if isinstance(result, dict):
        if "artefact" in result and {fallback}:
            reply["result"] = {{"error": {{"type": "Unsupported", "message": "a hook", "stage": "export",
                                          "file": None, "line": None, "code": None, "trace": []}},
                               "constructed": True, "artefact": None}}
        elif "padding_invariant" in result:
            result.update(padding_invariant=True, reads_last_token=True, error=None)
        elif "continues" in result:
            result.update(continues=True, error=None)
    return reply
'''
IGNORE_LENGTHS = ("outputs[torch.arange(data.shape[0]), batch_lengths - 1, :]  # SENT-LAST", "outputs[:, -1, :]")
IGNORE_STATE = ("        data = self.embedding(history)\n", "        data = self.embedding(history)\n        state = None\n")


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """Models that ignore the lengths and the passed state, graded with nothing forged."""
    report = _grade(_submission(tmp_path_factory.mktemp("honest"), sentiment_analysis=(IGNORE_LENGTHS,),
                                sentence_generation=(IGNORE_STATE,)), "sentiment.*", "generation.*")
    assert not by_id(report)["sentiment.last_token"].passed and not by_id(report)["generation.continuation"].passed
    return report


@pytest.mark.parametrize("route", list(REPLY_ROUTES))
@pytest.mark.parametrize("fallback", [False, True])
def test_forged_sequence_replies_earn_at_most_the_honest_score(tmp_path, route, fallback, honest):
    forged = FORGE.format(fallback=fallback) + REPLY_ROUTES[route]
    folder = _submission(tmp_path, sentiment_analysis=(IGNORE_LENGTHS, ("import torch\n", "import torch\n" + forged)),
                         sentence_generation=(IGNORE_STATE,))
    report = _grade(folder, "sentiment.*", "generation.*")
    checks = by_id(report)
    assert report.score <= honest.score, {k: (c.points, c.message) for k, c in checks.items()}
    last = checks["sentiment.last_token"]
    if fallback:  # the worker's word is all there is: held, never awarded
        assert last.status is Status.MANUAL and last.points == 0
    else:  # the verifier never reads the worker's measurement
        assert not last.passed and last.message == "Adding more padding after the reviews changed their scores."
