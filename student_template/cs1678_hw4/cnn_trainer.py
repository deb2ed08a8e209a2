"""CS1678 HW4 starter: AlexNet and variants on PACS.

Fill in the parts marked TODO (the model classes and analyze_model_kernels); everything
else is given. Usage from a shell:

  python cnn_trainer.py --task_type=training --label_type=domain --learning_rate=0.001 \
      --batch_size=128 --experiment_name=demo
  python cnn_trainer.py --task_type=analysis --label_type=domain \
      --model_checkpoint=demo/best_model.pt

The dataset is expected under ./pacs_dataset/{train,val}/<domain>/<category>/<image>.
"""
import copy
import os

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn as nn
from absl import app, flags
from skimage import io
from torch.utils.data import DataLoader, Dataset
from torch.utils.tensorboard import SummaryWriter
from torchvision import transforms
from tqdm import tqdm

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
flags.DEFINE_enum('model_type', 'AlexNet',
                  ['AlexNet', 'AlexNetLargeKernel', 'AlexNetAvgPooling', 'AlexNetTiny',
                   'AlexNetDilation'],
                  'Which network to build.')

LABEL_SIZE = {'domain': 4, 'category': 7}

# Per-channel statistics of the PACS training images.
PACS_MEAN = (0.7659, 0.7463, 0.7173)
PACS_STD = (0.3089, 0.3181, 0.3470)


class PACSDataset(Dataset):
    """One split of PACS; each item is (image tensor [3, 227, 227], label index).

    Labels index the sorted domain names (label_type='domain') or the sorted category
    names (label_type='category').
    """

    def __init__(self, root_dir, label_type='domain', is_training=False, transform=None):
        if label_type not in ('domain', 'category'):
            raise ValueError(f"label_type must be 'domain' or 'category', not {label_type!r}")
        self.label_type = label_type
        self.is_training = is_training
        self.split_dir = os.path.join(root_dir, 'train' if is_training else 'val')
        if not os.path.isdir(self.split_dir):
            raise FileNotFoundError(f'no PACS split folder at {self.split_dir}')
        if transform is None:
            steps = [transforms.ToTensor()]
            if is_training:
                steps.append(transforms.RandomHorizontalFlip())
            steps.append(transforms.Normalize(PACS_MEAN, PACS_STD))
            transform = transforms.Compose(steps)
        self.transform = transform

        self.samples = []  # (path, domain, category)
        for domain in sorted(os.listdir(self.split_dir)):
            domain_dir = os.path.join(self.split_dir, domain)
            if not os.path.isdir(domain_dir):
                continue
            for category in sorted(os.listdir(domain_dir)):
                category_dir = os.path.join(domain_dir, category)
                if not os.path.isdir(category_dir):
                    continue
                for name in sorted(os.listdir(category_dir)):
                    if name.lower().endswith(('.jpg', '.jpeg', '.png', '.bmp')):
                        self.samples.append((os.path.join(category_dir, name), domain, category))

        self.domains = sorted({d for _, d, _ in self.samples})
        self.categories = sorted({c for _, _, c in self.samples})
        self.label_list = self.domains if label_type == 'domain' else self.categories
        self.label_to_id = {name: i for i, name in enumerate(self.label_list)}

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, domain, category = self.samples[index]
        image = io.imread(path)
        if image.ndim == 2:                  # grayscale -> RGB
            image = np.stack([image] * 3, axis=-1)
        elif image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        elif image.shape[-1] == 4:           # RGBA -> RGB
            image = image[..., :3]
        label = self.label_to_id[domain if self.label_type == 'domain' else category]
        return self.transform(np.ascontiguousarray(image)), label


# ---------------------------------------------------------------------------------------
# Part A: implement AlexNet exactly as the table in the handout lists it (227x227 input).
# Read the number of classes from configs['num_classes'] (4 for domain, 7 for category).
# ---------------------------------------------------------------------------------------
class AlexNet(nn.Module):
    def __init__(self, configs):
        super().__init__()
        # TODO (Part A): define the layers.
        raise NotImplementedError

    def forward(self, x):
        # TODO (Part A): x is [batch, 3, 227, 227]; return logits [batch, num_classes].
        raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Part B: the two variants, following their tables in the handout.
# ---------------------------------------------------------------------------------------
class AlexNetLargeKernel(nn.Module):
    def __init__(self, configs):
        super().__init__()
        # TODO (Part B): larger, strided kernels instead of pooling layers.
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


class AlexNetAvgPooling(nn.Module):
    def __init__(self, configs):
        super().__init__()
        # TODO (Part B): AlexNet with average pooling.
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


# Optional extras (not graded this year).
class AlexNetTiny(nn.Module):
    def __init__(self, configs):
        super().__init__()
        # AlexNet with every conv width halved (48/128/192/192/128) and the classifier
        # 4608 -> 2048 -> 1024 -> num_classes.
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


class AlexNetDilation(nn.Module):
    def __init__(self, configs):
        super().__init__()
        # AlexNet with dilation 2 on every conv and paddings 5/4/2/2/2.
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


MODELS = {
    'AlexNet': AlexNet,
    'AlexNetLargeKernel': AlexNetLargeKernel,
    'AlexNetAvgPooling': AlexNetAvgPooling,
    'AlexNetTiny': AlexNetTiny,
    'AlexNetDilation': AlexNetDilation,
}


def visualize_kernels(kernel_name, kernel_weight, max_in_channels=12, max_out_channels=12,
                      saving_prefix='kernel'):
    """Save conv kernels as a grid: row o, column i shows kernel_weight[o, i].

    kernel_weight is a conv weight [out, in, kh, kw]; only the first max_out_channels rows
    and max_in_channels columns are drawn. Writes <saving_prefix>/<kernel_name lower>.png
    and returns that path.
    """
    weight = kernel_weight.detach().float().cpu()
    n_out, n_in = min(weight.shape[0], max_out_channels), min(weight.shape[1], max_in_channels)
    weight = weight[:n_out, :n_in]
    kh, kw = weight.shape[2:]

    # one mosaic with a blank (NaN) gutter between kernels, drawn as a single heatmap
    mosaic = torch.full((n_out * (kh + 1) - 1, n_in * (kw + 1) - 1), float('nan'))
    for o in range(n_out):
        for i in range(n_in):
            mosaic[o * (kh + 1):o * (kh + 1) + kh, i * (kw + 1):i * (kw + 1) + kw] = weight[o, i]
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
    plt.close(fig)
    return path


def analyze_model_kernels():
    """Part C: visualise the kernels of a trained model.

    TODO: (1) load FLAGS.model_checkpoint (the state_dict that model_training saved),
    (2) rebuild the model and load those weights, (3) call
    visualize_kernels once for each of the 5 convolution layers.
    """
    raise NotImplementedError


def evaluate(model, loader, criterion, device):
    """Mean loss and accuracy over a loader, in eval mode."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
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
    best_accuracy, step = -1.0, 0
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
