"""A rubric's activation-maps task: the student's CNN on the handout's images, its first conv layers
drawn in the report.

    [[task]]
    kind = "activation_maps"
    model = "LeNet5"                    # a [[model]] of the rubric, built as its first variant
    images = ["dog.jpg", "cat.jpg"]      # course inputs (a generated stand-in when missing)
    channels = [32, 64]                  # maps the first conv layers must give
    points = { maps = 1 }
"""
from __future__ import annotations

CHECK_KINDS = ("maps",)
PARAMS = {"model": "name", "images": "strings", "channels": "ints"}


def check_name(task, kind: str) -> str:
    p = task.params
    ch = " and ".join(str(c) for c in p["channels"])
    return f"{p['model']}'s first two conv layers give {ch} activation maps on the handout's images (drawn in the report)"
