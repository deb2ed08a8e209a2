"""Parts of a cell (or a model) that are computed and never used.

An LSTM that computes its forget gate and drops it (`c = c + i * g`) has the right
parameter count and, when the gates share one Linear, a gradient on every parameter
tensor. The behaviour check finds it by what the equations forbid: dc_t/dc_{t-1} exactly
1 (or 0) for every input, h_t exactly tanh(c_t), parameter rows that never get a gradient.
Broken cells are mutations of tests/submissions/hw5_plain and reference/cs1699_hw5, or
small classes written here; the correct variants below must all pass.
"""
import shutil

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradekit import HERE, REPO, by_id, mutate
from grader import api
from grader.kinds.cell import anatomy as cell_anatomy
from grader.kinds.cell.verdicts import _gate_of
from grader.worker import anatomy

PLAIN = HERE / "submissions" / "hw5_plain"
REFERENCE = REPO / "reference" / "cs1699_hw5"
CELLS = ("lstmcell", "peepholedlstmcell", "coupledlstmcell", "grucell")
# cs1699-hw5 as it is, plus the starter's GRUCell graded as a cell, so that GRUs are tested too.
GRU_RUBRIC = "test-hw5-with-gru"
GRU_CELL = """
[[cell]]
symbol = "GRUCell"
part = "A"
family = "gru"
params = 68700
points = { contract = 1, parameters = 1, builtins = 1, behaviour = 1.5 }
"""

HEADER = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Base(nn.Module):
    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias

    def zeros(self, x):
        return torch.zeros(x.shape[0], self.hidden_size)

    def state(self, x, prev_state):
        return (self.zeros(x), self.zeros(x)) if prev_state is None else prev_state

    def count_parameters(self):
        print('Total Parameters: %d' % sum(p.numel() for p in self.parameters()))
'''

# One shared layer per cell, one part of it computed and left out.
BROKEN_SHARED = HEADER + '''

class LSTMCell(Base):
    """The forget gate is computed and dropped: c = c + i * g."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        i, f, g, o = self.gates(torch.cat((h, x), 1)).chunk(4, 1)  # PyTorch's order
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = c + i * g
        return o * torch.tanh(c), c


class PeepholedLSTMCell(Base):
    """The input gate is computed and dropped: c = f * c + g."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(2 * hidden_size + input_size, 2 * hidden_size, bias=bias)  # f, i over [c, h, x]
        self.o = nn.Linear(2 * hidden_size + input_size, hidden_size, bias=bias)
        self.g = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        f, i = torch.sigmoid(self.gates(torch.cat((c, h, x), 1))).chunk(2, 1)
        c = f * c + torch.tanh(self.g(torch.cat((h, x), 1)))
        o = torch.sigmoid(self.o(torch.cat((c, h, x), 1)))
        return o * torch.tanh(c), c


class CoupledLSTMCell(Base):
    """The output gate is computed and dropped: h = tanh(c)."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(hidden_size + input_size, 3 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        f, g, o = self.gates(torch.cat((h, x), 1)).chunk(3, 1)
        f = torch.sigmoid(f)
        o = torch.sigmoid(o)
        c = f * c + (1 - f) * torch.tanh(g)
        return torch.tanh(c), c


class GRUCell(Base):
    """PyTorch's form, the reset gate computed and never applied."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h = self.zeros(x) if prev_state is None else prev_state
        xr, xz, xn = self.x2h(x).chunk(3, 1)
        hr, hz, hn = self.h2h(h).chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + hn)
        return (1 - z) * n + z * h
'''

# Correct cells in the forms students write them: every one must pass.
CORRECT_A = HEADER + '''

class LSTMCell(Base):
    """One Linear for the four gates."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        i, f, g, o = self.gates(torch.cat((h, x), 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PeepholedLSTMCell(Base):
    """The blog's form: each gate's weights over the concatenation [c, h, x]."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        over_chx = lambda: nn.Linear(2 * hidden_size + input_size, hidden_size, bias=bias)
        self.forget, self.input, self.output = over_chx(), over_chx(), over_chx()
        self.candidate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        chx = torch.cat((c, h, x), 1)
        f, i = torch.sigmoid(self.forget(chx)), torch.sigmoid(self.input(chx))
        c = f * c + i * torch.tanh(self.candidate(torch.cat((h, x), 1)))
        o = torch.sigmoid(self.output(torch.cat((c, h, x), 1)))
        return o * torch.tanh(c), c


class CoupledLSTMCell(Base):
    """One weight stored transposed, [h + x, 3 hidden], applied as hx @ W."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.W = nn.Parameter(torch.randn(hidden_size + input_size, 3 * hidden_size) * 0.05)
        self.b = nn.Parameter(torch.zeros(3 * hidden_size)) if bias else None

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        z = torch.cat((h, x), 1) @ self.W
        if self.b is not None:
            z = z + self.b
        f, g, o = z.chunk(3, 1)
        f = torch.sigmoid(f)
        c = f * c + (1 - f) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUCell(Base):
    """PyTorch's form: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h = self.zeros(x) if prev_state is None else prev_state
        xr, xz, xn = self.x2h(x).chunk(3, 1)
        hr, hz, hn = self.h2h(h).chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h
'''

CORRECT_B = HEADER + '''

class LSTMCell(Base):
    """Separate Parameters over [h, x], as 2024 notebooks write them."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        for gate in ("f", "i", "c", "o"):
            setattr(self, "W_" + gate, nn.Parameter(torch.randn(hidden_size, hidden_size + input_size) * 0.05))
            setattr(self, "b_" + gate, nn.Parameter(torch.zeros(hidden_size)) if bias else None)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        hx = torch.cat((h, x), 1)
        gate = lambda W, b: hx @ W.t() + (b if b is not None else 0)
        f = torch.sigmoid(gate(self.W_f, self.b_f))
        i = torch.sigmoid(gate(self.W_i, self.b_i))
        c_tilde = torch.tanh(gate(self.W_c, self.b_c))
        o = torch.sigmoid(gate(self.W_o, self.b_o))
        c = f * c + i * c_tilde
        return o * torch.tanh(c), c


class PeepholedLSTMCell(Base):
    """Diagonal peepholes: one vector per gate, multiplied into the cell state."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)
        self.p_f = nn.Parameter(torch.randn(hidden_size) * 0.1)
        self.p_i = nn.Parameter(torch.randn(hidden_size) * 0.1)
        self.p_o = nn.Parameter(torch.randn(hidden_size) * 0.1)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        f, i, g, o = self.gates(torch.cat((h, x), 1)).chunk(4, 1)
        f = torch.sigmoid(f + self.p_f * c)
        i = torch.sigmoid(i + self.p_i * c)
        c = f * c + i * torch.tanh(g)
        return torch.sigmoid(o + self.p_o * c) * torch.tanh(c), c


class CoupledLSTMCell(Base):
    """No bias at all, whatever the flag says."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.f = nn.Linear(hidden_size + input_size, hidden_size, bias=False)
        self.o = nn.Linear(hidden_size + input_size, hidden_size, bias=False)
        self.g = nn.Linear(hidden_size + input_size, hidden_size, bias=False)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        hx = torch.cat((h, x), 1)
        f = torch.sigmoid(self.f(hx))
        c = f * c + (1 - f) * torch.tanh(self.g(hx))
        return torch.sigmoid(self.o(hx)) * torch.tanh(c), c


class GRUCell(Base):
    """The paper's form, z and r from one Linear, without bias."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.zr = nn.Linear(hidden_size + input_size, 2 * hidden_size, bias=False)
        self.candidate = nn.Linear(hidden_size + input_size, hidden_size, bias=False)

    def forward(self, x, prev_state):
        h = self.zeros(x) if prev_state is None else prev_state
        z, r = torch.sigmoid(self.zr(torch.cat((h, x), 1))).chunk(2, 1)
        h_tilde = torch.tanh(self.candidate(torch.cat((r * h, x), 1)))
        return (1 - z) * h + z * h_tilde
'''

CORRECT_C = HEADER + '''

class LSTMCell(Base):
    """Input and hidden weights apart, named as in d2l: W_xi, W_hi, b_i, ..."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        for gate in ("i", "f", "o", "c"):
            setattr(self, "W_x" + gate, nn.Parameter(torch.randn(input_size, hidden_size) * 0.05))
            setattr(self, "W_h" + gate, nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.05))
            setattr(self, "b_" + gate, nn.Parameter(torch.zeros(hidden_size)))

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        gate = lambda g: x @ getattr(self, "W_x" + g) + h @ getattr(self, "W_h" + g) + getattr(self, "b_" + g)
        i, f, o = torch.sigmoid(gate("i")), torch.sigmoid(gate("f")), torch.sigmoid(gate("o"))
        c = f * c + i * torch.tanh(gate("c"))
        return o * torch.tanh(c), c


class PeepholedLSTMCell(Base):
    """Full peephole matrices over c apart from the gates' weights over [h, x]."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)
        self.peep_f = nn.Linear(hidden_size, hidden_size, bias=False)
        self.peep_i = nn.Linear(hidden_size, hidden_size, bias=False)
        self.peep_o = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        f, i, o, g = torch.split(self.gates(torch.cat((h, x), 1)), self.hidden_size, dim=1)
        f = torch.sigmoid(f + self.peep_f(c))
        i = torch.sigmoid(i + self.peep_i(c))
        c = f * c + i * torch.tanh(g)
        return torch.sigmoid(o + self.peep_o(c)) * torch.tanh(c), c


class CoupledLSTMCell(Base):
    """Gates sliced by hand from one Linear."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.linear = nn.Linear(hidden_size + input_size, 3 * hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h, c = self.state(x, prev_state)
        z, n = self.linear(torch.cat((h, x), 1)), self.hidden_size
        f = torch.sigmoid(z[:, :n])
        c = f * c + (1 - f) * torch.tanh(z[:, n:2 * n])
        return torch.sigmoid(z[:, 2 * n:]) * torch.tanh(c), c


class GRUCell(Base):
    """The paper's form with separate Linears and biases, h~ over [r * h, x]."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__(input_size, hidden_size, bias)
        self.update = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.reset = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.new = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)

    def forward(self, x, prev_state):
        h = self.zeros(x) if prev_state is None else prev_state
        hx = torch.cat((h, x), 1)
        z, r = torch.sigmoid(self.update(hx)), torch.sigmoid(self.reset(hx))
        return (1 - z) * h + z * torch.tanh(self.new(torch.cat((r * h, x), 1)))
'''


@pytest.fixture(scope="module")
def rubric_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rubrics")
    text = (REPO / "rubrics" / "cs1699-hw5.toml").read_text()
    (folder / f"{GRU_RUBRIC}.toml").write_text(mutate(text, ('id = "cs1699-hw5"', f'id = "{GRU_RUBRIC}"')) + GRU_CELL)
    return folder


def submission(folder, source: str | None = None, base=PLAIN, *replacements):
    shutil.copytree(PLAIN, folder)
    if base != PLAIN:
        shutil.copy(base / "rnn_modules.py", folder / "rnn_modules.py")
    text = source if source is not None else (folder / "rnn_modules.py").read_text()
    (folder / "rnn_modules.py").write_text(mutate(text, *replacements))
    return folder


def grade_cells(folder, rubric_dir, *only, assignment=GRU_RUBRIC):
    only = only or tuple(f"{c}.{k}" for c in CELLS for k in ("contract", "parameters", "builtins", "behaviour"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLGRADE_RUBRICS", str(rubric_dir))
        return by_id(api.grade(folder, assignment, api.Options(device="cpu", only=only)))


# ------------------------------------------------------------------ one shared layer

@pytest.fixture(scope="module")
def shared(tmp_path_factory, rubric_dir):
    return grade_cells(submission(tmp_path_factory.mktemp("shared") / "hw5", BROKEN_SHARED), rubric_dir)


def test_forget_gate_dropped_from_a_shared_linear(shared):
    behaviour = shared["lstmcell.behaviour"]
    assert not behaviour.passed
    assert behaviour.message == (
        "LSTMCell: the forget gate is computed but not used: the new cell state's derivative with respect to the "
        "old one is exactly 1 for every input (c_t = c_{t-1} + i_t * g_t; the equations give c_t = f_t * c_{t-1} + "
        "i_t * g_t), and rows 100-199 of gates.weight and gates.bias (one gate's 100 units) never receive a gradient.")
    assert behaviour.hint.startswith("Multiply the previous cell state by the forget gate")
    assert "rows 100-199 are the 2nd of gates.weight's 4 blocks of 100 rows" in behaviour.hint
    # 91,600 parameters, all built by hand, a gradient on every tensor: the other checks pass.
    for kind in ("contract", "parameters", "builtins"):
        assert shared[f"lstmcell.{kind}"].passed, shared[f"lstmcell.{kind}"].message


def test_input_gate_dropped_from_a_shared_linear_names_its_rows(shared):
    behaviour = shared["peepholedlstmcell.behaviour"]
    assert behaviour.message == (
        "PeepholedLSTMCell: rows 100-199 of gates.weight and gates.bias (one gate's 100 units) never receive a "
        "gradient, whatever the input: that gate is computed but not used.")
    assert behaviour.hint.startswith("Rows 100-199 are the 2nd of gates.weight's 2 blocks of 100 rows; ")
    assert "one slice of a shared layer used twice" in behaviour.hint
    assert shared["peepholedlstmcell.parameters"].passed


def test_output_gate_dropped_from_a_shared_linear(shared):
    behaviour = shared["coupledlstmcell.behaviour"]
    assert behaviour.message == (
        "CoupledLSTMCell: the output gate is computed but not used: h_t equals tanh(c_t) exactly for every input "
        "(the equations give h_t = o_t * tanh(c_t)), and rows 200-299 of gates.weight and gates.bias (one gate's 100 "
        "units) never receive a gradient.")
    assert behaviour.hint.startswith("Scale the output by the output gate: h_t = o_t * tanh(c_t)")
    assert shared["coupledlstmcell.parameters"].passed


def test_gru_reset_gate_computed_but_unused(shared):
    behaviour = shared["grucell.behaviour"]
    assert behaviour.message == (
        "GRUCell: rows 0-99 of x2h.weight, x2h.bias, h2h.weight and h2h.bias (one gate's 100 units) never receive a "
        "gradient, whatever the input: that gate is computed but not used.")
    assert "r_t * h_{t-1}" in behaviour.hint


# ------------------------------------------------------------------ the plain submission, mutated

@pytest.fixture(scope="module")
def plain_mutants(tmp_path_factory, rubric_dir):
    folder = submission(
        tmp_path_factory.mktemp("plain") / "hw5", None, PLAIN,
        ("c = f * prev_c + i * c_tilde  # LSTM-C", "c = prev_c + i * c_tilde"),
        ("torch.cat((r * prev_h, x), dim=1)", "torch.cat((prev_h, x), dim=1)"),
        ("return o * torch.tanh(c_new), c_new", "return torch.tanh(c_new), c_new"),
        ("c = f * c + (1 - f) * torch.tanh(self.g(hx))", "c = c + (1 - f) * torch.tanh(self.g(hx))"))
    return grade_cells(folder, rubric_dir)


def test_forget_gate_dropped_with_its_own_linear(plain_mutants):
    behaviour = plain_mutants["lstmcell.behaviour"]
    assert behaviour.message == (
        "LSTMCell: the forget gate is computed but not used: the new cell state's derivative with respect to the "
        "old one is exactly 1 for every input (c_t = c_{t-1} + i_t * g_t; the equations give c_t = f_t * c_{t-1} + "
        "i_t * g_t), and its parameters forget_gate.weight and forget_gate.bias never receive a gradient.")
    assert "no gradient reaches" not in behaviour.message  # said once, in the gate's terms
    assert plain_mutants["lstmcell.parameters"].passed


def test_gru_reset_gate_with_its_own_weights(plain_mutants):
    assert plain_mutants["grucell.behaviour"].message == (
        "GRUCell: the reset gate is computed but not used: its parameters W_r and b_r never receive a gradient, "
        "whatever the input.")


def test_output_gate_dropped_with_its_own_linear(plain_mutants):
    assert plain_mutants["peepholedlstmcell.behaviour"].message == (
        "PeepholedLSTMCell: the output gate is computed but not used: h_t equals tanh(c_t) exactly for every input "
        "(the equations give h_t = o_t * tanh(c_t)), and its parameters o.weight and o.bias never receive a gradient.")


def test_coupled_cell_state_carried_over_unscaled(plain_mutants):
    # f still feeds (1 - f): nothing is dead, but c_{t-1} passes unscaled.
    behaviour = plain_mutants["coupledlstmcell.behaviour"]
    assert behaviour.message == (
        "CoupledLSTMCell: the old cell state is carried over unscaled: the new cell state's derivative with respect "
        "to the old one is exactly 1 for every input (the equations give c_t = f_t * c_{t-1} + (1 - f_t) * g_t).")
    assert behaviour.hint == ("Multiply the previous cell state by the forget gate: "
                              "c_t = f_t * c_{t-1} + (1 - f_t) * g_t")


# ------------------------------------------------------------------ the reference, mutated

@pytest.fixture(scope="module")
def reference_mutants(tmp_path_factory, rubric_dir):
    folder = submission(
        tmp_path_factory.mktemp("reference") / "hw5", None, REFERENCE,
        ("c = f * prev_c + i * c_tilde ", "c = prev_c + i * c_tilde "),
        ("return (1 - z) * prev_h + z * h_tilde", "return h_tilde"),
        ("        f = torch.sigmoid(F.linear(hx, self.W_f, self.b_f) + F.linear(prev_c, self.P_f))\n",
         "        prev_c = prev_c.detach()\n"
         "        f = torch.sigmoid(F.linear(hx, self.W_f, self.b_f) + F.linear(prev_c, self.P_f))\n"),
        ("c = f * prev_c + (1 - f) * c_tilde", "c = (1 - f) * c_tilde"))
    return grade_cells(folder, rubric_dir)


def test_forget_gate_dropped_with_separate_parameters_names_w_f(reference_mutants):
    assert reference_mutants["lstmcell.behaviour"].message == (
        "LSTMCell: the forget gate is computed but not used: the new cell state's derivative with respect to the "
        "old one is exactly 1 for every input (c_t = c_{t-1} + i_t * g_t; the equations give c_t = f_t * c_{t-1} + "
        "i_t * g_t), and its parameters W_f and b_f never receive a gradient.")


def test_gru_without_its_update_gate(reference_mutants):
    behaviour = reference_mutants["grucell.behaviour"]
    assert "the update gate is computed but not used: its parameters W_z and b_z never receive a gradient" \
        in behaviour.message


def test_detached_cell_state(reference_mutants):
    behaviour = reference_mutants["peepholedlstmcell.behaviour"]
    assert behaviour.message == (
        "PeepholedLSTMCell: no gradient flows back through the cell state: the new cell state changes with the old "
        "one, but its derivative with respect to c_{t-1} is exactly 0 for every input (c_{t-1} is detached inside "
        "forward).")
    assert behaviour.hint.startswith("Do not detach prev_state")


def test_cell_state_that_ignores_the_old_one(reference_mutants):
    behaviour = reference_mutants["coupledlstmcell.behaviour"]
    assert behaviour.message == (
        "CoupledLSTMCell: the new cell state does not depend on the old one (its derivative with respect to c_{t-1} "
        "is exactly 0 for every input; the equations give c_t = f_t * c_{t-1} + (1 - f_t) * g_t).")
    assert behaviour.hint.startswith("Keep the previous cell state (from prev_state) in the sum")


# ------------------------------------------------------------------ correct cells pass

@pytest.mark.parametrize("source", [CORRECT_A, CORRECT_B, CORRECT_C], ids=["a", "b", "c"])
def test_correct_cells_in_many_forms_pass_behaviour(tmp_path, rubric_dir, source):
    checks = grade_cells(submission(tmp_path / "hw5", source), rubric_dir, "*.behaviour")
    for cell in CELLS:
        behaviour = checks[f"{cell}.behaviour"]
        assert behaviour.passed, behaviour.message
        assert "every parameter row gets a gradient" in behaviour.message
        if cell != "grucell":
            assert "dc_t/dc_{t-1} is neither 0 nor exactly 1" in behaviour.message


@pytest.mark.parametrize("base", [PLAIN, REFERENCE], ids=["plain", "reference"])
def test_plain_and_reference_cells_pass_with_the_gru(tmp_path, rubric_dir, base):
    checks = grade_cells(submission(tmp_path / "hw5", None, base), rubric_dir, "*.behaviour")
    assert [c for c in CELLS if not checks[f"{c}.behaviour"].passed] == []


def test_pass_message_says_what_was_measured(tmp_path, rubric_dir):
    checks = grade_cells(submission(tmp_path / "hw5", CORRECT_A), rubric_dir, "lstmcell.behaviour", "grucell.behaviour")
    assert checks["lstmcell.behaviour"].message.endswith(
        "every parameter row gets a gradient, c_t depends on c_{t-1} through a gate (dc_t/dc_{t-1} is neither 0 nor "
        "exactly 1), and h_t is gated (not tanh(c_t) alone).")
    assert checks["grucell.behaviour"].message.endswith("and every parameter row gets a gradient.")


# ------------------------------------------------------------------ the pieces, without a worker

@pytest.mark.parametrize("name, family, shape, gate", [
    ("W_f", "lstm", [100, 228], "forget gate"),
    ("b_f", "lstm", [100], "forget gate"),
    ("forget_gate.weight", "lstm", [100, 228], "forget gate"),
    ("f.bias", "peephole", [100], "forget gate"),
    ("P_f", "peephole", [100, 100], "forget gate"),
    ("W_hf", "lstm", [100, 100], "forget gate"),
    ("W_xo", "lstm", [128, 100], "output gate"),
    ("Wo", "lstm", [100, 228], "output gate"),
    ("outputGate.weight", "lstm", [100, 228], "output gate"),
    ("W_c", "lstm", [100, 228], "candidate"),
    ("W_r", "gru", [100, 228], "reset gate"),
    ("update.bias", "gru", [100], "update gate"),
    ("gates.weight", "lstm", [400, 228], None),        # shared by four gates
    ("weight_ih", "gru", [300, 128], None),
    ("W_f", "lstm", [400, 228], None),                  # a name, but the rows of several gates
    ("W_input_f", "lstm", [100, 228], None),            # two readings: say nothing
    ("linear.weight", "lstm", [100, 228], None),
])
def test_gate_names(name, family, shape, gate):
    assert _gate_of(name, family, shape, 100) == gate


def test_cell_probe_measures_the_jacobian_and_rows():
    class Dropped(nn.Module):
        def __init__(self, input_size, hidden_size, bias=True):
            super().__init__()
            self.gates = nn.Linear(hidden_size + input_size, 4 * hidden_size, bias=bias)

        def forward(self, x, state):
            h, c = state
            f, i, g, o = self.gates(torch.cat((h, x), 1)).chunk(4, 1)
            c = c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

    out = cell_anatomy.cell_anatomy(Dropped, "lstm", 0)
    assert out["error"] is None and out["dtype"] == "float64"
    assert out["cell_state"]["one"] and out["cell_state"]["diagonal"] and not out["cell_state"]["h_is_tanh_c"]
    assert [(d["name"], d["rows"], d["row_blocks"]) for d in out["dead"]] == [
        ("gates.weight", [[0, 99]], [[1, 4]]), ("gates.bias", [[0, 99]], [[1, 4]])]
    assert all(d["touched"] for d in out["dead"])
    torch_default = torch.get_default_dtype()
    assert torch_default == torch.float32  # the probe put the default back


# ------------------------------------------------------------------ models: rows no input reaches

class SmallNet(nn.Module):
    def __init__(self, variant=""):
        super().__init__()
        self.variant = variant
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.extra = nn.Linear(8, 8)
        self.fc = nn.Linear(4 if variant == "sliced" else 8, 10)
        with torch.no_grad():
            if variant == "dead_relu":
                self.conv1.bias[:4] = -50.0  # dead on any batch, but only by its values
            if variant == "zero_scale":
                self.bn2.weight.zero_()  # zero-init of a residual branch's last norm

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2).mean((2, 3))
        y = self.extra(x)
        if self.variant != "unused":
            x = x + y
        return self.fc(x[:, :4] if self.variant == "sliced" else x)


def images(g):
    return torch.randn(4, 3, 8, 8, generator=g)


@pytest.mark.parametrize("variant, reinit", [("", True), ("dead_relu", False), ("dead_relu", True),
                                             ("zero_scale", True)])
def test_models_without_unused_rows(variant, reinit):
    assert anatomy.unreachable_rows(SmallNet(variant), images, reinit=reinit) == []


def test_dead_relu_units_are_candidates_until_revived():
    model = SmallNet("dead_relu").double().eval()
    params = dict(model.named_parameters())
    totals = anatomy._accumulate(model, params, images, 2, torch.Generator().manual_seed(0))
    dead = anatomy.dead_parts(params, totals, block=0)
    assert ("conv1.bias", [[0, 3]]) in [(d["name"], d.get("rows")) for d in dead]
    assert anatomy.unreachable_rows(SmallNet("dead_relu"), images, reinit=False) == []


def test_model_rows_sliced_away_and_layers_never_used():
    sliced = anatomy.unreachable_rows(SmallNet("sliced"), images)
    assert [(d["name"], d["rows"]) for d in sliced] == [("extra.weight", [[4, 7]]), ("extra.bias", [[4, 7]])]
    unused = anatomy.unreachable_rows(SmallNet("unused"), images)
    assert [(d["name"], d["whole"]) for d in unused] == [("extra.weight", True), ("extra.bias", True)]


def test_embedding_rows_are_tokens_not_units():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(50, 8, padding_idx=0)
            self.head = nn.Linear(8, 3)

        def forward(self, tokens):
            return self.head(self.embedding(tokens).mean(1))

    tokens = lambda g: torch.randint(1, 5, (4, 6), generator=g)  # most tokens never appear
    assert anatomy.unreachable_rows(Tagger(), tokens) == []


# ----------------------------------------------------------------------------- unused parts of a model

def test_a_layer_computed_and_dropped_in_the_generation_model(tmp_path):
    """cs1699-hw5: SentenceGeneration computes a projection and multiplies it by zero."""
    folder = tmp_path / "hw5"
    shutil.copytree(HERE / "submissions" / "hw5_plain", folder)
    path = folder / "sentence_generation.py"
    path.write_text(mutate(path.read_text(),
                           ("        return self.classifier(h), state",
                            "        return self.classifier(h + 0 * self.extra(h)), state"),
                           ("        self.classifier = ", "        self.extra = nn.Linear(hidden_size, hidden_size)\n"
                                                          "        self.classifier = ")))
    checks = by_id(api.grade(folder, "cs1699-hw5", api.Options(device="cpu", only=("generation.*",))))
    forward = checks["generation.forward"]
    assert not forward.passed
    assert forward.message == ("Part of SentenceGeneration is computed but never used: all of extra.weight; all of "
                               "extra.bias never receive a gradient, whatever the input (checked again after giving "
                               "those units new weights).")
    assert checks["generation.continuation"].passed
    plain = by_id(api.grade(HERE / "submissions" / "hw5_plain", "cs1699-hw5",
                            api.Options(device="cpu", only=("generation.forward", "sentiment.forward"))))
    assert plain["generation.forward"].passed and plain["sentiment.forward"].passed
