"""The references pass their own rubric with full marks, and reproduce the handout's tables."""
from pathlib import Path

import pytest
import torch

from grader import api
from grader.checks.architecture import compare
from grader.results import Status
from grader.rubric import available, load_rubric
from grader.worker.trace import LayerTrace

HERE = Path(__file__).resolve().parent
SUBMISSIONS = {"cs1678-hw4": HERE / "cs1678_hw4", "cs1678-hw4-extended": HERE / "cs1678_hw4",
               "cs1678-hw3": HERE / "cs1678_hw3", "cs1699-hw5": HERE / "cs1699_hw5"}
# A variant grades its base's checks the same way; grade only what it adds.
ONLY = {"cs1678-hw4-extended": ("alexnettiny.*", "alexnetdilation.*")}


def test_every_rubric_has_a_reference():
    assert set(available()) <= set(SUBMISSIONS)


@pytest.mark.parametrize("assignment", sorted(SUBMISSIONS))
def test_reference_gets_full_marks(assignment):
    report = api.grade(SUBMISSIONS[assignment], assignment, api.Options(device="cpu", only=ONLY.get(assignment, ())))
    failed = [(c.check_id, c.message) for c in report.checks if c.status is Status.FAILED]
    assert failed == []
    assert report.score == report.max_score > 0
    assert report.grader_error is None
    assert report.graded_files == GRADED_FILES[assignment]


GRADED_FILES = {"cs1678-hw4": ["cnn_trainer.py"], "cs1678-hw4-extended": ["cnn_trainer.py"],
                "cs1678-hw3": ["hw3-part-AB.ipynb", "hw3-part-CD.ipynb"],
                "cs1699-hw5": ["rnn_modules.py", "sentiment_analysis.py", "sentence_generation.py"]}


@pytest.mark.parametrize("symbol", [m.symbol for m in load_rubric("cs1678-hw4-extended").models])
@pytest.mark.parametrize("num_classes", [4, 7])
def test_reference_models_reproduce_their_tables(symbol, num_classes):
    import alexnet  # reference/cs1678_hw4, put on sys.path by conftest.py

    spec = load_rubric("cs1678-hw4-extended").model(symbol)
    variant = next(v for v in spec.variants if v.num_classes == num_classes)
    with torch.device("meta"):
        model = getattr(alexnet, symbol)({"num_classes": num_classes})
    recorder = LayerTrace(model, [])
    with recorder, torch.no_grad():
        model(torch.zeros(2, *spec.input, device="meta"))
    diff = compare(spec.rows_for(variant), [r.as_dict() for r in recorder.rows], spec.input)
    assert [r.status for r in diff.rows] == ["match"] * len(spec.table)
