"""ECE661 HW2 Lab 1 starter: the given SimpleNN for CIFAR-10 (handout Table 1).

SimpleNN is provided, as in the course's simplenn-cifar10.ipynb (Step 0): conv5x5 3->8,
ReLU, maxpool 2, conv3x3 8->16, ReLU, maxpool 2, flatten, fc 576->120, ReLU, fc 120->84,
ReLU, fc 84->10, no padding; 82,030 parameters. (The course's cell takes no constructor
argument; `num_classes` defaults to the same 10 classes.)

Your part (Steps 1-5 of the notebook): preprocessing, the datasets and dataloaders from
`tools.dataset.CIFAR10`, the loss and SGD optimizer, and the training loop. Keep training
code under `if __name__ == "__main__":` so that importing this module trains nothing.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# a few arguments, do NOT change these
DATA_ROOT = "./data"
TRAIN_BATCH_SIZE = 128
VAL_BATCH_SIZE = 100

# hyperparameters, do NOT change right now
INITIAL_LR = 0.01  # initial learning rate
MOMENTUM = 0.9     # momentum for optimizer
REG = 1e-4         # L2 regularization strength
EPOCHS = 30        # total number of training epochs
CHECKPOINT_FOLDER = "./saved_model"


class SimpleNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.max_pool2d(out, 2)
        out = F.relu(self.conv2(out))
        out = F.max_pool2d(out, 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        out = self.fc3(out)
        return out


if __name__ == "__main__":
    # TODO (Steps 1-5): preprocessing, datasets/dataloaders, loss/optimizer, training loop.
    # Bonus (h): decay the learning rate by DECAY every DECAY_EPOCHS:
    #     if i % DECAY_EPOCHS == 0 and i != 0:
    #         current_learning_rate = current_learning_rate * DECAY
    #         for param_group in optimizer.param_groups:
    #             param_group['lr'] = current_learning_rate
    pass
