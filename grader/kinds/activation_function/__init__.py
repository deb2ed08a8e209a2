"""An activation the student writes (Swish): no torch SiLU in its source or its run, and its values
and gradient equal x * sigmoid(x) on inputs the scorer draws for each grade."""
from .. import Kind

KIND = Kind(
    name="activation_function",
    checks=('source', 'values'),
    verdicts="grader.kinds.activation_function.verdicts",
    worker={"activation": "grader.kinds.activation_function.probe:activation"},
    run="grader.kinds.activation_function.run",
    spec="grader.kinds.activation_function.spec",
)
