"""A kernel visualization the student writes (Part C's analysis): run on a checkpoint whose conv
weights come from a key the scorer draws for each grade; the scorer matches what reached the
drawing helper against those weights, and shows the PNGs the code saved."""
from .. import Kind

KIND = Kind(
    name="kernel_visualization",
    checks=("calls", "images"),
    verdicts="grader.kinds.kernel_visualization.verdicts",
    primary=("calls",),
    worker={"kernels": "grader.kinds.kernel_visualization.probe:kernels"},
    run="grader.kinds.kernel_visualization.run",
    spec="grader.kinds.kernel_visualization.spec",
)
