"""A rubric's text-generator task: the student's writer, run on a model the grader crafts.

    [[task]]
    kind = "text_generator"
    function = "shakespeare_writer"   # the writer, called as the submission calls it
    model = "SentenceGeneration"      # the class it builds and loads the checkpoint into
    length = 1000                     # characters the handout asks for
    start = ["ROMEO", "JULIET"]       # the start strings, each generated from
    points = { text = 1.5, sampling = 2, seeded = 1 }
"""
from __future__ import annotations

CHECK_KINDS = ("text", "sampling", "seeded")
PARAMS = {"function": "name", "model": "name", "length": "int", "start": "strings"}

# The Shakespeare corpus's 65 characters, as the starter's vocabulary orders them.
VOCABULARY = sorted(set("\n !&',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
MAX_TEXT = 20_000  # characters of each text sent back: the handout asks for 1,000


def check_name(task, kind: str) -> str:
    fn = task.params["function"]
    return {"text": f"{fn} returns text that starts with the start string, of the right length",
            "sampling": f"{fn} samples each character from the model's distribution",
            "seeded": f"{fn} is reproducible under a seed"}[kind]
