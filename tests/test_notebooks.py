"""Tests for grader.notebooks: definitions out of Colab notebooks, without running the rest.

Every notebook is built here with json.dumps. The grader itself never runs student code;
these tests do execute the small generated modules (in a fresh namespace) to prove what the
import defines and that nothing that was left out ran.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import grader.notebooks as nb
from grader.intake import StagedSubmission
from grader.notebooks import NotebookError, convert_notebook, convert_staged, locate


# ----- helpers ---------------------------------------------------------------------------


def code(source: str, as_list: bool = True) -> dict:
    """A code cell; Jupyter stores source as a list of lines, some tools as one string."""
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.splitlines(keepends=True) if as_list else source}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def write_notebook(folder: Path, name: str, cells: list[dict]) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    return path


def load(text: str) -> dict:
    """Import a generated module's text the way the worker would, in a fresh namespace."""
    namespace = {"__name__": "student_notebook"}
    exec(compile(text, "student_notebook.py", "exec"), namespace)
    return namespace


def note_texts(notes) -> str:
    return "\n".join(f"{n.level}: {n.text}" for n in notes)


def staged_from(root: Path, source: str = "hw.zip") -> StagedSubmission:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return StagedSubmission(root=root, files=files, notes=[], source=source)


# ----- the Colab notebook a student really hands in ----------------------------------------


def colab_notebook(tmp_path: Path) -> tuple[Path, Path]:
    """Cells a Colab homework is full of. Everything that must not run writes to `markers`."""
    markers = tmp_path / "markers"
    markers.mkdir()
    m = repr(str(markers))
    cells = [
        markdown("# Homework 3"),                                                      # 1
        code("!pip install torchtext==0.6\n%matplotlib inline\nimport math\nimport os\n"),  # 2
        code(f"%%bash\necho ran > {markers}/bash\n"),                                  # 3
        code(f"MARKERS = {m}\n"                                                        # 4
             "class _Drive:\n"
             "    def mount(self, path):\n"
             "        open(os.path.join(MARKERS, 'mount'), 'w').write(path)\n"
             "drive = _Drive()\n"
             "drive.mount('/content/drive')\n"),
        code("%%time\nclass GRUCell:\n    def __init__(self, hidden):\n        self.hidden = hidden\n"),  # 5
        code("class LSTMCell:\n    kind = 'lstm'\n"                                     # 6
             "RNN_MODULES = {'gru': GRUCell, 'lstm': LSTMCell}\nHIDDEN = 32\nEPOCHS = 100\n"),
        code("def get_config():\n    return dict(lr=0.1, hidden=HIDDEN)\n"              # 7
             "CONFIG = get_config()\nLR = CONFIG.get('lr')\n"),
        code("def train(model):\n"                                                     # 8
             "    for epoch in range(EPOCHS):\n"
             "        open(os.path.join(MARKERS, 'train'), 'a').write('epoch')\n"
             "    raise RuntimeError('training ran')\n"
             "model = GRUCell(HIDDEN)\n"
             "history = train(model)\n"),
        code("for epoch in range(100):\n    train(model)\nprint('done')\n"),           # 9
        code("if __name__ == '__main__':\n    train(model)\n"),                        # 10
    ]
    return write_notebook(tmp_path, "hw3-part-CD.ipynb", cells), markers


def test_colab_notebook_keeps_definitions_and_runs_nothing_else(tmp_path):
    path, markers = colab_notebook(tmp_path)
    text, line_map, notes, definitions = convert_notebook(path)
    ns = load(text)
    assert list(markers.iterdir()) == []  # no training, no mount, no bash cell ran
    assert ns["__dlgrade_skipped__"] == []
    assert "history" not in ns
    assert ns["RNN_MODULES"] == {"gru": ns["GRUCell"], "lstm": ns["LSTMCell"]}
    assert ns["GRUCell"](8).hidden == 8  # the class inside the %%time cell
    assert (ns["HIDDEN"], ns["CONFIG"], ns["LR"]) == (32, {"lr": 0.1, "hidden": 32}, 0.1)
    assert callable(ns["train"]) and isinstance(ns["model"], ns["GRUCell"])
    for text_left_out in ("pip install", "%matplotlib", "echo ran", "drive.mount", "history", "print("):
        assert text_left_out not in text
    assert definitions == {"_Drive": [4], "GRUCell": [5], "LSTMCell": [6], "get_config": [7], "train": [8]}
    assert len(line_map) == len(text.splitlines())


def test_colab_notebook_summary_note_groups_what_was_left_out_by_cell(tmp_path):
    path, _ = colab_notebook(tmp_path)
    notes = convert_notebook(path)[2]
    summary = [n for n in notes if n.text.startswith("Not run while grading")]
    assert len(summary) == 1 and summary[0].level == "info"
    text = summary[0].text
    assert text.startswith("Not run while grading (hw3-part-CD.ipynb): ")
    assert "training and other calls in cells 4, 9" in text
    assert "assignments that train, load data or do I/O in cell 8 (leaving history undefined)" in text
    assert "loops in cell 9" in text
    assert "shell commands in cell 2" in text and "IPython magics in cell 2" in text
    assert "%%bash cells in cell 3" in text
    assert "if __name__ == '__main__':` blocks in cell 10" in text
    assert [n for n in notes if n.level != "info"] == []


def test_generated_module_starts_with_a_comment_naming_the_notebook_and_cells(tmp_path):
    path, _ = colab_notebook(tmp_path)
    text = convert_notebook(path)[0]
    head = text.splitlines()[:3]
    assert all(line.startswith("#") for line in head)
    assert "dlgrade" in head[0]
    assert "hw3-part-CD.ipynb" in head[2] and "cells 2, 4-8" in head[2]


# ----- IPython syntax ---------------------------------------------------------------------


def test_shell_and_magic_lines_become_pass_inside_blocks_and_strings_are_untouched(tmp_path):
    source = ("import sys\n"
              "if 'google.colab' in sys.modules:\n"
              "    !pip install gdown\n"
              "    %cd /content\n"
              "files = !ls\n"
              "def describe():\n"
              "    '''Usage:\n"
              "%run this\n"
              "!not a shell line\n"
              "    '''\n"
              "    return 1\n"
              "len?\n"
              "?print\n")
    path = write_notebook(tmp_path, "nb.ipynb", [code(source)])
    text, _, notes, _ = convert_notebook(path)
    ns = load(text)
    assert ns["describe"].__doc__ == "Usage:\n%run this\n!not a shell line\n    "
    assert "files" not in ns and "gdown" not in text
    assert [n for n in notes if n.level == "warning"] == []


def test_automagic_pip_line_is_a_shell_command_not_a_syntax_error(tmp_path):
    path = write_notebook(tmp_path, "nb.ipynb", [code("pip install torchtext\nVOCAB = 100\n")])
    text, _, notes, _ = convert_notebook(path)
    assert load(text)["VOCAB"] == 100
    assert "shell commands in cell 1" in note_texts(notes)


def test_python_cell_magics_keep_their_body_and_others_drop_the_cell(tmp_path):
    cells = [code("%%capture\nimport math\nA = 1\n"), code("%%writefile model.py\nB = 2\n"),
             code("%%html\n<b>C = 3</b>\n"), code("%%timeit -n 1\nD = 4\n")]
    text, _, notes, _ = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))
    ns = load(text)
    assert (ns["A"], ns["D"]) == (1, 4) and "B" not in ns and "C" not in ns
    summary = note_texts(notes)
    assert "%%writefile cells in cell 2" in summary and "%%html cells in cell 3" in summary


# ----- what is kept and what is left out ----------------------------------------------------


def test_library_constructors_are_kept_and_data_loading_is_left_out(tmp_path):
    source = ("import types, argparse\n"
              "device = 'cuda' if False else 'cpu'\n"
              "args = argparse.Namespace(lr=0.1)\n"
              "opts = types.SimpleNamespace(batch=4)\n"
              "trainset = torchvision.datasets.CIFAR10(root='./data', train=True, download=True)\n"
              "loader = torch.utils.data.DataLoader(trainset, batch_size=4)\n"
              "frame = pd.read_csv('data.csv')\n"
              "weights = torch.load('model.pt')\n"
              "fig, ax = plt.subplots()\n"
              "page = requests.get('https://example.com')\n"
              "squares = [load(i) for i in range(3)]\n"
              "later = lambda: train(model)\n"
              "raw = fetch_split('train', download=True)\n"
              "from dlgrade_absent_lib.datasets import MNIST as Digits\n"
              "digits = Digits('./data')\n")
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", [code(source)]))[0]
    ns = load(text)
    assert ns["args"].lr == 0.1 and ns["opts"].batch == 4 and ns["device"] == "cpu"
    assert callable(ns["later"])  # defining a lambda runs nothing
    for name in ("trainset", "loader", "frame", "weights", "fig", "page", "squares", "raw", "digits"):
        assert name not in ns, name
    # Kept, and recorded when it fails: the import is not an action, only calling what it imports is.
    assert [s["code"] for s in ns["__dlgrade_skipped__"]] == ["from dlgrade_absent_lib.datasets import MNIST as Digits"]


def test_helper_that_calls_a_training_function_counts_as_training(tmp_path):
    source = ("def fit_epochs(n):\n    for _ in range(n):\n        pass\n"
              "def experiment():\n    return fit_epochs(3)\n"
              "RESULT = experiment()\n")
    text, _, notes, _ = convert_notebook(write_notebook(tmp_path, "nb.ipynb", [code(source)]))
    assert "RESULT" not in load(text)
    assert "(leaving RESULT undefined)" in note_texts(notes)


def test_absl_flag_definitions_are_kept(tmp_path):
    source = ("class flags:  # stands in for absl.flags\n"
              "    defined = []\n"
              "    @staticmethod\n"
              "    def DEFINE_integer(name, default, help):\n"
              "        flags.defined.append((name, default))\n"
              "flags.DEFINE_integer('epochs', 10, 'Epochs to train.')\n"
              "flags.mark_flag_as_required('epochs')\n")
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", [code(source)]))[0]
    assert load(text)["flags"].defined == [("epochs", 10)]
    assert "mark_flag_as_required" not in text


def test_student_try_except_keeps_its_meaning(tmp_path):
    source = ("try:\n    import google.colab\n    IN_COLAB = True\nexcept ImportError:\n    IN_COLAB = False\n"
              "try:\n    import not_a_real_package_xyz\nfinally:\n    AFTER = 1\n")
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", [code(source)]))[0]
    ns = load(text)
    assert ns["IN_COLAB"] is False and ns["AFTER"] == 1
    [skipped] = ns["__dlgrade_skipped__"]  # what the student's own handler did not catch
    assert (skipped["cell"], skipped["line"], skipped["type"]) == (1, 6, "ModuleNotFoundError")


def test_failing_if_condition_is_recorded_and_counts_as_false(tmp_path):
    source = ("data = load_data()\n"
              "if len(data) > 10:\n    BIG = True\nelif len(data) > 5: BIG = 'medium'\nelse:\n    BIG = False\n")
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", [code(source)]))[0]
    ns = load(text)
    assert ns["BIG"] is False
    assert [(s["cell"], s["line"], s["type"]) for s in ns["__dlgrade_skipped__"]] == [(1, 2, "NameError"), (1, 4, "NameError")]


def test_future_imports_are_hoisted_to_the_top(tmp_path):
    cells = [code("import math\n"), code("from __future__ import annotations\ndef f(x: Undefined) -> int:\n    return 1\n")]
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))[0]
    assert "from __future__ import annotations" in text.splitlines()[3]
    assert load(text)["f"].__annotations__ == {"x": "Undefined", "return": "int"}


def test_wrapped_assignment_failing_at_import_is_recorded_and_the_import_goes_on(tmp_path):
    cells = [markdown("setup"), code("import math\nSIZE = 4\n"),
             code("loader = get_loader()\nBATCHES = len(loader)\nclass After:\n    pass\n")]
    text = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))[0]
    ns = load(text)
    assert "After" in ns and ns["SIZE"] == 4
    [skipped] = ns["__dlgrade_skipped__"]
    assert skipped == {"cell": 3, "line": 2, "code": "BATCHES = len(loader)", "type": "NameError",
                       "message": "name 'loader' is not defined"}


# ----- duplicates, syntax errors, line map ---------------------------------------------------


def test_class_defined_twice_the_later_one_wins_and_a_warning_names_both_cells(tmp_path):
    cells = [code("class SentenceGeneration:\n    version = 1\n"), markdown("try again"),
             code("class SentenceGeneration:\n    version = 2\n")]
    text, _, notes, definitions = convert_notebook(write_notebook(tmp_path, "hw3-part-CD.ipynb", cells))
    assert load(text)["SentenceGeneration"].version == 2
    assert definitions == {"SentenceGeneration": [1, 3]}
    warnings = [n for n in notes if n.level == "warning"]
    assert [n.text for n in warnings] == [
        "SentenceGeneration is defined in cells 1 and 3 of hw3-part-CD.ipynb; the last definition (cell 3) "
        "is the one graded, as it is the one that ran last"]


def test_cell_with_a_syntax_error_is_left_out_and_the_others_convert(tmp_path):
    cells = [code("A = 1\n"), markdown("text"), code("B = 2\n"), code("C = 3\n"), markdown("m"),
             code("import math\n\ndef broken(:\n    pass\n"), code("D = 4\n")]
    text, _, notes, _ = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))
    ns = load(text)
    assert (ns["A"], ns["B"], ns["C"], ns["D"]) == (1, 2, 3, 4) and "broken" not in ns and "math" not in ns
    assert [(n.level, n.text) for n in notes] == [("warning", "cell 6 of nb.ipynb was left out: invalid syntax at line 3")]


def test_cell_that_parses_but_cannot_compile_is_left_out(tmp_path):
    cells = [code("def f(a, a):\n    return a\n"), code("E = 5\n")]
    text, _, notes, definitions = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))
    assert load(text)["E"] == 5 and "f" not in definitions
    assert "cell 1 of nb.ipynb was left out: duplicate argument 'a' in function definition at line 1" in note_texts(notes)


def test_locate_maps_a_line_inside_a_class_back_to_its_cell(tmp_path):
    cells = [markdown("intro")] * 3 + [code(f"X{i} = {i}\n") for i in range(5)] + [
        code("import math\n\nclass Decoder:\n    def forward(self, x):\n        return math.sqrt(x)\n")]
    path = write_notebook(tmp_path, "hw3-part-CD.ipynb", cells)
    text, line_map, _, _ = convert_notebook(path)
    converted = nb.ConvertedNotebook("hw3-part-CD.ipynb", "hw3_part_CD.py", line_map, [], {})
    generated = text.splitlines()
    line = generated.index("        return math.sqrt(x)") + 1
    assert locate(converted, line) == "hw3-part-CD.ipynb cell 9, line 5"
    assert locate(converted, 1).startswith("hw3_part_CD.py line 1 (added by dlgrade")
    # Every mapped def/class line is the cell's own line, unchanged.
    source = cells[8]["source"]
    for i, (cell, cell_line) in enumerate(line_map):
        if cell == 9 and cell_line >= 3:
            assert generated[i] == source[cell_line - 1].rstrip("\n")


# ----- reading notebooks -------------------------------------------------------------------


def test_invalid_json_is_a_notebook_error(tmp_path):
    path = tmp_path / "hw3.ipynb"
    path.write_text("")
    with pytest.raises(NotebookError) as err:
        convert_notebook(path)
    assert str(err.value) == "hw3.ipynb is not a valid notebook: Expecting value: line 1 column 1 (char 0)"


def test_notebook_without_code_cells_is_a_notebook_error(tmp_path):
    path = write_notebook(tmp_path, "hw3.ipynb", [markdown("# only words"), {"cell_type": "raw", "source": "x = 1"}])
    with pytest.raises(NotebookError, match=r"^hw3\.ipynb has no code cells$"):
        convert_notebook(path)


def test_json_that_is_not_a_notebook_is_a_notebook_error(tmp_path):
    path = tmp_path / "data.ipynb"
    path.write_text(json.dumps([1, 2, 3]))
    with pytest.raises(NotebookError, match="is not a valid notebook: it has no list of cells"):
        convert_notebook(path)


def test_oversized_notebook_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(nb.reading, "MAX_NOTEBOOK_BYTES", 1024)
    path = write_notebook(tmp_path, "big.ipynb", [code("X = 1\n" + "# padding\n" * 200)])
    with pytest.raises(NotebookError, match="big.ipynb is larger than 1 KB"):
        convert_notebook(path)


def test_notebook_with_too_many_code_cells_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(nb.reading, "MAX_CODE_CELLS", 3)
    path = write_notebook(tmp_path, "many.ipynb", [code(f"X{i} = {i}\n") for i in range(4)])
    with pytest.raises(NotebookError, match="many.ipynb has 4 code cells, more than the 3"):
        convert_notebook(path)


def test_nbformat_3_notebook(tmp_path):
    notebook = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "source": ["Old notebook"]},
        {"cell_type": "code", "language": "python", "input": ["import math\n", "class Old:\n", "    pi = math.pi\n"],
         "outputs": []},
        {"cell_type": "code", "input": "!ls\nK = 7", "outputs": []},
    ]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(notebook))
    text, _, notes, definitions = convert_notebook(path)
    ns = load(text)
    assert ns["K"] == 7 and ns["Old"].pi > 3
    assert definitions == {"Old": [2]}
    assert "shell commands in cell 3" in note_texts(notes)


def test_source_as_one_string_or_as_a_list_of_lines(tmp_path):
    source = "class Net:\n    layers = 3\n\nWIDTH = 64"
    for as_list in (True, False):
        path = write_notebook(tmp_path, f"nb_{as_list}.ipynb", [code(source, as_list=as_list)])
        text, line_map, _, _ = convert_notebook(path)
        ns = load(text)
        assert (ns["Net"].layers, ns["WIDTH"]) == (3, 64)
        assert (1, 4) in line_map


def test_cell_whose_source_is_not_text_is_left_out_with_a_note(tmp_path):
    cells = [{"cell_type": "code", "source": {"not": "text"}}, code("OK = True\n")]
    text, _, notes, _ = convert_notebook(write_notebook(tmp_path, "nb.ipynb", cells))
    assert load(text)["OK"] is True
    assert "cell 1 of nb.ipynb was left out: its source is not text" in note_texts(notes)


# ----- staged submissions ------------------------------------------------------------------


def test_convert_staged_writes_the_module_beside_the_notebook(tmp_path):
    root = tmp_path / "submission"
    write_notebook(root / "part2", "hw3-part-CD.ipynb", [code("class Model:\n    pass\n")])
    staged = staged_from(root)
    [converted] = convert_staged(staged)
    assert (converted.notebook, converted.module) == ("part2/hw3-part-CD.ipynb", "part2/hw3_part_CD.py")
    assert staged.files == ["part2/hw3-part-CD.ipynb", "part2/hw3_part_CD.py"]
    assert "Model" in load((root / converted.module).read_text())
    assert converted.definitions == {"Model": [1]}
    line = (root / converted.module).read_text().splitlines().index("class Model:") + 1
    assert locate(converted, line) == "part2/hw3-part-CD.ipynb cell 1, line 1"


def test_convert_staged_never_clobbers_a_python_file_of_the_same_name(tmp_path):
    root = tmp_path / "submission"
    write_notebook(root, "hw3.ipynb", [code("FROM_NOTEBOOK = 1\n")])
    write_notebook(root, "HW3_notebook.ipynb", [code("SECOND = 2\n")])
    (root / "hw3.py").write_text("FROM_FILE = 1\n")
    (root / "hw3_notebook.py").write_text("ALSO_A_FILE = 1\n")
    staged = staged_from(root)
    converted = {c.notebook: c.module for c in convert_staged(staged)}
    assert converted == {"hw3.ipynb": "hw3_notebook2.py", "HW3_notebook.ipynb": "HW3_notebook_notebook.py"}
    assert (root / "hw3.py").read_text() == "FROM_FILE = 1\n"
    assert (root / "hw3_notebook.py").read_text() == "ALSO_A_FILE = 1\n"
    assert staged.files == sorted(staged.files) and "hw3_notebook2.py" in staged.files


def test_convert_staged_does_not_shadow_a_package_folder_of_the_same_name(tmp_path):
    root = tmp_path / "submission"
    write_notebook(root, "models.ipynb", [code("A = 1\n")])
    (root / "models").mkdir()
    (root / "models" / "__init__.py").write_text("")
    [converted] = convert_staged(staged_from(root))
    assert converted.module == "models_notebook.py"


def test_convert_staged_names_that_would_shadow_a_library_or_start_with_a_digit(tmp_path):
    root = tmp_path / "submission"
    write_notebook(root, "torch.ipynb", [code("A = 1\n")])
    write_notebook(root, "3 layer net.ipynb", [code("B = 1\n")])
    converted = {c.notebook: c.module for c in convert_staged(staged_from(root))}
    assert converted == {"torch.ipynb": "torch_notebook.py", "3 layer net.ipynb": "notebook_3_layer_net.py"}


def test_convert_staged_turns_an_invalid_notebook_into_an_error_note_and_converts_its_sibling(tmp_path):
    root = tmp_path / "submission"
    root.mkdir()
    (root / "broken.ipynb").write_text("{not json")
    write_notebook(root, "good.ipynb", [code("GOOD = 1\n"), code("print(GOOD)\n")])
    staged = staged_from(root)
    converted = convert_staged(staged)
    assert [(c.notebook, c.module) for c in converted] == [("good.ipynb", "good.py")]
    assert staged.files == ["broken.ipynb", "good.ipynb", "good.py"]
    errors = [n for n in staged.notes if n.level == "error"]
    assert len(errors) == 1 and errors[0].text.startswith("broken.ipynb is not a valid notebook: ")
    # The converted notebook's own notes are in the result, not repeated in staged.notes.
    assert [n.text for n in converted[0].notes] == ["Not run while grading (good.ipynb): training and other calls in cell 2"]
    assert len(staged.notes) == 1
