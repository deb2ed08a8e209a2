"""The handout's character GRU (embedding 256, hidden 512) on the Romeo and Juliet excerpt.

    python benchmarks/shakespeare_bench.py [--epochs 10] [--windows-per-epoch N] [--device auto]

Trains the reference SentenceGeneration + GRUCell with the reference training loop (history
100, batch 2048, Adam 1e-3, gradient clip 1.0) and prints the mean training loss and the
seconds of each epoch. The handout's target is a training loss of 1.2 within 10 epochs.

A full epoch is one window per character (about 141,000 windows of 100 steps each): hours
on a 2-core CPU. On the CPU the default therefore trains on a random subset of windows per
epoch and also prints what a full epoch would take at the measured rate; on a GPU it trains
on every window.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reference" / "cs1699_hw5"))

from datasets import ShakespeareDataset  # noqa: E402
from sentence_generation import generate, train_language_model  # noqa: E402

TEXT = ROOT / "reference" / "data" / "shakespeare_excerpt.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--windows-per-epoch", type=int, default=None,
                        help="windows per epoch (default: all on a GPU, 16,384 on the CPU)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    dataset = ShakespeareDataset(str(TEXT), history_length=100)
    windows = args.windows_per_epoch or (len(dataset) if device.type == "cuda" else 16_384)
    windows = min(windows, len(dataset))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"{len(dataset.ids):,} characters, vocabulary {len(dataset.get_vocabulary())}, {len(dataset):,} windows; "
          f"training on {windows:,} per epoch on {device} ({name}), torch {torch.__version__}", flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        history = train_language_model(dataset, "gru", embedding_dim=256, hidden_size=512, batch_size=2048,
                                       learning_rate=1e-3, epochs=args.epochs, experiment_dir=runs,
                                       device=device, windows_per_epoch=windows, seed=args.seed)
        sample = generate(history["model"], dataset.get_vocabulary(), "ROMEO", 200, device)
    total = time.perf_counter() - started

    full_epoch = [s * len(dataset) / windows for s in history["epoch_seconds"]]
    print(f"{'epoch':>5} {'loss':>7} {'seconds':>8} {'full epoch (est.)':>18}")
    for i, (loss, seconds, full) in enumerate(zip(history["loss"], history["epoch_seconds"], full_epoch)):
        print(f"{i + 1:>5} {loss:>7.3f} {seconds:>8.1f} {full:>17.0f}s")
    reached = next((i + 1 for i, loss in enumerate(history["loss"]) if loss <= 1.2), None)
    print(f"loss 1.2 {'reached at epoch ' + str(reached) if reached else 'not reached'} "
          f"({windows:,} windows per epoch); {total:.0f} s in all")
    print("sample:\n" + sample)
    if args.json:
        args.json.write_text(json.dumps({
            "device": str(device), "device_name": name, "torch": torch.__version__, "windows_per_epoch": windows,
            "windows_in_text": len(dataset), "loss": history["loss"], "epoch_seconds": history["epoch_seconds"],
            "full_epoch_seconds_estimate": full_epoch, "reached_1_2_at_epoch": reached, "total_seconds": total,
            "sample": sample}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
