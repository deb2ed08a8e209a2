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
    import alexnet
    import assignment2
    import resnet_cifar10

    wide = dict(depth_per_stage=(2, 2, 2, 2), widths=(64, 128, 256, 512))
    return [
        ("cs1678-hw4", "AlexNet", "AlexNet, 4 classes", lambda: alexnet.AlexNet({"num_classes": 4})),
        ("cs1678-hw4", "AlexNet", "AlexNet, 7 classes", lambda: alexnet.AlexNet({"num_classes": 7})),
        ("ece661-hw2", "ResNet20", "ResNet-20 option A", lambda: resnet_cifar10.ResNet20(shortcut="A")),
        ("ece661-hw2", "ResNet20", "ResNet-20 option B", lambda: resnet_cifar10.ResNet20(shortcut="B")),
        ("ece661-hw2", "ResNet20", "ResNet-18-wide (wrong, trains)", lambda: resnet_cifar10.ResNetCIFAR(**wide)),
        ("dl-assignment2", "LeNet5", "LeNet5, no padding", lambda: assignment2.LeNet5(padding=0)),
        ("dl-assignment2", "LeNet5", "LeNet5, padding 2", lambda: assignment2.LeNet5(padding=2)),
        ("dl-assignment2", "ResNet18", "ResNet-18", lambda: assignment2.ResNet18()),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"{'model':<34} {'rubric':<16} {'min drop':>9} {'max drop':>9} {'needed':>7} {'s/run':>6}")
    for assignment, symbol, label, build in cases():
        rubric = load_rubric(assignment)
        model_spec = rubric.model(symbol)
        training = model_spec.training or rubric.training
        drops, seconds = [], []
        for seed in range(args.seeds):
            probes.STATE.symbols["_calibrated"] = build
            started = time.monotonic()
            setting = asdict(replace(training, seed=training.seed + seed))
            classes = int(label.split(", ")[1].split()[0]) if label.startswith("AlexNet") \
                else model_spec.variants[0].num_classes
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
