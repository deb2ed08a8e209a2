"""The RNN homework's 2020 form graded end to end, with the mistakes real students make.

The plain submission (tests/submissions/hw5_plain) is correct; each test replaces marked
lines and asserts the verdicts a careful TA would give.
"""
import shutil

import pytest

from gradekit import HERE, by_id, failed_ids, mutate
from grader import api

PLAIN = HERE / "submissions" / "hw5_plain"
CELL_CHECKS = ("lstmcell.contract", "lstmcell.parameters", "lstmcell.builtins", "lstmcell.behaviour")


def submission(tmp_path, file: str = "rnn_modules.py", *replacements) -> object:
    folder = tmp_path / "hw5"
    shutil.copytree(PLAIN, folder)
    (folder / file).write_text(mutate((PLAIN / file).read_text(), *replacements))
    return folder


def grade(folder, *only, **options):
    return api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=only, **options))


def test_plain_submission_passes_every_fast_check(tmp_path):
    report = grade(PLAIN, "*.contract", "*.parameters", "*.builtins", "*.behaviour", "sentiment.*", "generation.*",
                   "writer.*")
    assert report.score == report.max_score == 24.5
    assert report.graded_files == ["rnn_modules.py", "sentiment_analysis.py", "sentence_generation.py"]
    # Every verdict rests on what the verifier measured: none is marked.
    assert not [c.check_id for c in report.checks if "measured-inside-submission" in c.tags]
    assert not any("measured_inside" in n.text for n in report.notes)


def test_a_missing_gate_costs_the_parameter_count(tmp_path):
    folder = submission(tmp_path, "rnn_modules.py",
                        ("        self.input_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)\n", ""),
                        ("        i = torch.sigmoid(self.input_gate(concat))\n", "        i = 1.0\n"))
    checks = by_id(grade(folder, *CELL_CHECKS))
    params = checks["lstmcell.parameters"]
    assert not params.passed
    assert params.message == "LSTMCell(128, 100, True) has 68,700 parameters; 91,600 were expected."
    assert "one gate (22,900 parameters) short" in params.hint
    assert checks["lstmcell.contract"].passed and checks["lstmcell.builtins"].passed


def test_output_from_the_old_cell_state(tmp_path):
    folder = submission(tmp_path, "rnn_modules.py", ("h = o * torch.tanh(c)  # LSTM-H", "h = o * torch.tanh(prev_c)"))
    report = grade(folder, *CELL_CHECKS)
    behaviour = by_id(report)["lstmcell.behaviour"]
    assert failed_ids(report) == {"lstmcell.behaviour"}
    assert "from a zero state, h does not depend on the input" in behaviour.message
    assert "tanh(c_t), not the previous one" in behaviour.hint


def test_builtin_lstm_cell_behind_an_alias(tmp_path):
    folder = submission(
        tmp_path, "rnn_modules.py",
        ("import torch.nn.functional as F\n", "import torch.nn.functional as F\n\nRecurrent = nn.LSTMCell\n"),
        ("        self.forget_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)  # LSTM-FORGET\n",
         "        self.cell = Recurrent(input_size, hidden_size, bias=bias)\n"),
        ("        if prev_state is None:  # LSTM-STATE\n", "        return self.cell(x, prev_state)\n        if prev_state is None:\n"))
    checks = by_id(grade(folder, *CELL_CHECKS))
    builtins = checks["lstmcell.builtins"]
    assert not builtins.passed
    assert "Recurrent (an alias of nn.LSTMCell) at rnn_modules.py line" in builtins.message
    assert "torch's lstm_cell kernel, called from rnn_modules.py:" in builtins.message
    assert "nn.LSTMCell" in builtins.hint


def test_state_ignored_in_forward(tmp_path):
    folder = submission(tmp_path, "rnn_modules.py", ("        if prev_state is None:  # LSTM-STATE\n", "        if True:\n"))
    report = grade(folder, *CELL_CHECKS)
    assert failed_ids(report) == {"lstmcell.behaviour"}
    assert "forward ignores the state it is given" in by_id(report)["lstmcell.behaviour"].message


def test_bias_default_flipped(tmp_path):
    folder = submission(tmp_path, "rnn_modules.py", ("bias=False):  # LSTM-SIGNATURE", "bias=True):"))
    report = grade(folder, *CELL_CHECKS)
    contract = by_id(report)["lstmcell.contract"]
    assert failed_ids(report) == {"lstmcell.contract"}
    assert contract.message == ("bias defaults to True: LSTMCell(128, 100) has 91,600 parameters, "
                                "LSTMCell(128, 100, False) has 91,200.")


def test_peephole_candidate_that_peeks_is_a_named_deviation(tmp_path):
    folder = submission(tmp_path, "rnn_modules.py",
                        ("gate(2), gate(2), gate(2), gate(1)  # PEEP-GATES", "gate(2), gate(2), gate(2), gate(2)"),
                        ("self.g(torch.cat((h, x), 1)))  # PEEP-CANDIDATE", "self.g(torch.cat((c, h, x), 1)))"))
    params = by_id(grade(folder, "peepholedlstmcell.parameters"))["peepholedlstmcell.parameters"]
    assert not params.passed
    assert params.message.startswith("PeepholedLSTMCell(128, 100, True) has 131,600 parameters; 121,600 were expected. "
                                      "131,600 is the variant where the candidate also peeks at the cell state")


def test_models_that_ignore_lengths_or_state(tmp_path):
    folder = submission(tmp_path, "sentiment_analysis.py",
                        ("outputs[torch.arange(data.shape[0]), batch_lengths - 1, :]  # SENT-LAST", "outputs[:, -1, :]"))
    (folder / "sentence_generation.py").write_text(mutate(
        (PLAIN / "sentence_generation.py").read_text(),
        ("        data = self.embedding(history)\n", "        data = self.embedding(history)\n        state = None\n")))
    checks = by_id(grade(folder, "sentiment.*", "generation.*"))
    last = checks["sentiment.last_token"]
    assert not last.passed and last.message == "Adding more padding after the reviews changed their scores."
    assert "batch_lengths - 1" in last.hint
    assert checks["sentiment.forward"].passed
    continuation = checks["generation.continuation"]
    assert not continuation.passed and "gave different scores than feeding it whole" in continuation.message
    assert checks["generation.forward"].passed


@pytest.mark.parametrize("replacement, fragment", [
    ("logits.argmax(dim=-1)", "the next character is the most likely one each time, not a sample"),
    ("torch.randint(len(vocabulary), (1,))", "other characters"),
])
def test_writer_must_sample_from_the_model(tmp_path, replacement, fragment):
    folder = submission(tmp_path, "sentence_generation.py", ("sample_next_char_id(logits)  # GEN-SAMPLE", replacement))
    checks = by_id(grade(folder, "writer.*"))
    sampling = checks["writer.sampling"]
    assert not sampling.passed and fragment in sampling.message
    assert checks["writer.text"].passed and checks["writer.seeded"].passed


@pytest.mark.parametrize("build, forward, source_fragment, kernel", [
    # getattr with a computed name: the source cannot name it, the run does.
    ("        self.cell = getattr(nn, 'LSTM' + 'Cell')(input_size, hidden_size, bias=bias)\n",
     "        return self.cell(x, prev_state)\n", None, "lstm_cell"),
    # torch's private kernel, called with the cell's own weights.
    ("        self.w_ih = nn.Parameter(torch.randn(4 * hidden_size, input_size) * 0.1)\n"
     "        self.w_hh = nn.Parameter(torch.randn(4 * hidden_size, hidden_size) * 0.1)\n",
     "        return torch._VF.lstm_cell(x, prev_state or (torch.zeros(x.shape[0], self.hidden_size),) * 2, "
     "self.w_ih, self.w_hh)\n", "torch._VF.lstm_cell at rnn_modules.py line", "lstm_cell"),
])
def test_builtin_kernels_are_caught_at_run_time_whatever_the_source_hides(tmp_path, build, forward, source_fragment,
                                                                          kernel):
    folder = submission(
        tmp_path, "rnn_modules.py",
        ("        self.forget_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)  # LSTM-FORGET\n",
         build),
        ("        if prev_state is None:  # LSTM-STATE\n", forward + "        if prev_state is None:\n"))
    builtins = by_id(grade(folder, "lstmcell.builtins"))["lstmcell.builtins"]
    assert not builtins.passed
    assert builtins.message.startswith("LSTMCell uses torch's built-in recurrent code: ")
    assert f"torch's {kernel} kernel, called from rnn_modules.py:" in builtins.message
    if source_fragment:
        assert source_fragment in builtins.message
