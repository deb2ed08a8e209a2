"""A text generator the student writes (the Shakespeare writer): run on a model whose output layer
gives two characters, drawn by the scorer for each grade, all the probability; the scorer reads
the texts that come back."""
from .. import Kind

KIND = Kind(
    name="text_generator",
    checks=("text", "sampling", "seeded"),
    verdicts="grader.kinds.text_generator.verdicts",
    primary=("text",),
    worker={"writer": "grader.kinds.text_generator.probe:writer"},
    run="grader.kinds.text_generator.run",
    spec="grader.kinds.text_generator.spec",
)
