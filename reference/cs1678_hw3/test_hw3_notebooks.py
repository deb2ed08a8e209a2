"""The 2024 notebooks are built from the tested .py references and starters, and are current."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILDERS = [HERE / "build_notebooks.py", REPO / "student_template" / "cs1678_hw3" / "build_notebooks.py"]


@pytest.mark.parametrize("builder", BUILDERS, ids=["reference", "template"])
def test_committed_notebooks_match_a_fresh_build(builder):
    proc = subprocess.run([sys.executable, str(builder), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("folder", [HERE, REPO / "student_template" / "cs1678_hw3"], ids=["reference", "template"])
def test_notebooks_look_like_colab_submissions(folder):
    for name in ("hw3-part-AB.ipynb", "hw3-part-CD.ipynb"):
        book = json.loads((folder / name).read_text())
        assert book["nbformat"] == 4
        sources = ["".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code"]
        assert sources[0].startswith("!pip install")
        assert any("drive.mount(" in s for s in sources)
        assert any(s.startswith("%matplotlib") for s in sources)
        for code in sources:  # every cell but the IPython-only lines is Python
            compile("\n".join(l for l in code.split("\n") if not l.startswith(("!", "%"))), name, "exec")


def test_reference_notebooks_define_what_the_rubric_grades():
    sources = {name: "".join("".join(c["source"]) for c in json.loads((HERE / name).read_text())["cells"])
               for name in ("hw3-part-AB.ipynb", "hw3-part-CD.ipynb")}
    for symbol in ("class AlexNet(", "class AlexNetLargeKernel(", "class AlexNetAvgPooling("):
        assert symbol in sources["hw3-part-AB.ipynb"]
    for symbol in ("class GRUCell(", "class LSTMCell(", "class SentimentClassification(",
                   "class SentenceGeneration(", "def shakespeare_writer(state_dict, start_string):"):
        assert symbol in sources["hw3-part-CD.ipynb"]
    assert "PeepholedLSTMCell" not in sources["hw3-part-CD.ipynb"]  # 2024 asks for the LSTM only
