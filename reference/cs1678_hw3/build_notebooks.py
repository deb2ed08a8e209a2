"""Build the 2024 reference notebooks (hw3-part-AB.ipynb, hw3-part-CD.ipynb) from the .py references.

2024 students submit Colab notebooks holding the same code as the 2020/2021 modules. The
definitions are taken from reference/cs1678_hw4 and reference/cs1699_hw5 by name, so the
notebooks never drift from the tested modules; around them sit the cells a real notebook
has: `!pip`, `drive.mount`, magics, and training and generation run at top level.

    python reference/cs1678_hw3/build_notebooks.py          # write the notebooks
    python reference/cs1678_hw3/build_notebooks.py --check  # exit 1 if they are stale
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent
LOCAL_MODULES = {"alexnet", "pacs", "datasets", "rnn_modules", "sentiment_analysis", "sentence_generation"}


# ------------------------------------------------------------------------- cell helpers

def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def code(text: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": _lines(text)}


def _lines(text: str) -> list[str]:
    lines = text.strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def _statements(path: Path) -> list[tuple[ast.stmt, str]]:
    """Top-level statements with their source, leading comments included."""
    source = path.read_text()
    lines = source.split("\n")
    tree = ast.parse(source)
    out = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while first > 1 and lines[first - 2].startswith("#"):
            first -= 1
        out.append((node, "\n".join(lines[first - 1:node.end_lineno])))
    return out


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _is_import(node: ast.stmt) -> bool:
    return isinstance(node, (ast.Import, ast.ImportFrom))


def _is_local_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] in LOCAL_MODULES
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] in LOCAL_MODULES for a in node.names)


def imports(*paths: Path, drop: tuple[str, ...] = ()) -> dict:
    """One cell with every module's imports, local ones and those of `drop` left out."""
    seen: list[str] = []
    for path in paths:
        for node, text in _statements(path):
            if _is_import(node) and not _is_local_import(node) and not any(d in text for d in drop):
                if text not in seen:
                    seen.append(text)
    return code("\n".join(seen))


def definitions(path: Path, names: list[str] | None = None, skip: tuple[str, ...] = ()) -> list[dict]:
    """Cells for a module's definitions: one per class or function, and one per run of other
    statements (flags, constants). `names` keeps only those, in the module's order; `skip`
    leaves those out."""
    cells, pending = [], []
    for node, text in _statements(path):
        if _is_import(node) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            continue  # imports go in their own cell; module docstrings are prose
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        if names is not None and not (_defined(node) & set(names)):
            continue
        if _defined(node) & set(skip):
            continue
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            if pending:
                cells.append(code("\n".join(pending)))
                pending = []
            cells.append(code(text))
        else:
            pending.append(text)
    if pending:
        cells.append(code("\n".join(pending)))
    if names is not None:
        found = set().union(*(_defined(n) for n, _ in _statements(path)))
        missing = sorted(set(names) - found)
        if missing:
            raise SystemExit(f"{path.name} defines none of {missing}")
    return cells


def notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {"accelerator": "GPU", "colab": {"provenance": []},
                                         "kernelspec": {"display_name": "Python 3", "name": "python3"},
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 0}


def write(path: Path, book: dict, check: bool) -> bool:
    """Write (or compare) one notebook; True when the file on disk is current."""
    text = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
    if check:
        current = path.exists() and path.read_text() == text
        if not current:
            print(f"{path} is stale: run {Path(__file__).name}")
        return current
    path.write_text(text)
    print(f"wrote {path}")
    return True


COLAB_SETUP = [
    code("!pip install -q absl-py scikit-image tensorboard"),
    code("from google.colab import drive\ndrive.mount('/content/drive')\n%cd /content/drive/MyDrive/cs1678/hw3"),
    code("%matplotlib inline\n%load_ext tensorboard"),
]


# ------------------------------------------------------------------------- the notebooks

def part_ab() -> dict:
    hw4 = REFERENCE / "cs1678_hw4"
    alexnet, pacs, trainer = hw4 / "alexnet.py", hw4 / "pacs.py", hw4 / "cnn_trainer.py"
    return notebook([
        markdown("# CS 1678 HW3, Parts A and B: AlexNet on PACS\n\nReference solution."),
        *COLAB_SETUP,
        imports(alexnet, pacs, trainer),
        markdown("## The networks\n\nThe three AlexNets share one builder; each variant is data."),
        *definitions(alexnet),
        markdown("## Data"),
        *definitions(pacs),
        markdown("## Training and kernel visualisation"),
        *definitions(trainer),
        code("FLAGS.mark_as_parsed()  # Colab has no command line"),
        markdown("## Part A: train AlexNet"),
        code("FLAGS.model_type = 'AlexNet'\nFLAGS.experiment_name = 'alexnet'\nFLAGS.epochs = 20\n"
             "best = model_training()\nprint(f'best validation accuracy {best:.4f}')"),
        code("print(AlexNet({'num_classes': 4}))"),
        code("FLAGS.model_checkpoint = 'alexnet/best_model.pt'\nanalyze_model_kernels()"),
        markdown("## Part B: variants"),
        code("for variant in ('AlexNetLargeKernel', 'AlexNetAvgPooling'):\n"
             "    FLAGS.model_type = variant\n    FLAGS.experiment_name = variant.lower()\n"
             "    print(variant, model_training())"),
        code("%tensorboard --logdir ."),
    ])


def part_cd() -> dict:
    hw5 = REFERENCE / "cs1699_hw5"
    cells, datasets = hw5 / "rnn_modules.py", hw5 / "datasets.py"
    sentiment, generation = hw5 / "sentiment_analysis.py", hw5 / "sentence_generation.py"
    return notebook([
        markdown("# CS 1678 HW3, Parts C and D: LSTM, IMDB sentiment and a Shakespeare writer\n\n"
                 "Reference solution."),
        *COLAB_SETUP,
        imports(cells, datasets, sentiment, generation, drop=("absl",)),
        markdown("## Part C: recurrent cells\n\nThe GRU cell is given; the LSTM cell is ours."),
        *definitions(cells, ["RecurrentCell", "GRUCell", "_lstm_state", "LSTMCell"]),
        code("for cell in (GRUCell, LSTMCell):\n    cell(128, 100, bias=True).count_parameters()"),
        markdown("## Part C: IMDB sentiment"),
        *definitions(datasets),
        code("RNN_MODULES = {'gru': GRUCell, 'lstm': LSTMCell}"),
        *definitions(sentiment, ["PADDING_TOKEN", "GRADIENT_CLIP_NORM", "SentimentClassification",
                                 "number_of_parameters", "_sync", "evaluate", "train_sentiment", "load_imdb",
                                 "COMPARISON_COLUMNS", "comparison_markdown", "compare_cells"]),
        code("comparison = compare_cells('imdb/train.csv', 'imdb/test.csv', ('gru', 'lstm'), epochs=50,\n"
             "                           experiment_dir='imdb_runs')"),
        markdown("## Part D: a Shakespeare writer"),
        *definitions(generation, ["SentenceGeneration", "sample_next_char_id", "generate", "window_batches",
                                  "train_language_model"]),
        code("EMBEDDING_DIM = 256\nHIDDEN_SIZE = 512\nHISTORY_LENGTH = 100\nGENERATION_LENGTH = 1000"),
        code("shakespeare = ShakespeareDataset('shakespeare.txt', HISTORY_LENGTH)\n"
             "history = train_language_model(shakespeare, 'gru', embedding_dim=EMBEDDING_DIM,\n"
             "                               hidden_size=HIDDEN_SIZE, epochs=10, experiment_dir='shakespeare')"),
        code(WRITER),
        code("checkpoint = torch.load('shakespeare/best_model.pt', weights_only=True)\n"
             "for start in ('ROMEO', 'JULIET'):\n    print(shakespeare_writer(checkpoint, start))"),
    ])


WRITER = '''
def shakespeare_writer(state_dict, start_string):
    """GENERATION_LENGTH characters after start_string, written by the trained GRU writer.

    state_dict: the checkpoint train_language_model saved, {'model': ..., 'vocabulary': [...]}.
    """
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    vocabulary = state_dict['vocabulary']
    model = SentenceGeneration(len(vocabulary), EMBEDDING_DIM, GRUCell, HIDDEN_SIZE).to(device)
    model.load_state_dict(state_dict['model'])
    return generate(model, vocabulary, start_string, GENERATION_LENGTH, device)
'''


BOOKS = {"hw3-part-AB.ipynb": part_ab, "hw3-part-CD.ipynb": part_cd}


def main(argv: list[str] | None = None, folder: Path = HERE, books: dict = BOOKS) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook differs from a fresh build")
    args = parser.parse_args(argv)
    current = [write(folder / name, build(), args.check) for name, build in books.items()]
    return 0 if all(current) else 1


if __name__ == "__main__":
    sys.exit(main())
