"""CS1678 HW4 reference: train AlexNet variants on PACS and visualise their kernels.

  python cnn_trainer.py --task_type=training --label_type=domain --experiment_name=demo
  python cnn_trainer.py --task_type=analysis --model_checkpoint=demo/best_model.pt

The models live in alexnet.py and the dataset in pacs.py (this folder must be on sys.path;
running the script from here does that). Nothing runs at import time.
"""
import copy
import os

import matplotlib.pyplot as plt
import seaborn as sns
import torch
import torch.nn as nn
from absl import app, flags
from skimage import io  # noqa: F401  (the starter's image reader; pacs.PACSDataset uses it)
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from torchvision import transforms  # noqa: F401  (pacs.default_transform builds the pipeline)
from tqdm import tqdm

from alexnet import AlexNet, AlexNetAvgPooling, AlexNetDilation, AlexNetLargeKernel, AlexNetTiny
from pacs import PACSDataset

MODELS = {cls.__name__: cls for cls in
          (AlexNet, AlexNetLargeKernel, AlexNetAvgPooling, AlexNetTiny, AlexNetDilation)}

FLAGS = flags.FLAGS
flags.DEFINE_enum('task_type', 'training', ['training', 'analysis'],
                  'Train a model, or visualise the kernels of a trained one.')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_float('weight_decay', 0.0, 'Adam weight decay (L2 penalty).')
flags.DEFINE_integer('batch_size', 128, 'Images per training and validation batch.')
flags.DEFINE_integer('epochs', 100, 'Passes over the training split.')
flags.DEFINE_string('experiment_name', 'exp', 'Folder for best_model.pt and TensorBoard logs.')
flags.DEFINE_enum('label_type', 'domain', ['domain', 'category'],
                  'Predict the image domain (4 classes) or its object category (7).')
flags.DEFINE_string('model_checkpoint', '', 'Checkpoint whose kernels to visualise (analysis).')
flags.DEFINE_string('dataset_root', 'pacs_dataset', 'Folder holding the train/ and val/ splits.')
flags.DEFINE_enum('model_type', 'AlexNet', list(MODELS), 'Which network to build.')

LABEL_SIZE = {'domain': 4, 'category': 7}


def visualize_kernels(kernel_name, kernel_weight, max_in_channels=12, max_out_channels=12,
                      saving_prefix='kernel'):
    """Save conv kernels as a grid: row o, column i shows kernel_weight[o, i].

    kernel_weight is a conv weight [out, in, kh, kw]; only the first max_out_channels rows
    and max_in_channels columns are drawn. Writes <saving_prefix>/<kernel_name lower>.png
    and returns that path.
    """
    weight = kernel_weight.detach().float().cpu()
    n_out, n_in = min(weight.shape[0], max_out_channels), min(weight.shape[1], max_in_channels)
    weight = weight[:n_out, :n_in]  # [n_out, n_in, kh, kw]
    kh, kw = weight.shape[2:]

    # One mosaic with a NaN gutter between kernels: seaborn leaves NaN cells blank, and a
    # single heatmap draws far faster than n_out * n_in subplots.
    mosaic = torch.full((n_out * (kh + 1) - 1, n_in * (kw + 1) - 1), float('nan'))
    for o in range(n_out):
        for i in range(n_in):
            mosaic[o * (kh + 1):o * (kh + 1) + kh, i * (kw + 1):i * (kw + 1) + kw] = weight[o, i]
    # a colour scale symmetric about 0, so positive and negative weights read alike
    vmax = max(weight.abs().max().item(), 1e-12)

    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * n_in, 0.5 * n_out + 0.5))
    sns.heatmap(mosaic.numpy(), ax=ax, cmap='gray', vmin=-vmax, vmax=vmax, square=True,
                xticklabels=False, yticklabels=False, cbar=True)
    ax.set_xticks([i * (kw + 1) + kw / 2 for i in range(n_in)], [str(i) for i in range(n_in)])
    ax.set_yticks([o * (kh + 1) + kh / 2 for o in range(n_out)], [str(o) for o in range(n_out)])
    ax.set_xlabel('input channel')
    ax.set_ylabel('output channel')
    ax.set_title(f'{kernel_name} {list(kernel_weight.shape)}')

    os.makedirs(saving_prefix, exist_ok=True)
    path = os.path.join(saving_prefix, f'{kernel_name.lower()}.png')
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)  # figures are global state in pyplot: free each one
    return path


def analyze_model_kernels():
    """Part C: draw the 5 conv layers' kernels of the model in FLAGS.model_checkpoint."""
    checkpoint = torch.load(FLAGS.model_checkpoint, map_location='cpu', weights_only=True)
    model = MODELS[FLAGS.model_type]({'num_classes': LABEL_SIZE[FLAGS.label_type]})
    model.load_state_dict(checkpoint)  # the bare state_dict model_training saved
    # Conv2d-<n> follows the handout tables' numbering: n = index in `features` + 1.
    for index, layer in enumerate(model.features):
        if isinstance(layer, nn.Conv2d):
            visualize_kernels(f'Conv2d-{index + 1}', layer.weight)


def evaluate(model, loader, criterion, device):
    """Mean loss and accuracy over a loader, in eval mode (dropout off)."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)  # [B, num_classes]
            total_loss += criterion(logits, labels).item() * labels.numel()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
    return total_loss / max(seen, 1), correct / max(seen, 1)


def model_training():
    """Train FLAGS.model_type; keep <experiment_name>/best_model.pt at the best val accuracy."""
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    num_classes = LABEL_SIZE[FLAGS.label_type]
    train_set = PACSDataset(FLAGS.dataset_root, FLAGS.label_type, is_training=True)
    val_set = PACSDataset(FLAGS.dataset_root, FLAGS.label_type, is_training=False)
    if len(train_set.label_list) != num_classes:
        raise ValueError(f'{FLAGS.dataset_root} has labels {train_set.label_list}; '
                         f'expected {num_classes} for label_type={FLAGS.label_type}')

    # workers only pay off when a GPU waits for data; on CPU they compete with the model
    workers = min(4, os.cpu_count() or 1) if device.type == 'cuda' else 0
    loader_args = dict(batch_size=FLAGS.batch_size, num_workers=workers,
                       pin_memory=device.type == 'cuda')
    train_loader = DataLoader(train_set, shuffle=True, **loader_args)
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)

    model = MODELS[FLAGS.model_type]({'num_classes': num_classes}).to(device)
    print(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate,
                                 weight_decay=FLAGS.weight_decay)
    criterion = nn.CrossEntropyLoss()

    os.makedirs(FLAGS.experiment_name, exist_ok=True)
    checkpoint_path = os.path.join(FLAGS.experiment_name, 'best_model.pt')
    writer = SummaryWriter(log_dir=FLAGS.experiment_name)
    best_accuracy, step = -1.0, 0  # -1: the first epoch always writes a checkpoint
    for epoch in tqdm(range(FLAGS.epochs), desc='epochs'):
        model.train()
        for images, labels in tqdm(train_loader, desc=f'epoch {epoch}', leave=False):
            images, labels = images.to(device), labels.to(device)
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            writer.add_scalar('train/loss', loss.item(), step)
            step += 1

        val_loss, val_accuracy = evaluate(model, val_loader, criterion, device)
        writer.add_scalar('val/loss', val_loss, epoch)
        writer.add_scalar('val/accuracy', val_accuracy, epoch)
        if val_accuracy > best_accuracy:
            best_accuracy = val_accuracy
            # as the course starter saves it: the bare state_dict of the best epoch
            best_model = copy.deepcopy(model.state_dict())
            torch.save(best_model, checkpoint_path)
        tqdm.write(f'epoch {epoch}: val loss {val_loss:.4f}, val accuracy {val_accuracy:.4f} '
                   f'(best {best_accuracy:.4f})')
    writer.close()
    return best_accuracy


def main(unused_argv):
    if FLAGS.task_type == 'training':
        model_training()
    elif FLAGS.task_type == 'analysis':
        analyze_model_kernels()
    else:
        raise ValueError(f'unknown task_type {FLAGS.task_type}')


if __name__ == '__main__':
    app.run(main)
