# A correct submission in the plain style most students use: nn.Sequential blocks.
# Tests derive broken submissions from it by replacing one marked line at a time.
import os

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum('task_type', 'training', ['training', 'analysis'], 'What to do.')
flags.DEFINE_enum('label_type', 'domain', ['domain', 'category'], 'Which labels to predict.')
flags.DEFINE_string('model_checkpoint', '', 'Checkpoint to analyse.')

LABEL_SIZE = {'domain': 4, 'category': 7}


class AlexNet(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # POOL1
            nn.Conv2d(96, 256, kernel_size=5, padding=2),  # CONV2
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # CONV3
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # POOL3
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),  # DROP1
            nn.Linear(256 * 6 * 6, 4096),  # FC1
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),  # FC2
            nn.ReLU(inplace=True),
            nn.Linear(4096, configs['num_classes']),  # FC3
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)  # OUT


class AlexNetLargeKernel(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=21, stride=8, padding=1),  # LK1
            nn.ReLU(inplace=True),
            nn.Conv2d(96, 256, kernel_size=7, stride=2, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, configs['num_classes']),  # LKFC3
        )

    def forward(self, x):  # LKFORWARD
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class AlexNetAvgPooling(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=3, stride=2),  # AVGPOOL3
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, configs['num_classes']),
        )

    def forward(self, x):  # AVGFORWARD
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def visualize_kernels(kernel_name, kernel_weight, max_in_channels=12, max_out_channels=12, saving_prefix='kernel'):
    """Given with the starter: draw the first channels of a conv weight as a grid."""
    weight = kernel_weight.detach().cpu()[:max_out_channels, :max_in_channels]
    out_c, in_c = weight.shape[:2]
    fig, axes = plt.subplots(out_c, in_c, figsize=(in_c, out_c), squeeze=False)
    for o in range(out_c):
        for i in range(in_c):
            axes[o][i].imshow(weight[o, i].numpy(), cmap='gray')
            axes[o][i].axis('off')
    os.makedirs(saving_prefix, exist_ok=True)
    fig.savefig(os.path.join(saving_prefix, kernel_name.lower() + '.png'))
    plt.close(fig)


def analyze_model_kernels():
    checkpoint = torch.load(FLAGS.model_checkpoint, map_location='cpu', weights_only=True)
    model = AlexNet({'num_classes': LABEL_SIZE[FLAGS.label_type]})
    model.load_state_dict(checkpoint['model'])
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    for index, conv in enumerate(convs, start=1):
        visualize_kernels(f'Conv2d-{index}', conv.weight)


def main(argv):
    if FLAGS.task_type == 'analysis':
        analyze_model_kernels()


if __name__ == '__main__':
    app.run(main)
