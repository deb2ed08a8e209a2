"""Notebook submissions graded end to end under cs1678-hw3 (2024, two Colab notebooks).

Each test starts from the reference notebooks (built from the tested .py references), edits
cells the way students do, grades through the sandboxed worker and asserts verdicts.
"""
import json
import shutil

import pytest

from gradekit import REPO, by_id, failed_ids
from grader import api

REFERENCE = REPO / "reference" / "cs1678_hw3"
CD, AB = "hw3-part-CD.ipynb", "hw3-part-AB.ipynb"
LSTM_CHECKS = ("lstmcell.contract", "lstmcell.parameters", "lstmcell.builtins", "lstmcell.behaviour")


def grade(folder, *only):
    return api.grade(folder, "cs1678-hw3", api.Options(device="cpu", only=only))


def cells(name: str = CD) -> list[dict]:
    return json.loads((REFERENCE / name).read_text())["cells"]


def code_cell(text: str) -> dict:
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": text}


def cell_index(book: list[dict], starts: str) -> int:
    found = [i for i, c in enumerate(book) if "".join(c["source"]).startswith(starts)]
    assert len(found) == 1, starts
    return found[0]


def submit(tmp_path, book: list[dict] | str, name: str = CD, with_ab: bool = False):
    folder = tmp_path / "submission"
    folder.mkdir()
    text = book if isinstance(book, str) else json.dumps({"cells": book, "metadata": {}, "nbformat": 4,
                                                          "nbformat_minor": 5})
    (folder / name).write_text(text)
    if with_ab:
        shutil.copy(REFERENCE / AB, folder / AB)
    return folder


def notes(report) -> str:
    return "\n".join(n.text for n in report.notes)


def test_training_shell_and_magic_cells_do_not_run(tmp_path):
    book = cells()
    # Cells that would end the grade if they ran: training forever, exiting, a shell line.
    book[4:4] = [code_cell("!rm -rf /\n%cd /nowhere"),
                 code_cell("import time\ntime.sleep(3600)"),
                 code_cell("for epoch in range(100):\n    raise SystemExit('the training loop ran')"),
                 code_cell("history = train_language_model(None, 'gru')")]
    report = grade(submit(tmp_path, book), *LSTM_CHECKS, "generation.*")
    assert failed_ids(report) == set()
    assert report.score == report.max_score == 8.0
    text = notes(report)
    assert f"Not run while grading ({CD}): training and other calls in cells 3, 6" in text
    assert "loops in cells 7, 15, 44" in text
    assert "shell commands in cells 2, 5" in text


def test_a_class_defined_twice_grades_the_last_definition_and_says_so(tmp_path):
    book = cells()
    lstm = cell_index(book, "class LSTMCell(")
    draft = "".join(book[lstm]["source"]).replace("def forward(", "def forward_draft(")
    book.insert(lstm, code_cell(draft))  # an earlier draft without forward, then the real one
    report = grade(submit(tmp_path, book), *LSTM_CHECKS)
    assert failed_ids(report) == set()
    assert (f"LSTMCell is defined in cells {lstm + 1} and {lstm + 2} of {CD}; the last definition "
            f"(cell {lstm + 2}) is the one graded, as it is the one that ran last") in notes(report)


def test_the_later_broken_definition_is_the_one_graded(tmp_path):
    book = cells()
    lstm = cell_index(book, "class LSTMCell(")
    broken = "".join(book[lstm]["source"]).replace("def forward(", "def forward_renamed(")
    book.insert(lstm + 1, code_cell(broken))
    report = grade(submit(tmp_path, book), *LSTM_CHECKS)
    contract = by_id(report)["lstmcell.contract"]
    assert not contract.passed
    assert contract.message == ("LSTMCell(7, 5, True) on a batch of 3 failed: LSTMCell has no forward method, "
                                "so nn.Module's default raised NotImplementedError.")
    assert f"LSTMCell is defined in cells {lstm + 1} and {lstm + 2} of {CD}" in notes(report)


def test_an_error_in_a_cell_is_reported_with_its_cell_and_line(tmp_path):
    book = cells()
    lstm = cell_index(book, "class LSTMCell(")
    source = "".join(book[lstm]["source"])
    assert source.count("def forward(self, x: torch.Tensor, prev_state=None):\n") == 1
    book[lstm]["source"] = source.replace("def forward(self, x: torch.Tensor, prev_state=None):\n",
                                          "def forward(self, x: torch.Tensor, prev_state=None):\n"
                                          "        raise ValueError('half written')\n")
    report = grade(submit(tmp_path, book), *LSTM_CHECKS)
    contract = by_id(report)["lstmcell.contract"]
    assert not contract.passed
    assert f"raised ValueError at {CD} cell {lstm + 1}, line" in contract.message
    assert "half written" in contract.message


@pytest.mark.parametrize("text, fragment", [
    ("{not json", f"{CD} is not a valid notebook: Expecting property name enclosed in double quotes"),
    (json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# answers"}], "metadata": {},
                 "nbformat": 4, "nbformat_minor": 5}), f"{CD} has no code cells"),
])
def test_an_unreadable_notebook_gets_one_clear_message_and_the_other_notebook_still_grades(tmp_path, text, fragment):
    report = grade(submit(tmp_path, text, with_ab=True), "alexnet.construct.*", *LSTM_CHECKS)
    assert report.grader_error is None
    assert fragment in notes(report)
    checks = by_id(report)
    assert all(checks[c].points == 0 for c in LSTM_CHECKS)
    assert checks["alexnet.construct.nc4"].passed
    assert report.graded_files == [AB]


def test_a_py_file_beside_a_notebook_serves_the_other_group(tmp_path):
    folder = submit(tmp_path, cells(AB), name=AB)
    shutil.copy(REPO / "reference" / "cs1699_hw5" / "rnn_modules.py", folder / "rnn_modules.py")
    report = grade(folder, "alexnet.construct.*", *LSTM_CHECKS)
    assert failed_ids(report) == set()
    assert report.graded_files == [AB, "rnn_modules.py"]


def test_the_starter_notebooks_score_only_the_given_pipeline(tmp_path):
    report = api.grade(REPO / "student_template" / "cs1678_hw3", "cs1678-hw3", api.Options(device="cpu"))
    passed = {c.check_id for c in report.checks if c.passed}
    assert passed == {"sentiment.forward", "sentiment.last_token"}  # given with the starter, untouched
    assert report.score == 1.5
    messages = [c.message for c in report.checks if c.check_id in ("alexnet.construct.nc4", "lstmcell.contract",
                                                                       "writer.text")]
    assert all("is not implemented yet: it raises NotImplementedError at hw3-part-" in m for m in messages), messages


@pytest.mark.parametrize("setter", [
    "VOCAB = shakespeare.get_vocabulary()",  # kept, but fails at import: `shakespeare` was left out
    "VOCAB = ShakespeareDataset('shakespeare.txt', 100).get_vocabulary()",  # left out: it loads data
])
def test_a_name_only_a_left_out_cell_sets_is_explained(tmp_path, setter):
    book = cells()
    writer = next(i for i, c in enumerate(book) if "def shakespeare_writer" in "".join(c["source"]))
    book[writer]["source"] = "".join(book[writer]["source"]).replace("vocabulary = state_dict['vocabulary']",
                                                                     "vocabulary = VOCAB")
    book.insert(writer, code_cell(setter))
    text = by_id(grade(submit(tmp_path, book), "writer.*"))["writer.text"]
    assert not text.passed
    assert f"raised NameError at {CD} cell {writer + 2}, line 7 (`vocabulary = VOCAB`)" in text.message
    assert text.hint.startswith(f"VOCAB is set in {CD} cell {writer + 1}, which the grader does not run")
