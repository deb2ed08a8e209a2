"""Test setup for the reference solutions.

Each homework folder under reference/ is laid out like a student submission: plain
modules, no __init__.py, imported by name (`import cnn_trainer`). Put those folders on
sys.path so the tests import them the way the grader and `python cnn_trainer.py` do.
"""
import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")  # no display here; must precede pyplot's import

HERE = os.path.dirname(os.path.abspath(__file__))
# cs1699_hw5's modules have plain names (datasets, rnn_modules): keep test modules' own
# names distinct from them (test_rnn.py, test_notebooks.py).
for folder in ("cs1678_hw4", "cs1699_hw5", "cs1678_hw3", "ece661_hw2", "dl_assignment2"):
    path = os.path.join(HERE, folder)
    if path not in sys.path:
        sys.path.insert(0, path)
