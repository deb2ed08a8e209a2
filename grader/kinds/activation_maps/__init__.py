"""Activation maps of the student's CNN on the handout's images: the first conv layers' channel
counts are checked, and their maps drawn in the report. The verifier draws them from the
exported model (`measure`); the worker draws them only where export fails (`probe`)."""
from .. import Kind

KIND = Kind(
    name="activation_maps",
    checks=("maps",),
    verdicts="grader.kinds.activation_maps.verdicts",
    worker={"activations": "grader.kinds.activation_maps.probe:activations"},
    verifier={"verify_maps": "grader.kinds.activation_maps.measure:verify_maps"},
    results="grader.kinds.activation_maps.run",
    run="grader.kinds.activation_maps.run",
    spec="grader.kinds.activation_maps.spec",
)
