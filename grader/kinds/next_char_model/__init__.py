"""A next-character model the student writes around their own cell: logits and a state, and exact
continuation from a passed state."""
from .. import Kind

KIND = Kind(
    name="next_char_model",
    checks=('forward', 'continuation'),
    verdicts="grader.kinds.next_char_model.verdicts",
    primary=("forward",),
    worker={"generation": "grader.kinds.next_char_model.probe:generation",
            "export_generation": "grader.kinds.next_char_model.export:export_generation"},
    verifier={"verify_generation": "grader.kinds.next_char_model.measure:verify"},
    results="grader.kinds.next_char_model.run",
    run="grader.kinds.next_char_model.run",
    spec="grader.kinds.next_char_model.spec",
)
