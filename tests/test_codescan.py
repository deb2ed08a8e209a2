"""Finding training-loop techniques in source the grader never runs: parsed, with the line."""
import ast
import json

import pytest

from grader import codescan


def scan(find, text: str, where: str = "train.py"):
    return find([(where, ast.parse(text), text.splitlines())])


@pytest.mark.parametrize("text, line", [
    ("l1 = sum(p.abs().sum() for p in model.parameters())", 1),
    ("for param in net.parameters():\n    l1 += torch.sum(torch.abs(param))", 2),
    ("reg = 0\nfor W in model.parameters():\n    reg = reg + W.norm(1)", 3),
    ("loss = loss + lam * sum(torch.norm(w, p=1) for n, w in net.named_parameters())", 1),
    ("penalty = lam * (net.fc1.weight.abs().sum() + net.fc2.weight.abs().sum())", 1),
])
def test_l1_penalties_are_found_with_their_line(text, line):
    found = scan(codescan.find_l1_penalty, text)
    assert [f.where for f in found] == [f"train.py line {line}"]
    assert found[0].what == "an L1 penalty over the weights"


@pytest.mark.parametrize("text", [
    "loss = loss + lam * sum((w ** 2).sum() for w in net.parameters())",  # L2
    "x = y.abs()",  # not over weights
    "n = torch.norm(w, 2)",
])
def test_other_code_is_not_an_l1_penalty(text):
    assert scan(codescan.find_l1_penalty, text) == []


@pytest.mark.parametrize("text, what", [
    ("sched = optim.lr_scheduler.StepLR(optimizer, DECAY_EPOCHS, DECAY)", "a StepLR scheduler"),
    ("s = torch.optim.lr_scheduler.MultiStepLR(opt, [60, 120], 0.1)", "a MultiStepLR scheduler"),
    ("for g in optimizer.param_groups:\n    g['lr'] *= DECAY", "the optimizer's learning rate set in its param groups"),
    ("optimizer.param_groups[0]['lr'] = current_learning_rate", "the optimizer's learning rate set in its param groups"),
])
def test_learning_rate_decay_is_found(text, what):
    assert [f.what for f in scan(codescan.find_lr_decay, text)] == [what]


def test_a_plain_learning_rate_variable_is_not_a_decay():
    assert scan(codescan.find_lr_decay, "lr = lr * DECAY\nprint(lr)") == []


def test_notebook_cells_are_read_with_shell_lines_skipped(tmp_path):
    cells = ["!pip install torchsummary\nimport torch", "%matplotlib inline\nfor g in opt.param_groups:\n    g['lr'] = 0.1"]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# title"}]
          + [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c} for c in cells]}
    (tmp_path / "lab.ipynb").write_text(json.dumps(nb))
    (tmp_path / "broken.py").write_text("def (:\n")
    code = codescan.sources(tmp_path, ["lab.ipynb", "broken.py", "notes.txt"])
    assert [where for where, _, _ in code] == ["lab.ipynb cell 2", "lab.ipynb cell 3"]
    assert [f.where for f in codescan.find_lr_decay(code)] == ["lab.ipynb cell 3, line 3"]
