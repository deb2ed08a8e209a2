"""The fast CIFAR-10 training path used by the ECE661 HW2 references, on GPU or CPU.

Why not the starter's DataLoader: with 32x32 images the model step is small, so per-image
PIL work in worker processes (crop, flip, ToTensor, Normalize) and host-to-device copies
become the bottleneck. Here the whole uint8 dataset lives on the device once, as
[N, 3, 32, 32] (45K images are 138 MB), and each batch is made there:

  1. index a shuffled batch of uint8 images;
  2. augment the whole batch at once: zero-pad 4 pixels, then gather each image's 32x32
     window at its own random offset; a per-sample flip mask reverses the column index
     (torch.where) inside the same gather, so flipping costs nothing extra;
  3. convert to float, normalise with the CIFAR-10 mean/std, in channels_last layout.

The model runs in channels_last under torch.autocast (bfloat16 where the GPU has it, else
float16 with a GradScaler). On a CPU, amp="auto" uses bfloat16 only where the CPU computes
it natively (AVX512-BF16 or AMX): on our 2-core Xeon with AMX a ResNet-20 training step
ran about 1.8x faster in bfloat16 than in float32, while on CPUs without it bfloat16 is
emulated and generally slower, so "auto" leaves it off there. amp="off"/"bf16"/"fp16" force a choice.

Learning rate follows the starter's rule, applied at the start of epoch i:
`if i % DECAY_EPOCHS == 0 and i != 0: lr *= DECAY`, i.e. lr_i = lr_0 * DECAY**(i // DECAY_EPOCHS).
"""
import os
import time
from typing import Callable, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # the starter's values, pixels in [0, 1]
CIFAR_STD = (0.2023, 0.1994, 0.2010)
PADDING = 4
AMP_MODES = ("auto", "bf16", "fp16", "off")

Images = Union[np.ndarray, torch.Tensor]


def resolve_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Without it, bfloat16 autocast is emulated and slower than float32, so "auto" stays off.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so guarded
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(device: torch.device, amp: str = "auto") -> Optional[torch.dtype]:
    """The autocast dtype for `amp` on this device, or None for plain float32."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, not {amp!r}")
    if amp == "off":
        return None
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(device_type: str, amp_dtype: Optional[torch.dtype]):
    """torch.autocast at amp_dtype, or a disabled one when amp_dtype is None."""
    return torch.autocast(device_type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None)


def learning_rate(epoch: int, initial_lr: float, decay_epochs: Optional[int], decay: float) -> float:
    """The rate during epoch `epoch` (0-based) under the starter's step-decay rule."""
    if not decay_epochs:
        return initial_lr
    return initial_lr * decay ** (epoch // decay_epochs)


def to_device_images(images: Images, device: torch.device) -> torch.Tensor:
    """numpy uint8 [N, 32, 32, 3] (HWC, as stored) or a uint8 [N, 3, 32, 32] tensor -> device NCHW."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [N, H, W, 3], got {images.dtype} {list(images.shape)}")
        images = torch.from_numpy(images).permute(0, 3, 1, 2)  # [N, 3, H, W], a view
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected uint8 [N, 3, H, W], got {images.dtype} {list(images.shape)}")
    return images.contiguous().to(device)  # [N, 3, H, W]


def sample_crop_flip(batch: int, device: torch.device, padding: int = PADDING,
                     generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample window offsets (dy, dx) uniform in [0, 2 * padding] and a 50% flip mask."""
    offsets = torch.randint(0, 2 * padding + 1, (batch, 2), device=device, generator=generator)  # [B, 2]
    flip = torch.rand(batch, device=device, generator=generator) < 0.5                         # [B]
    return offsets, flip


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flip: torch.Tensor,
              padding: int = PADDING) -> torch.Tensor:
    """Batched RandomCrop(H, padding) + RandomHorizontalFlip with the given parameters.

    images [B, C, H, W] (any dtype); offsets [B, 2] window corner (dy, dx) in the padded
    image; flip [B] bool. Output [B, C, H, W]: image b's window, mirrored where flip[b].
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))     # [B, C, H+2p, W+2p], zeros
    rows = offsets[:, :1] + torch.arange(h, device=images.device)     # [B, H]
    ar = torch.arange(w, device=images.device)
    cols = offsets[:, 1:] + torch.where(flip[:, None], w - 1 - ar, ar)  # [B, W], reversed if flipped
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))  # [B, C, H, W+2p]
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))                 # [B, C, H, W]


class Normalizer:
    """uint8 [B, 3, H, W] -> float32 (x / 255 - mean) / std, channels_last if asked."""

    def __init__(self, device: torch.device, channels_last: bool = True,
                 mean: tuple[float, ...] = CIFAR_MEAN, std: tuple[float, ...] = CIFAR_STD):
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)     # [1, 3, 1, 1]
        mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)   # [1, 3, 1, 1]
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = mean_t / std_t
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.contiguous(memory_format=self.memory_format).float()  # [B, 3, H, W], layout kept
        return x.mul_(self.scale).sub_(self.shift)


class Stepper:
    """One SGD step on a batch under autocast (and a GradScaler for float16 on CUDA)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 amp_dtype: Optional[torch.dtype],
                 penalty: Optional[Callable[[nn.Module], torch.Tensor]] = None):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.amp_dtype, self.penalty = amp_dtype, penalty
        use_scaler = amp_dtype == torch.float16 and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (summed loss, number correct) as device tensors, so nothing waits for them."""
        with autocast(self.device.type, self.amp_dtype):
            logits = self.model(x)                 # [B, classes]
            loss = F.cross_entropy(logits, y)      # autocast runs it in float32
            if self.penalty is not None:
                loss = loss + self.penalty(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        correct = (logits.argmax(1) == y).sum()
        return loss.detach() * len(y), correct


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.9,
                   weight_decay: float = 1e-4) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool = True) -> nn.Module:
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    return model.to(device=device, memory_format=memory_format)


@torch.no_grad()
def _logits_batches(model: nn.Module, images: torch.Tensor, normalize: Normalizer,
                    batch_size: int, amp_dtype: Optional[torch.dtype]):
    model.eval()
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size])  # [b, 3, 32, 32] float
        with autocast(images.device.type, amp_dtype):
            logits = model(x)  # [b, classes]
        yield start, logits


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize: Normalizer,
             batch_size: int = 500, amp_dtype: Optional[torch.dtype] = None) -> float:
    """Accuracy on device-resident uint8 images [N, 3, 32, 32] and labels [N]."""
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for start, logits in _logits_batches(model, images, normalize, batch_size, amp_dtype):
        correct += (logits.argmax(1) == labels[start:start + len(logits)]).sum()
    return correct.item() / max(len(images), 1)


def predict(model: nn.Module, images: Images, batch_size: int = 500, device="auto",
            amp: str = "auto", channels_last: bool = True) -> list[int]:
    """Predicted class per image, in input order (for predictions.csv)."""
    device = resolve_device(device)
    model = prepare_model(model, device, channels_last)
    data = to_device_images(images, device)
    normalize = Normalizer(device, channels_last)
    chunks = [logits.argmax(1) for _, logits in
              _logits_batches(model, data, normalize, batch_size, autocast_dtype(device, amp))]
    return torch.cat(chunks).tolist() if chunks else []


def write_predictions(path: str, labels) -> None:
    """predictions.csv as the course's save_test_predictions writes it: `Id,Label`, ids 0..N-1."""
    with open(path, "w", newline="") as f:
        f.write("Id,Label\n")
        for i, label in enumerate(labels):
            f.write(f"{i},{int(label)}\n")


def train(model: nn.Module, train_images: Images, train_labels, val_images: Images, val_labels, *,
          epochs: int, batch_size: int = 128, eval_batch_size: int = 500, lr: float = 0.1,
          momentum: float = 0.9, weight_decay: float = 1e-4, decay_epochs: Optional[int] = None,
          decay: float = 1.0, augment: bool = True, device="auto", amp: str = "auto",
          channels_last: bool = True, penalty: Optional[Callable[[nn.Module], torch.Tensor]] = None,
          checkpoint_path: Optional[str] = None, seed: int = 0,
          log: Optional[Callable[[str], None]] = print) -> dict:
    """SGD with momentum on the device-resident pipeline; returns the per-epoch history.

    History keys: train_loss, train_acc (on the augmented batches, as the starter counts
    them), val_acc, lr, seconds (lists, one entry per epoch) and best_val_acc. When
    checkpoint_path is given, the best epoch is saved there in the starter's format
    {'state_dict', 'epoch', 'lr'}. `penalty(model)` is added to the loss (Lab 2's L1).
    """
    device = resolve_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = prepare_model(model, device, channels_last)
    images = to_device_images(train_images, device)                          # [N, 3, 32, 32] uint8
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.long).to(device)  # [N]
    v_images = to_device_images(val_images, device)
    v_labels = torch.as_tensor(np.asarray(val_labels), dtype=torch.long).to(device)
    normalize = Normalizer(device, channels_last)
    amp_dtype = autocast_dtype(device, amp)
    optimizer = make_optimizer(model, lr, momentum, weight_decay)
    step = Stepper(model, optimizer, device, amp_dtype, penalty)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    history = {"train_loss": [], "train_acc": [], "val_acc": [], "lr": [], "seconds": [], "best_val_acc": 0.0}
    best = -1.0
    n = len(images)
    for epoch in range(epochs):
        started = time.perf_counter()
        rate = learning_rate(epoch, lr, decay_epochs, decay)
        for group in optimizer.param_groups:
            group["lr"] = rate
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        order = torch.randperm(n, device=device, generator=generator)  # [N]
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]                       # [B]
            batch = images[idx]                                         # [B, 3, 32, 32] uint8
            if augment:
                offsets, flip = sample_crop_flip(len(idx), device, generator=generator)
                batch = crop_flip(batch, offsets, flip)
            batch_loss, batch_correct = step(normalize(batch), labels[idx])
            loss_sum += batch_loss
            correct += batch_correct
        val_acc = evaluate(model, v_images, v_labels, normalize, eval_batch_size, amp_dtype)
        history["train_loss"].append(loss_sum.item() / n)
        history["train_acc"].append(correct.item() / n)
        history["val_acc"].append(val_acc)
        history["lr"].append(rate)
        history["seconds"].append(time.perf_counter() - started)
        if val_acc > best:
            best = val_acc
            if checkpoint_path:
                os.makedirs(os.path.dirname(checkpoint_path) or ".", exist_ok=True)
                torch.save({"state_dict": model.state_dict(), "epoch": epoch, "lr": rate}, checkpoint_path)
        if log is not None:
            log(f"epoch {epoch:3d}  lr {rate:.4g}  train loss {history['train_loss'][-1]:.4f}  "
                f"train acc {history['train_acc'][-1]:.4f}  val acc {val_acc:.4f}  "
                f"({history['seconds'][-1]:.1f}s)")
    history["best_val_acc"] = max(best, 0.0)
    return history
