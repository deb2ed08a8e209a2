"""dlgrade: rubric-driven grading of PyTorch deep-learning homework.

This package's top level must stay light: the sandboxed worker imports
`grader.worker`, and the scoring process never imports torch.
"""

__version__ = "0.1.0"
