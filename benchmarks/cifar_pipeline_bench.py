"""Training throughput of ResNet-20 on CIFAR-sized data: the reference's fast path vs. a DataLoader.

    python benchmarks/cifar_pipeline_bench.py [--device auto|cpu|cuda] [--steps N] [--batch 128]
                                              [--workers 2] [--amp auto] [--json PATH]

Both paths train the reference ResNet-20 (reference/ece661_hw2) with the same SGD
(lr 0.1, momentum 0.9, weight decay 1e-4), batch size and number of steps, on the same
machine in one run, on generated uint8 images (no download):

  baseline  torch.utils.data.DataLoader over a Dataset of HWC uint8 numpy images with
            torchvision.transforms RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
            Normalize (the starter notebooks' pipeline), `--workers` worker processes,
            float32, default memory format, batches copied to the device each step.
  fast      gpu_pipeline: the uint8 dataset resident on the device, crop + flip of the
            whole batch on the device, channels_last, autocast per --amp ("auto": bfloat16
            or float16 on CUDA; bfloat16 on a CPU with native bfloat16, else float32).
  fast fp32 the fast path with autocast off, printed when --amp resolves to a low precision,
            to separate what the data path gains from what AMP gains.

Warm-up steps (worker start-up, kernel selection) are run first and not timed. Prints
images/second per path and the fast/baseline ratio; --json also writes the figures.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reference" / "ece661_hw2"))

import gpu_pipeline  # noqa: E402
from cifar_data import ArrayDataset  # noqa: E402
from resnet_cifar10 import ResNet20  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name or 'CPU'}, {torch.get_num_threads()} threads"


def timed(step, warmup: int, steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - started


def baseline_step_fn(images: np.ndarray, labels: np.ndarray, args, device: torch.device):
    """The starter-style loop: DataLoader + torchvision transforms, float32, NCHW."""
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(gpu_pipeline.CIFAR_MEAN, gpu_pipeline.CIFAR_STD),
    ])
    loader = DataLoader(ArrayDataset(images, labels, transform), batch_size=args.batch, shuffle=True,
                        num_workers=args.workers, drop_last=True, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0)
    torch.manual_seed(args.seed)
    model = ResNet20().to(device)
    model.train()
    optimizer = gpu_pipeline.make_optimizer(model, LR, MOMENTUM, WEIGHT_DECAY)
    batches = iter(loader)

    def step():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:  # a new epoch, as a real training loop would start
            batches = iter(loader)
            x, y = next(batches)
        x = x.to(device, non_blocking=True)  # [B, 3, 32, 32] float32
        y = y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def fast_step_fn(images: np.ndarray, labels: np.ndarray, args, device: torch.device, amp: str):
    """gpu_pipeline's training step, exactly as gpu_pipeline.train runs it."""
    torch.manual_seed(args.seed)
    model = gpu_pipeline.prepare_model(ResNet20(), device, channels_last=True)
    model.train()
    optimizer = gpu_pipeline.make_optimizer(model, LR, MOMENTUM, WEIGHT_DECAY)
    stepper = gpu_pipeline.Stepper(model, optimizer, device, gpu_pipeline.autocast_dtype(device, amp))
    data = gpu_pipeline.to_device_images(images, device)                     # [N, 3, 32, 32] uint8
    targets = torch.as_tensor(labels, dtype=torch.long, device=device)       # [N]
    normalize = gpu_pipeline.Normalizer(device, channels_last=True)
    generator = torch.Generator(device=device)
    generator.manual_seed(args.seed)
    state = {"order": torch.randperm(len(data), device=device, generator=generator), "at": 0}

    def step():
        if state["at"] + args.batch > len(data):  # a new epoch (drop_last, like the baseline)
            state["order"] = torch.randperm(len(data), device=device, generator=generator)
            state["at"] = 0
        idx = state["order"][state["at"]:state["at"] + args.batch]          # [B]
        state["at"] += args.batch
        offsets, flip = gpu_pipeline.sample_crop_flip(len(idx), device, generator=generator)
        x = normalize(gpu_pipeline.crop_flip(data[idx], offsets, flip))      # [B, 3, 32, 32] channels_last
        stepper(x, targets[idx])
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per path (default: 300 on CUDA, 40 on CPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default: 30 on CUDA, 5 on CPU)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes for the baseline")
    parser.add_argument("--images", type=int, default=10_000, help="generated training images")
    parser.add_argument("--amp", default="auto", choices=gpu_pipeline.AMP_MODES, help="the fast path's autocast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    device = gpu_pipeline.resolve_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but CUDA is not available")
    on_gpu = device.type == "cuda"
    steps = args.steps or (300 if on_gpu else 40)
    warmup = args.warmup if args.warmup is not None else (30 if on_gpu else 5)
    if args.images < args.batch:
        parser.error("--images must be at least --batch")
    amp_dtype = gpu_pipeline.autocast_dtype(device, args.amp)
    amp_name = {None: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[amp_dtype]

    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)  # [N, 32, 32, 3] HWC
    labels = rng.integers(0, 10, args.images).astype(np.int64)
    name = device_name(device)
    print(f"ResNet-20, batch {args.batch}, {steps} timed steps after {warmup} warm-up, {args.images:,} generated "
          f"images; {device} ({name}), torch {torch.__version__}", flush=True)

    paths = [("baseline", f"DataLoader ({args.workers} workers) + torchvision, float32, NCHW",
              lambda: baseline_step_fn(images, labels, args, device)),
             ("fast", f"device-resident uint8, batched crop+flip, channels_last, {amp_name}",
              lambda: fast_step_fn(images, labels, args, device, args.amp))]
    if amp_dtype is not None:
        paths.append(("fast fp32", "the fast path with autocast off",
                      lambda: fast_step_fn(images, labels, args, device, "off")))
    results = []
    for key, description, build in paths:
        seconds = timed(build(), warmup, steps, device)
        results.append({"path": key, "description": description, "seconds": seconds,
                        "seconds_per_step": seconds / steps, "images_per_second": steps * args.batch / seconds})
        print(f"  {key:<10} {results[-1]['images_per_second']:>9,.0f} images/s", flush=True)

    base = results[0]["images_per_second"]
    print(f"\n{'path':<10} {'images/s':>10} {'ms/step':>8} {'vs baseline':>12}  what")
    for r in results:
        print(f"{r['path']:<10} {r['images_per_second']:>10,.0f} {1000 * r['seconds_per_step']:>8.1f} "
              f"{r['images_per_second'] / base:>11.2f}x  {r['description']}")
    speedup = results[1]["images_per_second"] / base
    print(f"fast / baseline = {speedup:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({
            "device": str(device), "device_name": name, "torch": torch.__version__, "batch": args.batch,
            "steps": steps, "warmup": warmup, "images": args.images, "workers": args.workers,
            "amp": args.amp, "fast_autocast_dtype": amp_name, "results": results, "speedup": speedup}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
