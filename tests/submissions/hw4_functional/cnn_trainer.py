"""CS1678 HW4: AlexNet and variants on PACS (a correct solution in functional style).

Grader test fixture: the models use torch.nn.functional, nested blocks and their own
attribute names, yet compute exactly what the handout tables describe. Usage:

  python cnn_trainer.py --task_type=training --label_type=domain --learning_rate=0.001 \
      --batch_size=128 --experiment_name=demo
  python cnn_trainer.py --task_type=analysis --label_type=domain \
      --model_checkpoint=demo/best_model.pt

The dataset is expected under ./pacs_dataset/{train,val}/<domain>/<category>/<image>.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn as nn
import torch.nn.functional as F
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
# Part A / Part B models. Written with small reusable blocks and torch.nn.functional:
# every network below is a stem block, a list of body blocks and an MLP head.
# ---------------------------------------------------------------------------------------
class ConvBlock(nn.Module):
    """conv -> ReLU (in place) -> optional 3x3/2 pooling, the pooling done functionally."""

    def __init__(self, c_in, c_out, k, stride=1, pad=0, dil=1, pool=None):
        super().__init__()
        self.filt = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dil)
        self.pool = pool  # None, 'max' or 'avg'

    def forward(self, x):
        x = self.filt(x).relu_()
        if self.pool == 'max':
            x = F.max_pool2d(x, kernel_size=3, stride=2)
        elif self.pool == 'avg':
            x = F.avg_pool2d(x, kernel_size=3, stride=2)
        return x


class MLPHead(nn.Module):
    """flatten -> [dropout -> linear -> ReLU] per hidden width -> linear to the logits."""

    def __init__(self, d_in, widths, n_classes, p_drop=0.5, use_view=True):
        super().__init__()
        dims = (d_in,) + tuple(widths)
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.logits = nn.Linear(dims[-1], n_classes)
        self.p_drop = p_drop
        self.use_view = use_view

    def forward(self, x):
        x = x.view(x.size(0), -1) if self.use_view else torch.flatten(x, 1)
        for lin in self.hidden:
            x = F.dropout(x, p=self.p_drop, training=self.training)
            x = F.relu(lin(x), inplace=True)
        return self.logits(x)


def _run(net, x):
    x = net.stem(x)
    for blk in net.body:
        x = blk(x)
    return net.head(x)


class AlexNet(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.stem = ConvBlock(3, 96, 11, stride=4, pool='max')               # -> 96 x 27 x 27
        self.body = nn.ModuleList([
            ConvBlock(96, 256, 5, pad=2, pool='max'),                         # -> 256 x 13 x 13
            ConvBlock(256, 384, 3, pad=1),
            ConvBlock(384, 384, 3, pad=1),
            ConvBlock(384, 256, 3, pad=1, pool='max'),                        # -> 256 x 6 x 6
        ])
        self.head = MLPHead(256 * 6 * 6, (4096, 4096), configs['num_classes'])

    def forward(self, x):
        return _run(self, x)


class AlexNetLargeKernel(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.stem = ConvBlock(3, 96, 21, stride=8, pad=1)                     # -> 96 x 27 x 27
        self.body = nn.ModuleList([
            ConvBlock(96, 256, 7, stride=2, pad=2),                           # -> 256 x 13 x 13
            ConvBlock(256, 384, 3, pad=1),
            ConvBlock(384, 384, 3, pad=1),
            ConvBlock(384, 256, 3, stride=2),                                 # -> 256 x 6 x 6
        ])
        self.head = MLPHead(256 * 6 * 6, (4096, 4096), configs['num_classes'], use_view=False)

    def forward(self, x):
        return _run(self, x)


class AlexNetAvgPooling(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.stem = ConvBlock(3, 96, 11, stride=4, pool='avg')
        self.body = nn.ModuleList([
            ConvBlock(96, 256, 5, pad=2, pool='avg'),
            ConvBlock(256, 384, 3, pad=1),
            ConvBlock(384, 384, 3, pad=1),
            ConvBlock(384, 256, 3, pad=1, pool='avg'),
        ])
        self.head = MLPHead(256 * 6 * 6, (4096, 4096), configs['num_classes'])

    def forward(self, x):
        return _run(self, x)


# Optional extras (not graded this year).
class AlexNetTiny(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.stem = ConvBlock(3, 48, 11, stride=4, pool='max')
        self.body = nn.ModuleList([
            ConvBlock(48, 128, 5, pad=2, pool='max'),
            ConvBlock(128, 192, 3, pad=1),
            ConvBlock(192, 192, 3, pad=1),
            ConvBlock(192, 128, 3, pad=1, pool='max'),
        ])
        self.head = MLPHead(128 * 6 * 6, (2048, 1024), configs['num_classes'])

    def forward(self, x):
        return _run(self, x)


class AlexNetDilation(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.stem = ConvBlock(3, 96, 11, stride=4, pad=5, dil=2, pool='max')
        self.body = nn.ModuleList([
            ConvBlock(96, 256, 5, pad=4, dil=2, pool='max'),
            ConvBlock(256, 384, 3, pad=2, dil=2),
            ConvBlock(384, 384, 3, pad=2, dil=2),
            ConvBlock(384, 256, 3, pad=2, dil=2, pool='max'),
        ])
        self.head = MLPHead(256 * 6 * 6, (4096, 4096), configs['num_classes'])

    def forward(self, x):
        return _run(self, x)


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
    """Part C: visualise the kernels of a trained model."""
    state = torch.load(FLAGS.model_checkpoint, map_location='cpu', weights_only=True)['model']
    net = MODELS[FLAGS.model_type]({'num_classes': LABEL_SIZE[FLAGS.label_type]})
    net.load_state_dict(state)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]  # registration = forward order
    for idx, conv in enumerate(convs, start=1):
        visualize_kernels(f'conv{idx}', conv.weight.data)


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
            torch.save({'model': model.state_dict(), 'epoch': epoch,
                        'val_accuracy': val_accuracy, 'model_type': FLAGS.model_type,
                        'label_type': FLAGS.label_type}, checkpoint_path)
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
