"""Calibrate the training smoke test of the CNN rubrics: over several seeds, how far the
sign-descent steps lower the loss of the reference models and of wrong-but-working ones
(a ResNet-18-wide "ResNet-20"). A model passes when the loss falls by the rubric's
min_drop; a good setting passes every reference on every seed with margin.

    python benchmarks/smoke_calibration.py [--seeds 5]

Runs in this process on trusted code (the references), through the path grading takes:
the worker's export of the model, then the verifier's measurement of that artefact.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for folder in ("ece661_hw2", "dl_assignment2", "cs1678_hw4"):
    sys.path.insert(0, str(ROOT / "reference" / folder))

from grader.rubric import load_rubric  # noqa: E402
from grader.verifier import measure  # noqa: E402
from grader.worker import export, probes  # noqa: E402


def cases():
    """(rubric, symbol, label, classes, build): every model a CNN rubric trains, at each class count."""
    import alexnet
    import assignment2
    import resnet_cifar10

    wide = dict(depth_per_stage=(2, 2, 2, 2), widths=(64, 128, 256, 512))
    found = [(rubric, name, f"{name}, {n} classes", n, lambda name=name, n=n: getattr(alexnet, name)({"num_classes": n}))
             for rubric, names in (("cs1678-hw4", ("AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling")),
                                   ("cs1678-hw4-extended", ("AlexNetTiny", "AlexNetDilation")))
             for name in names for n in (4, 7)]
    return found + [
        ("ece661-hw2", "ResNet20", "ResNet-20 option A", 10, lambda: resnet_cifar10.ResNet20(shortcut="A")),
        ("ece661-hw2", "ResNet20", "ResNet-20 option B", 10, lambda: resnet_cifar10.ResNet20(shortcut="B")),
        ("ece661-hw2", "ResNet20", "ResNet-18-wide (wrong, trains)", 10, lambda: resnet_cifar10.ResNetCIFAR(**wide)),
        ("dl-assignment2", "LeNet5", "LeNet5, no padding", 10, lambda: assignment2.LeNet5(padding=0)),
        ("dl-assignment2", "LeNet5", "LeNet5, padding 2", 10, lambda: assignment2.LeNet5(padding=2)),
        ("dl-assignment2", "ResNet18", "ResNet-18", 10, lambda: assignment2.ResNet18()),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", action="append", default=[], help="rubric ids or model names to calibrate")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"{'model':<34} {'rubric':<16} {'min drop':>9} {'max drop':>9} {'needed':>7} {'s/run':>6}")
    only = [o.lower() for o in args.only]
    for assignment, symbol, label, classes, build in cases():
        if only and not any(o in f"{assignment} {label}".lower() for o in only):
            continue
        rubric = load_rubric(assignment)
        model_spec = rubric.model(symbol)
        training = model_spec.training or rubric.training
        drops, seconds = [], []
        for seed in range(args.seeds):
            probes.STATE.symbols["_calibrated"] = build
            started = time.monotonic()
            setting = asdict(replace(training, seed=training.seed + seed))
            with tempfile.TemporaryDirectory() as folder:
                made = export.export("_calibrated", [], {}, list(model_spec.input), training.batch, setting["seed"], folder)
                assert made["error"] is None, made["error"]
                res = measure.verify(folder, classes, "cpu", setting, 4000)["behaviour"]
            seconds.append(time.monotonic() - started)
            tr = res["training"]
            drops.append((tr["before"] - tr["after"]) / tr["before"])
        print(f"{label:<34} {assignment:<16} {min(drops):>9.1%} {max(drops):>9.1%} {training.min_drop:>7.0%} "
              f"{sum(seconds) / len(seconds):>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
