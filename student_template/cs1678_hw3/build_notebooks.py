"""Build the 2024 starter notebooks (hw3-part-AB.ipynb, hw3-part-CD.ipynb) from the .py starters.

The code comes from student_template/cs1678_hw4 and student_template/cs1699_hw5 by name; the
notebook plumbing is shared with reference/cs1678_hw3/build_notebooks.py, so the starter and
the reference notebooks have the same cells around the student's parts.

    python student_template/cs1678_hw3/build_notebooks.py [--check]
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent
sys.path.insert(0, str(TEMPLATES.parent / "reference" / "cs1678_hw3"))
from build_notebooks import COLAB_SETUP, code, definitions, imports, main, markdown, notebook  # noqa: E402


def part_ab() -> dict:
    trainer = TEMPLATES / "cs1678_hw4" / "cnn_trainer.py"
    return notebook([
        markdown("# CS 1678 HW3, Parts A and B: AlexNet on PACS\n\n"
                 "Complete `AlexNet`, `AlexNetLargeKernel` and `AlexNetAvgPooling`, then train them."),
        *COLAB_SETUP,
        imports(trainer),
        *definitions(trainer, skip=("AlexNetTiny", "AlexNetDilation", "MODELS", "main")),
        code("MODELS = {'AlexNet': AlexNet, 'AlexNetLargeKernel': AlexNetLargeKernel,\n"
             "          'AlexNetAvgPooling': AlexNetAvgPooling}"),
        code("FLAGS.mark_as_parsed()  # Colab has no command line"),
        markdown("## Part A: train AlexNet"),
        code("FLAGS.model_type = 'AlexNet'\nFLAGS.experiment_name = 'alexnet'\nmodel_training()"),
        markdown("## Part B: variants"),
        code("FLAGS.model_type = 'AlexNetLargeKernel'\nFLAGS.experiment_name = 'large_kernel'\nmodel_training()"),
    ])


def part_cd() -> dict:
    hw5 = TEMPLATES / "cs1699_hw5"
    cells, datasets = hw5 / "rnn_modules.py", hw5 / "datasets.py"
    sentiment, generation = hw5 / "sentiment_analysis.py", hw5 / "sentence_generation.py"
    return notebook([
        markdown("# CS 1678 HW3, Parts C and D: LSTM, IMDB sentiment and a Shakespeare writer\n\n"
                 "Complete `LSTMCell`, `SentenceGeneration` and `shakespeare_writer`."),
        *COLAB_SETUP,
        imports(cells, datasets, sentiment, generation, drop=("absl",)),
        *definitions(cells, ["RecurrentCell", "GRUCell", "_lstm_state", "LSTMCell"]),
        *definitions(datasets),
        code("RNN_MODULES = {'gru': GRUCell, 'lstm': LSTMCell}"),
        *definitions(sentiment, ["PADDING_TOKEN", "GRADIENT_CLIP_NORM", "SentimentClassification",
                                 "number_of_parameters", "_sync", "evaluate", "train_sentiment", "load_imdb"]),
        code("train_set, val_set = load_imdb('imdb/train.csv', 'imdb/test.csv')\n"
             "history = train_sentiment(train_set, val_set, 'gru', epochs=50, experiment_dir='imdb_gru')"),
        *definitions(generation, ["SentenceGeneration", "sample_next_char_id", "window_batches",
                                  "train_language_model"]),
        code("EMBEDDING_DIM = 256\nHIDDEN_SIZE = 512\nHISTORY_LENGTH = 100\nGENERATION_LENGTH = 1000"),
        code(WRITER),
    ])


WRITER = '''
def shakespeare_writer(state_dict, start_string):
    """GENERATION_LENGTH characters after start_string, written by the trained writer.

    state_dict: the checkpoint train_language_model saved, {'model': ..., 'vocabulary': [...]}.
    """
    # TODO: build SentenceGeneration, load state_dict['model'], feed start_string, then
    # repeatedly pick the next character with sample_next_char_id and feed it back,
    # carrying the recurrent state.
    raise NotImplementedError
'''

if __name__ == "__main__":
    sys.exit(main(folder=HERE, books={"hw3-part-AB.ipynb": part_ab, "hw3-part-CD.ipynb": part_cd}))
