"""Stand-in for google.colab, so notebooks written for Colab import when graded.

Only what homework code touches at import time: drive.mount and files.
"""
from . import drive, files  # noqa: F401
