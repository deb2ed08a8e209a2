"""A weight penalty the student writes (L1): its gradient, on weights the scorer draws for each
grade, is strength * sign(w)."""
from .. import Kind

KIND = Kind(
    name="weight_penalty",
    checks=('gradient',),
    verdicts="grader.kinds.weight_penalty.verdicts",
    worker={"penalty": "grader.kinds.weight_penalty.probe:penalty"},
    run="grader.kinds.weight_penalty.run",
    spec="grader.kinds.weight_penalty.spec",
)
