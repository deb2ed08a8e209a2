"""A rubric's kernel-visualization task: the student's analysis draws the conv kernels of a
checkpoint the grader writes of their own model.

    [[task]]
    kind = "kernel_visualization"
    function = "analyze_model_kernels"   # the analysis, called with the checkpoint's path if it takes one
    helper = "visualize_kernels"         # the drawing function it must call, once per conv layer
    model = "AlexNet"                    # the class the checkpoint is made of
    num_classes = 4                      # ... built with this many classes
    # absl flags set before the call; "{checkpoint}" and "{model}" are filled in
    flags = { model_checkpoint = "{checkpoint}", label_type = "domain", model_type = "{model}" }
    points = { calls = 4, images = 2 }
"""
from __future__ import annotations

CHECK_KINDS = ("calls", "images")
PARAMS = {"function": "name", "helper": "name", "model": "name", "num_classes": "int", "flags": "table?"}
DEFAULT_FLAGS = {"model_checkpoint": "{checkpoint}"}


def check_name(task, kind: str) -> str:
    fn, model = task.params["function"], task.params["model"]
    return {"calls": f"{fn} loads the checkpoint and visualizes every conv layer of {model}",
            "images": f"{fn} saves the kernel images"}[kind]
