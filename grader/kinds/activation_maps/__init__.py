"""Activation maps of the student's CNN on the handout's images: the first conv layers' channel
counts are checked, and their maps drawn in the report."""
from .. import Kind

KIND = Kind(
    name="activation_maps",
    checks=("maps",),
    verdicts="grader.kinds.activation_maps.verdicts",
    worker={"activations": "grader.kinds.activation_maps.probe:activations"},
    results="grader.kinds.activation_maps.run",
    run="grader.kinds.activation_maps.run",
    spec="grader.kinds.activation_maps.spec",
    unverified="the maps are computed there, not yet from an exported graph",
)
