"""The grader hands Part C's analysis and Part D's writer what the submission's own code
reads: the checkpoint layout, the call, and the lengths it may lower.

The first tests read small sources with grader.handoff (parsing only); the others grade
submissions derived from the plain ones through the sandboxed worker.
"""
from __future__ import annotations

import ast
import json

import pytest

from gradekit import by_id, grade, mutate, plain_source, write_submission
from grader import api
from grader.handoff import Knob, read_handoff

from test_notebook_grading import CD, cells, code_cell, submit


def handoff(source: str, function: str = "analyze_model_kernels", **kw):
    code = [("cnn_trainer.py", ast.parse(source), source.splitlines())]
    return read_handoff(code, function, **kw)


# ----------------------------------------------------------------------------- reading the source

@pytest.mark.parametrize("body, kind, key", [
    ("ckpt = torch.load(FLAGS.model_checkpoint)\n    for n in [0, 3]:\n"
     "        show('c%d' % n, ckpt['features.' + str(n) + '.weight'])", "state_dict", None),
    ("ckpt = torch.load(FLAGS.model_checkpoint)\n    show('c1', ckpt['features.0.weight'])", "state_dict", None),
    ("model = AlexNet({})\n    model.load_state_dict(torch.load(FLAGS.model_checkpoint))", "state_dict", None),
    ("weights = torch.load(FLAGS.model_checkpoint)\n    for name, w in weights.items():\n        show(name, w)",
     "state_dict", None),
    ("ckpt = torch.load(FLAGS.model_checkpoint)\n    model.load_state_dict(ckpt['state_dict'])", "wrapped",
     "state_dict"),
    ("model.load_state_dict(torch.load(FLAGS.model_checkpoint)['model_state_dict'])", "wrapped", "model_state_dict"),
    ("net = torch.load(FLAGS.model_checkpoint)\n    show('c1', net.features[0].weight)", "model", None),
])
def test_the_layout_the_analysis_reads(body, kind, key):
    found = handoff(f"def analyze_model_kernels():\n    {body}\n")
    assert (found.layout.kind, found.layout.key) == (kind, key)
    assert found.layout.why.startswith("analyze_model_kernels reads it that way (`")
    assert "cnn_trainer.py line " in found.layout.why


@pytest.mark.parametrize("save, kind, key", [
    ("best_model = copy.deepcopy(model.state_dict())\n    torch.save(best_model, 'exp/best_model.pt')",
     "state_dict", None),
    ("torch.save({'model_state_dict': model.state_dict(), 'epoch': epoch}, 'best.pt')", "wrapped", "model_state_dict"),
    ("state = {'net': model.state_dict(), 'acc': acc}\n    torch.save(state, path)", "wrapped", "net"),
    ("model = AlexNet(configs)\n    torch.save(model, 'exp/best_model.pt')", "model", None),
])
def test_the_layout_the_training_code_saves_when_the_analysis_does_not_show_it(save, kind, key):
    source = (f"class AlexNet(nn.Module):\n    pass\n\ndef model_training():\n    {save}\n\n"
              "def analyze_model_kernels():\n    weights = load_weights(FLAGS.model_checkpoint)\n    show(weights)\n")
    found = handoff(source)
    assert (found.layout.kind, found.layout.key) == (kind, key)
    assert found.layout.why.startswith("analyze_model_kernels does not show it, and the submission's training "
                                       "code saves it that way (`torch.save(")


def test_a_save_whose_path_says_best_wins():
    source = ("def model_training():\n    torch.save(model, 'last.pt')\n"
              "    torch.save(model.state_dict(), os.path.join(exp, 'best_model.pt'))\n"
              "def analyze_model_kernels():\n    pass\n")
    assert handoff(source).layout.kind == "state_dict"


def test_code_that_does_not_tell_gets_a_checkpoint_read_either_way():
    found = handoff("def analyze_model_kernels():\n    show(load_weights(FLAGS.model_checkpoint))\n")
    assert found.layout.kind == "either"
    assert "can also be read as checkpoint['model']" in found.layout.describe()


def test_the_reader_wins_over_a_training_code_that_disagrees():
    source = ("def model_training():\n    torch.save({'model': model.state_dict()}, 'best.pt')\n"
              "def analyze_model_kernels():\n    ckpt = torch.load(FLAGS.model_checkpoint)\n"
              "    show(ckpt['features.0.weight'])\n")
    found = handoff(source)
    assert found.layout.kind == "state_dict"
    assert found.notes == ["The training code saves a dict with the state_dict under 'model' (`torch.save({'model': "
                           "model.state_dict()}, 'best.pt')`, cnn_trainer.py line 2), but analyze_model_kernels reads "
                           "a bare state_dict (torch.save(model.state_dict())); graded with what "
                           "analyze_model_kernels reads."]


def test_a_writers_checkpoint_argument_and_its_vocabulary_key():
    source = ("def shakespeare_writer(state_dict, start_string):\n    vocab = state_dict['chars']\n"
              "    model.load_state_dict(state_dict['model'])\n")
    found = handoff(source, "shakespeare_writer", checkpoint_argument=True, lengths=True)
    assert (found.layout.kind, found.layout.key, found.layout.extras) == ("wrapped", "model", ("chars",))


@pytest.mark.parametrize("source, knobs", [
    ("GENERATION_LENGTH = 1000\ndef shakespeare_writer(state_dict, start_string):\n"
     "    for _ in range(GENERATION_LENGTH):\n        pass\n", [Knob("global", "GENERATION_LENGTH")]),
    ("def shakespeare_writer():\n    text = FLAGS.start_string\n    while len(text) < FLAGS.num_chars:\n        pass\n",
     [Knob("flag", "num_chars")]),
    ("CONFIG = {'gen_len': 1000}\ndef shakespeare_writer(state_dict, start_string):\n"
     "    for i in range(len(start_string), CONFIG['gen_len']):\n        pass\n", [Knob("dict", "CONFIG", "gen_len")]),
    ("N_CHARS = 1000\ndef shakespeare_writer(state_dict, start_string):\n    return generate(start_string, N_CHARS)\n",
     [Knob("global", "N_CHARS")]),
    ("HISTORY_LENGTH = 100\ndef shakespeare_writer(state_dict, start_string):\n"
     "    for _ in range(1000):\n        x = x[-HISTORY_LENGTH:]\n", []),
])
def test_what_sets_how_much_text_a_writer_writes(source, knobs):
    found = handoff(source, "shakespeare_writer", checkpoint_argument=True, lengths=True)
    assert found.knobs == knobs


def test_the_submissions_own_call_with_a_config_dict():
    source = ("config = {'generation_length': 2000, 'hidden_size': 512}\n"
              "def shakespeare_writer(state_dict, start_string, generation_length, hidden_size, **kwargs):\n"
              "    for _ in range(generation_length):\n        pass\n"
              "text = shakespeare_writer(trained, 'ROMEO', **config)\n")
    found = handoff(source, "shakespeare_writer", checkpoint_argument=True, lengths=True)
    assert found.call["args"] == [{"kind": "checkpoint"}, {"kind": "start"}] and found.call["star"] == "config"
    assert found.knobs == [Knob("param", "generation_length"), Knob("dict", "config", "generation_length")]


# ----------------------------------------------------------------------------- Part C, graded

ANALYZE = ("def analyze_model_kernels():\n    checkpoint = torch.load(FLAGS.model_checkpoint, map_location='cpu', "
           "weights_only=True)\n    model = AlexNet({'num_classes': LABEL_SIZE[FLAGS.label_type]})\n"
           "    model.load_state_dict(checkpoint['model'])\n"
           "    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]\n"
           "    for index, conv in enumerate(convs, start=1):\n"
           "        visualize_kernels(f'Conv2d-{index}', conv.weight)\n")


def analysis(tmp_path, body: str):
    return grade(write_submission(tmp_path, mutate(plain_source(), (ANALYZE, body))), "kernels.*")


def test_the_starters_bare_state_dict_read_by_layer_name(tmp_path):
    report = analysis(tmp_path, "def analyze_model_kernels():\n    checkpoint = torch.load(FLAGS.model_checkpoint)\n"
                                "    for n, index in enumerate([0, 3, 6, 8, 10]):\n"
                                "        visualize_kernels('conv%d' % n, checkpoint['features.%d.weight' % index])\n"
                                "    return\n")
    checks = by_id(report)
    assert checks["kernels.calls"].passed and checks["kernels.images"].passed, checks["kernels.calls"].message
    # the helper's 12x12 default grid is asked down to 4x4 through its own parameters, and said
    assert "The grids show at most 4 input and output channels, to keep grading quick" in checks["kernels.images"].message
    assert "The grader gave it a bare state_dict (torch.save(model.state_dict())): analyze_model_kernels reads " \
           "it that way (`visualize_kernels('conv%d' % n, checkpoint['features.%d.weight' % index])`, " \
           "cnn_trainer.py line" in checks["kernels.calls"].message


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict"])
def test_weights_under_another_key(tmp_path, key):
    report = analysis(tmp_path, ANALYZE.replace("checkpoint['model']", f"checkpoint[{key!r}]"))
    calls = by_id(report)["kernels.calls"]
    assert calls.passed, calls.message
    assert f"a dict with the state_dict under {key!r}" in calls.message


def test_a_whole_saved_model(tmp_path):
    report = analysis(tmp_path, "def analyze_model_kernels():\n    net = torch.load(FLAGS.model_checkpoint)\n"
                                "    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]\n"
                                "    for i, conv in enumerate(convs):\n        visualize_kernels(f'c{i}', conv.weight)\n")
    calls = by_id(report)["kernels.calls"]
    assert calls.passed, calls.message
    assert "a whole saved model (torch.save(model))" in calls.message


@pytest.mark.parametrize("use", ["for i, (name, w) in enumerate(weights.items()):\n"
                                 "        if w.dim() == 4:\n            visualize_kernels(f'c{i}', w)",
                                 "model = AlexNet({'num_classes': 4})\n    model.load_state_dict(weights['model'])\n"
                                 "    for i, m in enumerate(model.features):\n        if isinstance(m, nn.Conv2d):\n"
                                 "            visualize_kernels(f'c{i}', m.weight)"])
def test_code_that_does_not_show_its_layout_can_read_it_either_way(tmp_path, use):
    body = ("def _load(path):\n    return torch.load(path)\n\n\ndef analyze_model_kernels():\n"
            f"    weights = _load(FLAGS.model_checkpoint)\n    {use}\n")
    calls = by_id(analysis(tmp_path, body))["kernels.calls"]
    assert calls.passed, calls.message
    assert "neither analyze_model_kernels nor the training code shows how the checkpoint is laid out" in calls.message


def test_two_checkpoints_from_paths_built_from_flags_and_a_folder_made_by_hand(tmp_path):
    """Both label types' models, each from its own experiment folder, drawn into a folder the
    starter's helper does not create."""
    body = ("def analyze_model_kernels():\n    models = []\n    for label in ('domain', 'category'):\n"
            "        path = os.path.join('experiments', FLAGS.label_type + '_runs', label, 'best_model.pt')\n"
            "        net = AlexNet({'num_classes': LABEL_SIZE[label]})\n"
            "        net.load_state_dict(torch.load(path))\n        models.append(net)\n"
            "    for label, net in zip(('domain', 'category'), models):\n"
            "        for i, m in enumerate(net.features):\n            if isinstance(m, nn.Conv2d):\n"
            "                draw(f'{label}-{i}', m.weight, saving_prefix='figures')\n")
    source = mutate(plain_source(), (ANALYZE, body),
                    ("def visualize_kernels(", "def draw(*a, **k):\n    return visualize_kernels(*a, **k)\n\n\n"
                                               "def visualize_kernels("),
                    ("    os.makedirs(saving_prefix, exist_ok=True)\n", ""))
    checks = by_id(grade(write_submission(tmp_path, source), "kernels.*"))
    calls, images = checks["kernels.calls"], checks["kernels.images"]
    assert calls.passed and images.passed, (calls.message, images.message)
    assert "Each of its 2 torch.load calls got that checkpoint." in calls.message
    assert "Loaded into a model with other output sizes, classifier.6.weight, classifier.6.bias kept" in calls.message
    assert "The folder figures did not exist; the grader created it, as you did when you ran it." in images.message


# ----------------------------------------------------------------------------- Part D, graded

def writer_book(body: str, constants: str = "") -> list[dict]:
    book = cells()
    index = next(i for i, c in enumerate(book) if "def shakespeare_writer" in "".join(c["source"]))
    book[index]["source"] = body
    if constants:
        book.insert(index, code_cell(constants))
    return book


QUADRATIC = """def shakespeare_writer(state_dict, start_string):
    vocabulary = state_dict['vocabulary']
    index = {ch: i for i, ch in enumerate(vocabulary)}
    model = SentenceGeneration(len(vocabulary), EMBEDDING_DIM, GRUCell, HIDDEN_SIZE)
    model.load_state_dict(state_dict['model'])
    text = start_string
    for _ in range(NUM_CHARS):  # the whole text so far, every time
        history = torch.tensor([[index[ch] for ch in text]])
        logits, _ = model(history)
        text += vocabulary[int(sample_next_char_id(logits))]
    return text
"""


def test_a_quadratic_writer_passes_with_a_lower_length(tmp_path):
    small = "NUM_CHARS = 1000\nEMBEDDING_DIM, HIDDEN_SIZE = 16, 32  # the handout's 256 and 512 cost minutes here\n"
    report = api.grade(submit(tmp_path, writer_book(QUADRATIC, small)), "cs1678-hw3",
                       api.Options(device="cpu", only=("writer.*",)))
    checks = by_id(report)
    assert all(c.passed for c in report.checks), [c.message for c in report.checks]
    assert "(NUM_CHARS set to 120 while grading, so it runs quickly)" in checks["writer.text"].message


def test_a_writer_called_with_its_config_dict(tmp_path):
    body = QUADRATIC.replace("(state_dict, start_string):", "(state_dict, start_string, generation_length, "
                                                            "hidden_size, **kwargs):") \
        .replace("HIDDEN_SIZE)", "hidden_size)").replace("range(NUM_CHARS)", "range(generation_length)")
    book = writer_book(body, "settings = {'generation_length': 1000, 'hidden_size': 24, 'epochs': 10}\n")
    book.append(code_cell("print(shakespeare_writer(trained_model, 'ROMEO', **settings))"))
    checks = by_id(api.grade(submit(tmp_path, book), "cs1678-hw3", api.Options(device="cpu", only=("writer.*",))))
    assert checks["writer.text"].passed and checks["writer.seeded"].passed, checks["writer.text"].message
    assert "settings['generation_length'], generation_length set to 120" in checks["writer.text"].message


def test_a_writer_that_runs_out_of_time_says_how_far_it_got(tmp_path):
    slow = QUADRATIC.replace("    for _ in range(NUM_CHARS):", "    import time\n    for _ in range(1000):") \
        .replace("        text += vocabulary", "        time.sleep(0.5)\n        text += vocabulary")
    report = api.grade(submit(tmp_path, writer_book(slow)), "cs1678-hw3",
                       api.Options(device="cpu", only=("writer.text",), limits={"probe_seconds": 10}))
    text = by_id(report)["writer.text"]
    assert not text.passed
    assert "shakespeare_writer(...) did not finish within 10 s; by then shakespeare_writer('ROMEO') had reached " \
           in text.message
    assert " of 1,000 characters (text 1 of at most 4" in text.message


def test_the_2020_writer_reads_its_checkpoint_through_flags(tmp_path):
    """cs1699-hw5: no arguments, the path and the length from absl flags (regression)."""
    from gradekit import HERE

    report = api.grade(HERE / "submissions" / "hw5_plain", "cs1699-hw5", api.Options(device="cpu", only=("writer.*",)))
    assert all(c.passed for c in report.checks), [c.message for c in report.checks]
    assert "set to 120" not in by_id(report)["writer.text"].message  # its 100 characters are few enough

