# Lab 1 as a student submits it: the given SimpleNN, a training loop under __main__.
import torch
import torch.nn as nn
import torch.nn.functional as F

DECAY_EPOCHS = 20
DECAY = 0.1
INITIAL_LR = 0.01


class SimpleNN(nn.Module):
    def __init__(self):
        super(SimpleNN, self).__init__()
        self.conv1 = nn.Conv2d(3, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.max_pool2d(out, 2)
        out = F.relu(self.conv2(out))
        out = F.max_pool2d(out, 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


def train(net, trainloader, optimizer, criterion, epochs):
    current_learning_rate = INITIAL_LR
    for i in range(epochs):
        if i % DECAY_EPOCHS == 0 and i != 0:
            current_learning_rate = current_learning_rate * DECAY
            for param_group in optimizer.param_groups:
                param_group['lr'] = current_learning_rate
        for inputs, targets in trainloader:
            optimizer.zero_grad()
            loss = criterion(net(inputs), targets)
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    from tools.dataset import CIFAR10  # noqa: F401  (the course's helper package)
    print("training")
