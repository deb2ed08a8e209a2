"""The class's integrity report (grader/batch/integrity.py): copied code and copied predictions are
flagged, honest work and shared starter code are not, and the page and CSV say so safely.

Every submission here is written for this test: a CIFAR-10 homework with a starter file the
students complete. The copies are made from them the way students disguise copies: names
changed, functions reordered, code moved to another file or into a notebook.
"""
from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys

import pytest

from grader.batch.integrity import CSV_COLUMNS, Entry, analyse, entry_files

STARTER = '''\
"""Homework 4: train a small convolutional network on CIFAR-10.

Fill in every TODO. Do not change the function names: the autograder calls them.
"""
import argparse
import csv

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms


def get_loaders(data_dir, batch_size):
    """Train and test loaders for CIFAR-10 (provided, do not edit)."""
    normalize = transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    train_tf = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize])
    test_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train_set = torchvision.datasets.CIFAR10(data_dir, train=True, download=True, transform=train_tf)
    test_set = torchvision.datasets.CIFAR10(data_dir, train=False, download=True, transform=test_tf)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=2)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size, shuffle=False, num_workers=2)
    return train_loader, test_loader


class AlexNetSmall(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        # TODO: define the convolutional layers and the classifier
        pass

    def forward(self, x):
        # TODO: implement the forward pass
        raise NotImplementedError


def train_one_epoch(model, loader, optimizer, device):
    """Train for one epoch; return the mean loss."""
    # TODO
    raise NotImplementedError


def evaluate(model, loader, device):
    """Return the accuracy of the model on the loader, between 0 and 1."""
    # TODO
    raise NotImplementedError


def write_predictions(model, loader, device, path="predictions.csv"):
    """Write one `Id,Label` row per test image (provided, do not edit)."""
    model.eval()
    row = 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Id", "Label"])
        with torch.no_grad():
            for images, _ in loader:
                labels = model(images.to(device)).argmax(dim=1)
                for label in labels.tolist():
                    writer.writerow([row, label])
                    row += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="./data")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    train_loader, test_loader = get_loaders(args.data, args.batch_size)
    model = AlexNetSmall().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, optimizer, device)
        print(f"epoch {epoch}: loss {loss:.3f}, test accuracy {evaluate(model, test_loader, device):.3f}")
    write_predictions(model, test_loader, device)


if __name__ == "__main__":
    main()
'''


def _stub(start: str, end: str) -> str:
    i = STARTER.index(start)
    return STARTER[i:STARTER.index(end, i) + len(end)]


MODEL_STUB = _stub("class AlexNetSmall", "        raise NotImplementedError\n")
TRAIN_STUB = _stub("def train_one_epoch", "    raise NotImplementedError\n")
EVAL_STUB = _stub("def evaluate", "    raise NotImplementedError\n")
MAIN_LOOP = _stub("    for epoch in range(args.epochs):", "    write_predictions(model, test_loader, device)\n")


def complete(model: str, train: str, evaluate: str, helpers: str = "", loop: str | None = None) -> str:
    """The starter with a student's answers in place of its TODOs."""
    text = STARTER.replace(MODEL_STUB, model).replace(TRAIN_STUB, train).replace(EVAL_STUB, evaluate)
    text = text.replace("def main():\n", helpers + "def main():\n")
    return text.replace(MAIN_LOOP, loop) if loop is not None else text


ADA = complete(model='''\
class AlexNetSmall(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        # five conv layers as in AlexNet, with 3x3 kernels for 32x32 images
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(64, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(256 * 4 * 4, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(1024, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)
''', train='''\
def train_one_epoch(model, loader, optimizer, device):
    """Train for one epoch; return the mean loss."""
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    running, seen = 0.0, 0
    for step, (images, targets) in enumerate(loader):
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = criterion(logits, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
        running += loss.item() * images.size(0)
        seen += images.size(0)
        if step % 100 == 0:
            print(f"  step {step:4d} loss {loss.item():.4f}")
    return running / max(seen, 1)
''', evaluate='''\
def evaluate(model, loader, device):
    """Return the accuracy of the model on the loader, between 0 and 1."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, targets in loader:
            preds = model(images.to(device)).argmax(dim=1).cpu()
            correct += (preds == targets).sum().item()
            total += targets.numel()
    return correct / total
''', helpers='''\
def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_scheduler(optimizer, epochs, warmup=2):
    """Linear warm-up, then cosine decay to zero."""
    def factor(epoch):
        if epoch < warmup:
            return (epoch + 1) / warmup
        progress = (epoch - warmup) / max(1, epochs - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


''', loop='''\
    print(f"{count_parameters(model):,} trainable parameters")
    scheduler = make_scheduler(optimizer, args.epochs)
    best = 0.0
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, optimizer, device)
        scheduler.step()
        accuracy = evaluate(model, test_loader, device)
        if accuracy > best:
            best = accuracy
            torch.save(model.state_dict(), "best.pt")
        print(f"epoch {epoch}: loss {loss:.3f}, test accuracy {accuracy:.3f} (best {best:.3f})")
    model.load_state_dict(torch.load("best.pt"))
    write_predictions(model, test_loader, device)
''').replace("import argparse\n", "import argparse\nimport math\n")

CLEO = complete(model='''\
class AlexNetSmall(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 48, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(48)
        self.conv2 = nn.Conv2d(48, 128, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 192, 3, padding=1)
        self.conv4 = nn.Conv2d(192, 192, 3, padding=1)
        self.conv5 = nn.Conv2d(192, 128, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(0.4)
        self.fc1 = nn.Linear(128 * 4 * 4, 768)
        self.fc2 = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool(F.relu(self.conv5(x)))
        x = x.view(x.size(0), -1)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)
''', train='''\
def train_one_epoch(model, loader, optimizer, device):
    """Train for one epoch; return the mean loss."""
    model.train()
    losses = []
    for batch in loader:
        inputs = batch[0].to(device)
        labels = batch[1].to(device)
        out = model(inputs)
        loss = F.cross_entropy(out, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
''', evaluate='''\
def evaluate(model, loader, device):
    """Return the accuracy of the model on the loader, between 0 and 1."""
    model.eval()
    hits = []
    for inputs, labels in loader:
        with torch.no_grad():
            _, predicted = torch.max(model(inputs.to(device)), 1)
        hits.append((predicted.cpu() == labels).float())
    return torch.cat(hits).mean().item()
''', helpers='''\
def plot_curve(values, path="loss.png"):
    import matplotlib.pyplot as plt
    plt.figure(figsize=(6, 4))
    plt.plot(range(1, len(values) + 1), values, marker="o")
    plt.xlabel("epoch")
    plt.ylabel("training loss")
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(path)


''', loop='''\
    history = []
    for epoch in range(args.epochs):
        history.append(train_one_epoch(model, train_loader, optimizer, device))
        if epoch == args.epochs // 2:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        print("epoch", epoch + 1, "loss", round(history[-1], 4), "acc", evaluate(model, test_loader, device))
    plot_curve(history)
    write_predictions(model, test_loader, device)
''')

DEV = complete(model='''\
def conv_block(cin, cout, pool):
    layers = [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class AlexNetSmall(nn.Module):
    def __init__(self, num_classes=10, width=32):
        super().__init__()
        sizes = [3, width, width * 2, width * 4, width * 4, width * 8]
        pools = [True, True, False, False, True]
        self.body = nn.Sequential(*[conv_block(a, b, p) for a, b, p in zip(sizes, sizes[1:], pools)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 8, num_classes))

    def forward(self, x):
        return self.head(self.body(x))
''', train='''\
def train_one_epoch(model, loader, optimizer, device):
    """Train for one epoch; return the mean loss."""
    model.train()
    total_loss = 0.0
    n = 0
    loss_fn = nn.CrossEntropyLoss()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        optimizer.zero_grad()
        batch_loss = loss_fn(model(x), y)
        batch_loss.backward()
        optimizer.step()
        total_loss += batch_loss.item() * len(y)
        n += len(y)
    return total_loss / n
''', evaluate='''\
@torch.no_grad()
def evaluate(model, loader, device):
    """Return the accuracy of the model on the loader, between 0 and 1."""
    model.eval()
    right, count = 0, 0
    for x, y in loader:
        guess = model(x.to(device)).max(1).indices.cpu()
        right += int(guess.eq(y).sum())
        count += len(y)
    return right / count
''', loop='''\
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.epochs)
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, optimizer, device)
        scheduler.step()
        if epoch % 2 == 1 or epoch == args.epochs - 1:
            print(f"[{epoch + 1}/{args.epochs}] train loss={loss:.4f} test acc={evaluate(model, test_loader, device):.2%}")
    write_predictions(model, test_loader, device)
''')

EVE = complete(model='''\
class AlexNetSmall(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        c = [3, 96, 256, 384, 384, 256]
        self.convs = nn.ModuleList()
        for i in range(5):
            k = 5 if i < 2 else 3
            self.convs.append(nn.Conv2d(c[i], c[i + 1], k, padding=k // 2))
        self.dropout = nn.Dropout(0.5)
        self.linear1 = nn.Linear(256 * 4 * 4, 2048)
        self.linear2 = nn.Linear(2048, num_classes)

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if i in (0, 1, 4):
                x = F.max_pool2d(x, 2)
        x = torch.flatten(x, start_dim=1)
        x = torch.relu(self.linear1(self.dropout(x)))
        return self.linear2(self.dropout(x))
''', train='''\
def train_one_epoch(model, loader, optimizer, device):
    """Train for one epoch; return the mean loss."""
    model.train()
    epoch_loss, batches = 0.0, 0
    for i, data in enumerate(loader, 0):
        imgs, lbls = data
        imgs, lbls = imgs.to(device), lbls.to(device)
        optimizer.zero_grad()
        result = model(imgs)
        l = nn.functional.cross_entropy(result, lbls)
        l.backward()
        optimizer.step()
        epoch_loss += l.item()
        batches += 1
        if i % 50 == 49:
            print("[%d] running loss: %.3f" % (i + 1, epoch_loss / batches))
    return epoch_loss / batches
''', evaluate='''\
def evaluate(model, loader, device):
    """Return the accuracy of the model on the loader, between 0 and 1."""
    model.eval()
    good = 0
    seen = 0
    with torch.no_grad():
        for imgs, lbls in loader:
            outputs = model(imgs.to(device))
            predicted = torch.argmax(outputs.data, dim=1)
            seen += lbls.size(0)
            good += (predicted == lbls.to(device)).sum().item()
    return good / seen
''')

# A passage from a blog post that most of one class pasted in (the rule: in more than half of
# the submissions, it is boilerplate).
BLOG_HELPERS = '''\
def seed_everything(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class RunningMean:
    """Keeps the mean of the values it is given, weighted by batch size."""

    def __init__(self):
        self.sum = 0.0
        self.count = 0

    def update(self, value, n=1):
        self.sum += value * n
        self.count += n

    @property
    def mean(self):
        return self.sum / max(self.count, 1)


def mixup(x, y, alpha=0.2):
    lam = np.random.beta(alpha, alpha) if alpha > 0 else 1.0
    index = torch.randperm(x.size(0), device=x.device)
    mixed = lam * x + (1 - lam) * x[index]
    return mixed, y, y[index], lam


def mixup_loss(criterion, pred, y_a, y_b, lam):
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)


def warmup_factor(step, warmup_steps=500):
    if step >= warmup_steps:
        return 1.0
    return float(step + 1) / float(warmup_steps)


'''

RENAMES = {"features": "extractor", "classifier": "mlp", "criterion": "objective", "running": "loss_sum",
           "seen": "n_samples", "images": "batch_x", "targets": "batch_y", "logits": "scores", "step": "it",
           "correct": "hits", "total": "count", "preds": "guesses", "count_parameters": "num_params",
           "make_scheduler": "cosine_with_warmup", "factor": "lr_at", "warmup": "warm", "progress": "t",
           "best": "top_acc", "accuracy": "acc", "x": "h"}


def blocks(source: str) -> tuple[str, list[str]]:
    """The module's header (docstring, imports) and its top-level definitions."""
    head, *rest = re.split(r"\n\n\n(?=def |class |@|if __name__)", source)
    return head, rest


def disguise(source: str) -> dict[str, str]:
    """A copy as students disguise one: every local name changed, comments dropped, the model
    moved to its own file and the functions of the main file in the opposite order."""
    text = re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], source)
    text = re.sub(r"\n\s*# [^\n]*", "", text)
    head, parts = blocks(text)
    model = [p for p in parts if p.startswith("class AlexNetSmall")]
    rest = [p for p in parts if p not in model]
    order = list(reversed(rest[:-2])) + rest[-2:]  # main() and the __main__ guard stay last
    main = head + "\n\nfrom network import AlexNetSmall\n\n\n" + "\n\n\n".join(order)
    return {"train.py": main, "network.py": "import torch\nimport torch.nn as nn\n\n\n" + model[0]}


def notebook(source: str) -> str:
    """The same program as a Jupyter notebook: one code cell per definition, notes in between."""
    head, parts = blocks(source)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Homework 4\n", "CIFAR-10 with a small CNN."]},
             {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
              "source": ["%matplotlib inline\n", "!pip install -q torchsummary\n"]}]
    for n, code in enumerate([head] + parts[:-1]):
        cells.append({"cell_type": "markdown", "metadata": {}, "source": [f"## Step {n}"]})
        lines = code.splitlines(keepends=True)
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": n + 2, "outputs": [],
                      "source": lines})
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": ["main()"]})
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
                       "nbformat_minor": 5}, indent=1)


def entry(key: str, name: str, files: dict[str, str] | str, predictions=None) -> Entry:
    files = {"cnn_hw.py": files} if isinstance(files, str) else files
    return Entry(key=key, label=name, files=files, predictions=predictions or {})


def pair(report, a: str, b: str):
    found = [p for p in report.pairs if {p.a, p.b} == {a, b}]
    return found[0] if found else None


def similarity(report, a: str, b: str) -> float:
    p = pair(report, a, b)
    return p.similarity if p else 0.0


STARTER_FILES = {"cnn_hw.py": STARTER}


# ------------------------------------------------------------------------------------- code


def test_a_disguised_copy_is_flagged_and_an_honest_solution_is_not(tmp_path):
    ben = disguise(ADA)
    assert "extractor" in ben["network.py"] and "def cosine_with_warmup" in ben["train.py"]
    class_ = [entry("ada", "Ada Lovelace (1001)", ADA), entry("ben", "Ben Copier (1002)", ben),
              entry("cleo", "Cleo Honest (1003)", CLEO)]
    report = analyse(class_, STARTER_FILES, {}, tmp_path)

    copied = pair(report, "ada", "ben")
    assert copied.flagged and copied.similarity_a >= 0.9 and copied.similarity_b >= 0.8
    assert copied.longest_fragment_tokens >= 100 and copied.longest_fragment_lines >= 10
    assert pair(report, "ada", "cleo") is None and pair(report, "ben", "cleo") is None  # below the 0.2 floor
    assert [p.flagged for p in report.pairs].count(True) == 1
    assert [c.members for c in report.clusters] == [["ada", "ben"]]
    # the fragment is located in each student's own files
    assert copied.fragment_a.where.startswith("cnn_hw.py, lines ")
    assert copied.fragment_b.where.split(",")[0] in ("train.py", "network.py")
    assert copied.fragment_a.match.strip() and copied.fragment_b.match.strip()


def test_honest_solutions_of_the_same_starter_are_not_flagged(tmp_path):
    students = {"ada": ADA, "cleo": CLEO, "dev": DEV, "eve": EVE}
    report = analyse([entry(k, k.title(), v) for k, v in students.items()], STARTER_FILES, {}, tmp_path)
    assert report.flagged_pairs == [] and report.clusters == []
    assert report.pairs == []  # no pair even reaches the 0.2 floor
    # ...and each pair alone, where nothing is common to most of a class
    for a, b in [("ada", "cleo"), ("cleo", "dev"), ("dev", "eve"), ("ada", "eve")]:
        alone = analyse([entry(a, a, students[a]), entry(b, b, students[b])], STARTER_FILES, {}, tmp_path / a / b)
        assert alone.common_fingerprints == 0
        assert similarity(alone, a, b) < 0.2, (a, b, similarity(alone, a, b))


def test_the_starter_code_itself_is_not_flagged(tmp_path):
    one = STARTER.replace('default=0.01', 'default=0.05')
    other = STARTER.replace('default=10)', 'default=30)')
    report = analyse([entry("s1", "One", one), entry("s2", "Two", other), entry("s3", "Three", STARTER)],
                     STARTER_FILES, {}, tmp_path)
    assert report.pairs == [] and report.clusters == []
    assert report.starter_fingerprints > 500
    # without the starter as boilerplate, the same three are near copies: it is what saves them
    bare = analyse([entry("s1", "One", one), entry("s2", "Two", other)], {}, {}, tmp_path / "bare")
    assert pair(bare, "s1", "s2").flagged
    # a starter notebook is boilerplate for its code cells, whatever form the students hand in
    as_notebook = analyse([entry("s1", "One", {"hw4.ipynb": notebook(one)}), entry("s2", "Two", other)],
                          {"hw4.ipynb": notebook(STARTER)}, {}, tmp_path / "notebook")
    assert as_notebook.pairs == [] and as_notebook.starter_fingerprints > 500


def test_a_passage_most_of_the_class_shares_does_not_count(tmp_path):
    def with_blog(source):
        return source.replace("import argparse\n", "import argparse\nimport random\n\nimport numpy as np\n") \
                     .replace("def main():\n", BLOG_HELPERS + "def main():\n")
    cleo, dev, eve = with_blog(CLEO), with_blog(DEV), with_blog(EVE)
    two = analyse([entry("cleo", "Cleo", cleo), entry("dev", "Dev", dev)], STARTER_FILES, {}, tmp_path / "two")
    assert two.common_fingerprints == 0  # two submissions are no majority
    assert similarity(two, "cleo", "dev") >= 0.4

    report = analyse([entry("ada", "Ada", ADA), entry("cleo", "Cleo", cleo), entry("dev", "Dev", dev),
                      entry("eve", "Eve", eve)], STARTER_FILES, {}, tmp_path / "class")
    assert report.common_fingerprints > 200
    assert similarity(report, "cleo", "dev") < 0.2 and report.flagged_pairs == []
    assert any("torch.backends.cudnn" in text or "self.count" in text for text in report.common_examples)
    page = (tmp_path / "class" / "integrity.html").read_text(encoding="utf-8")
    assert "more than half of the submissions" in page


def test_a_notebook_copy_of_a_python_file_is_flagged(tmp_path):
    fay = notebook(ADA)
    assert '"%matplotlib inline\\n"' in fay
    report = analyse([entry("ada", "Ada", ADA), entry("fay", "Fay", {"hw4.ipynb": fay}),
                      entry("cleo", "Cleo", CLEO)], STARTER_FILES, {}, tmp_path)
    copied = pair(report, "ada", "fay")
    assert copied.flagged and copied.similarity >= 0.9
    assert ", code cell " in copied.fragment_b.where
    assert not pair(report, "cleo", "fay") or not pair(report, "cleo", "fay").flagged
    # the magics were dropped and the markdown cells never read
    assert "pip install" not in copied.fragment_b.before + copied.fragment_b.match + copied.fragment_b.after


def test_a_tiny_submission_is_not_flagged_for_a_line_it_shares(tmp_path):
    tiny = STARTER.replace("        # TODO: implement the forward pass\n        raise NotImplementedError\n",
                           "        x = self.features(x)\n        x = torch.flatten(x, 1)\n"
                           "        return self.classifier(x)\n")
    report = analyse([entry("ada", "Ada", ADA), entry("tiny", "Tiny", tiny)], STARTER_FILES, {}, tmp_path)
    assert report.flagged_pairs == []


# ------------------------------------------------------------------------------ predictions

ROWS, CLASSES = 2000, 10


def held_out(seed: int = 0) -> dict[int, int]:
    rng = random.Random(seed)
    return {row: rng.randrange(CLASSES) for row in range(ROWS)}


def model_answers(truth: dict[int, int], seed: int, accuracy: float = 0.7, hard: dict | None = None) -> dict:
    """One student's model: right with probability `accuracy`; when wrong, the class after the
    true one 60% of the time (every model confuses those), else any other. On `hard` rows it
    gives that row's fooling label 95% of the time, as every model would."""
    rng = random.Random(seed)
    out = {}
    for row, true in truth.items():
        if hard and row in hard and rng.random() < 0.95:
            out[row] = hard[row]
        elif rng.random() < accuracy:
            out[row] = true
        elif rng.random() < 0.6:
            out[row] = (true + 1) % CLASSES
        else:
            out[row] = rng.choice([c for c in range(CLASSES) if c not in (true, (true + 1) % CLASSES)])
    return out


def copied_answers(original: dict, own: dict, seed: int, kept: float = 0.75) -> dict:
    """A copy of `original` with a quarter of the rows replaced by the copier's own model."""
    rng = random.Random(seed)
    return {row: label if rng.random() < kept else own[row] for row, label in original.items()}


def wrong_agreement(truth, a, b):
    both = [r for r in truth if a[r] != truth[r] and b[r] != truth[r]]
    return len(both), sum(1 for r in both if a[r] == b[r])


SUMMARY = re.compile(r"they agree on ([\d,]+) of the ([\d,]+) rows both got wrong; independent errors would "
                     r"agree on about ([\d,.]+) \(([\d,.]+) times as often as expected\)")


def test_shared_wrong_labels_far_above_chance_are_flagged_and_independent_errors_are_not(tmp_path):
    truth = held_out()
    ada, cleo, dev = model_answers(truth, 1), model_answers(truth, 2), model_answers(truth, 3)
    ben = copied_answers(ada, model_answers(truth, 4), seed=5)
    accuracy = {k: sum(v[r] == truth[r] for r in truth) / ROWS for k, v in
                {"ada": ada, "ben": ben, "cleo": cleo, "dev": dev}.items()}
    assert max(accuracy.values()) - min(accuracy.values()) < 0.04  # the same accuracy, near 70%
    class_ = [entry("ada", "Ada", ADA, {"test": ada}), entry("ben", "Ben", CLEO, {"test": ben}),
              entry("cleo", "Cleo", DEV, {"test": cleo}), entry("dev", "Dev", EVE, {"test": dev})]
    report = analyse(class_, STARTER_FILES, {"test": truth}, tmp_path)

    assert [(f.kind, f.a, f.b, f.flagged) for f in report.predictions] == [("shared_errors", "ada", "ben", True)]
    found = report.predictions[0]
    both, same = wrong_agreement(truth, ada, ben)
    assert (found.both_wrong, found.same_wrong, found.rows) == (both, same, ROWS)
    # independent errors with these confusions agree on 0.6^2 + 7 * (0.4/7)^2 = 38% of such rows
    assert found.expected_same_wrong == pytest.approx(0.383 * both, rel=0.15)
    assert found.p_value < 1e-12 and same > 2 * found.expected_same_wrong
    words = SUMMARY.search(found.summary)
    assert words and words.group(1) == f"{same:,}" and words.group(2) == f"{both:,}"
    assert words.group(3) == f"{found.expected_same_wrong:,.0f}"
    assert "less than 1 in a billion" in found.summary
    assert report.items_with_truth == ["test"] and report.prediction_pairs_compared == 6
    assert json.loads(json.dumps(report.as_dict()))["predictions"][0]["same_wrong"] == same
    assert [c.members for c in report.clusters] == [["ada", "ben"]]
    assert report.clusters[0].prediction_pairs == 1 and report.clusters[0].code_pairs == 0
    # the honest pairs do agree on wrong labels, about as often as chance says
    both, same = wrong_agreement(truth, cleo, dev)
    assert both > 100 and 0.25 < same / both < 0.5


def test_images_that_fool_every_model_alike_do_not_count_against_a_pair(tmp_path):
    truth = held_out()
    rng = random.Random(9)
    hard = {row: rng.choice([c for c in range(CLASSES) if c != truth[row]]) for row in rng.sample(sorted(truth), 300)}
    answers = {f"s{n}": model_answers(truth, 20 + n, hard=hard) for n in range(8)}
    pair_only = analyse([entry(k, k, "", {"test": answers[k]}) for k in ("s0", "s1")], {}, {"test": truth},
                        tmp_path / "two")
    # two students alone: nothing says those images are hard, and their agreement looks copied
    assert [(f.a, f.b, f.flagged) for f in pair_only.predictions] == [("s0", "s1", True)]
    class_ = analyse([entry(k, k, "", {"test": v}) for k, v in answers.items()], {}, {"test": truth},
                     tmp_path / "class")
    assert class_.predictions == [] and class_.prediction_pairs_compared == 28


def test_identical_prediction_files_are_flagged_unless_they_say_nothing(tmp_path):
    truth = held_out()
    ada = model_answers(truth, 1)
    wrong = sum(ada[r] != truth[r] for r in truth)
    nearly = {r: (label + 1) % CLASSES if r < 3 else label for r, label in truth.items()}  # 3 rows wrong
    class_ = [entry("ada", "Ada", ADA, {"test": ada}), entry("ben", "Ben", CLEO, {"test": dict(ada)}),
              entry("zed", "Zed", DEV, {"test": {r: 0 for r in truth}}),
              entry("zoe", "Zoe", EVE, {"test": {r: 0 for r in truth}}),
              entry("top1", "Top One", "", {"test": dict(truth)}), entry("top2", "Top Two", "", {"test": dict(truth)}),
              entry("near1", "Near One", "", {"test": nearly}), entry("near2", "Near Two", "", {"test": dict(nearly)})]
    report = analyse(class_, STARTER_FILES, {"test": truth}, tmp_path / "truth")
    found = {(f.a, f.b): f for f in report.predictions}
    assert set(found) == {("ada", "ben"), ("zed", "zoe"), ("top1", "top2"), ("near1", "near2")}
    assert all(f.kind == "identical" for f in found.values())
    assert found["ada", "ben"].flagged and found["ada", "ben"].same_wrong == wrong
    assert found["ada", "ben"].summary == (f"Identical predictions for all 2,000 rows of test, including the same "
                                           f"wrong label on all {wrong:,} rows they got wrong.")
    assert not found["zed", "zoe"].flagged and "every row is class 0" in found["zed", "zoe"].summary
    assert not found["top1", "top2"].flagged and "correct on every row" in found["top1", "top2"].summary
    assert not found["near1", "near2"].flagged and "wrong on only 3 rows" in found["near1", "near2"].summary
    assert report.predictions[0].a == "ada"  # flagged first

    # without held-out labels, identical files are all that can be found
    blind = analyse(class_[:2] + [entry("cleo", "Cleo", EVE, {"test": model_answers(truth, 2)})], STARTER_FILES, {},
                    tmp_path / "blind")
    assert [(f.kind, f.a, f.b, f.flagged, f.both_wrong) for f in blind.predictions] == \
        [("identical", "ada", "ben", True, None)]
    assert blind.predictions[0].summary == "Identical predictions for all 2,000 rows of test."


# --------------------------------------------------------------------------- page and table

HOSTILE = '        self.note = "</pre><script>alert(1)</script> {{ 7 * 7 }} {% if x %}"\n'


def test_the_page_escapes_student_code_and_links_only_to_the_reports(tmp_path):
    ada = ADA.replace("        super().__init__()\n        # five", "        super().__init__()\n" + HOSTILE + "        # five")
    assert HOSTILE in ada
    truth = held_out()
    answers = model_answers(truth, 1)
    class_ = [entry("ada", "Zoë O'Brien & <b>Co</b>", ada, {"test": answers}),
              entry("x y#?", "Ben <script>", disguise(ada), {"test": dict(answers)}),
              entry("cleo", "Cleo", CLEO)]
    report = analyse(class_, STARTER_FILES, {"test": truth}, tmp_path)
    page = (tmp_path / "integrity.html").read_text(encoding="utf-8")

    assert "<script" not in page and "<b>Co" not in page
    assert "Zoë O&#39;Brien &amp; &lt;b&gt;Co&lt;/b&gt;" in page and "Ben &lt;script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; {{ 7 * 7 }} {% if x %}" in page  # shown, not run
    assert "<mark>" in page and page.count("<pre>") == page.count("</pre>")
    links = re.findall(r'\b(?:href|src)\s*=\s*"([^"]*)"', page)
    assert "ada/report.html" in links and "x%20y%23%3F/report.html" in links
    assert all(re.fullmatch(r"#pair-\d+|[A-Za-z0-9%._-]+/report\.html", link) for link in links), links
    assert not re.search(r"https?://|<link|<script|@import|url\(", page)
    assert "It does not change any score" in page
    assert "cnn_hw.py" in page and "Identical predictions for all 2,000 rows of test" in page
    assert report.flagged_pairs and report.flagged_pairs[0].a == "ada"


def test_the_csv_has_a_row_per_pair_and_per_prediction_finding(tmp_path):
    truth = held_out()
    ada = model_answers(truth, 1)
    ben = copied_answers(ada, model_answers(truth, 4), seed=5)
    class_ = [entry("ada", "=HYPERLINK(\"x\")", ADA, {"test": ada}), entry("ben", "Ben", disguise(ADA), {"test": ben}),
              entry("cleo", "Cleo", CLEO, {"test": model_answers(truth, 2)})]
    report = analyse(class_, STARTER_FILES, {"test": truth}, tmp_path)
    with open(tmp_path / "integrity.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS == ["a", "b", "a_label", "b_label", "similarity_a", "similarity_b",
                                      "longest_fragment_tokens", "flagged", "kind", "item", "rows_both_wrong",
                                      "same_wrong_label", "expected_same_wrong", "chance", "summary"]
    table = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [(r["kind"], r["a"], r["b"], r["flagged"]) for r in table] == [
        ("code", "ada", "ben", "yes"), ("predictions_shared_errors", "ada", "ben", "yes")]
    code, found = table
    copied, finding = report.pairs[0], report.predictions[0]
    assert code["a_label"] == "'=HYPERLINK(\"x\")"  # a spreadsheet would run it as a formula
    assert float(code["similarity_a"]) == pytest.approx(copied.similarity_a, abs=0.001)
    assert float(code["similarity_b"]) == pytest.approx(copied.similarity_b, abs=0.001)
    assert int(code["longest_fragment_tokens"]) == copied.longest_fragment_tokens > 100
    assert code["item"] == code["rows_both_wrong"] == code["summary"] == ""
    assert found["similarity_a"] == "" and found["item"] == "test"
    assert int(found["rows_both_wrong"]) == finding.both_wrong and int(found["same_wrong_label"]) == finding.same_wrong
    assert float(found["chance"]) < 1e-6 and found["summary"].startswith("In test, they agree on ")


def test_the_report_is_plain_json_data(tmp_path):
    report = analyse([entry("ada", "Ada", ADA), entry("ben", "Ben", disguise(ADA))], STARTER_FILES, {}, tmp_path)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["submissions"] == 2 and data["code_pairs_compared"] == 1 and data["threshold"] == 0.5
    assert data["starter_files"] == ["cnn_hw.py"]
    (only,) = data["pairs"]
    assert only["flagged"] is True and only["similarity"] == max(only["similarity_a"], only["similarity_b"])
    assert only["fragment_a"]["where"].startswith("cnn_hw.py, lines ") and "match" not in only["fragment_a"]
    assert data["clusters"] == [{"members": ["ada", "ben"], "labels": ["Ada", "Ben"], "code_pairs": 1,
                                 "prediction_pairs": 0, "highest_similarity": only["similarity"]}]
    assert data["predictions"] == []


def test_hostile_code_is_compared_without_trouble(tmp_path):
    huge_line = "x = [" + "1, " * 30_000 + "]\n"
    broken_nb = '{"cells": [{"cell_type": "code", "source": 5}, "junk", {"cell_type": "code", "source": ["y = 1"]}]}'
    class_ = [entry("a", "A", {"big.py": huge_line + ADA}), entry("b", "B", {"b.ipynb": "not json {"}),
              entry("c", "C", {"c.ipynb": broken_nb, "notes.txt": "ignored"}), entry("d", "D", {}),
              entry("e", "E", ADA), entry("f", "F", {"a.py": ADA, "b.py": "#" * 2_000_000})]
    report = analyse(class_, STARTER_FILES, {}, tmp_path)
    assert report.with_code == 4  # a, c (one good cell), e and f
    assert "B: b.ipynb is not a readable notebook; not compared." in report.notes
    assert "F: Only the first 1,000,000 characters of code were compared." in report.notes
    copied = pair(report, "a", "e")
    assert copied.flagged and len(copied.fragment_a.before + copied.fragment_a.after) < 10_000
    assert pair(report, "e", "f").flagged  # what was read of f is still compared
    page = (tmp_path / "integrity.html").read_text(encoding="utf-8")
    assert "B: b.ipynb is not a readable notebook" in page


# ------------------------------------------------------------------------------------ input


def test_entry_files_reads_the_code_a_student_sent(tmp_path):
    root = tmp_path / "sub"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "model.py").write_text("import torch\n")
    (root / "hw.ipynb").write_text('{"cells": []}')
    (root / "Train.PY").write_bytes(b"print('caf\xe9')\n")  # not UTF-8
    (root / "notes.txt").write_text("not code")
    (root / "big.py").write_bytes(b"#" * (2 * 1024 * 1024 + 1))
    for skipped in ("__MACOSX", ".git", ".ipynb_checkpoints", "__pycache__"):
        (root / skipped).mkdir()
        (root / skipped / "hidden.py").write_text("x = 1\n")
    (root / ".secret.py").write_text("x = 1\n")
    outside = tmp_path / "outside.py"
    outside.write_text("stolen = True\n")
    (root / "link.py").symlink_to(outside)
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)

    files = entry_files(root)
    assert sorted(files) == ["Train.PY", "hw.ipynb", "pkg/model.py"]
    assert files["pkg/model.py"] == "import torch\n" and files["Train.PY"] == "print('caf\ufffd')\n"


def test_importing_the_report_loads_no_fingerprinting_library():
    code = ("import sys, grader.batch.integrity; "
            "print(sorted(m for m in ('copydetect', 'matplotlib', 'pygments') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_copy_shared_by_most_of_a_small_class_is_not_taken_for_boilerplate(tmp_path):
    ring = [entry("ada", "Ada", ADA), entry("ben", "Ben", disguise(ADA)), entry("fay", "Fay", {"hw.ipynb": notebook(ADA)})]
    report = analyse(ring + [entry("cleo", "Cleo", CLEO), entry("dev", "Dev", DEV)], STARTER_FILES, {}, tmp_path)
    assert report.common_fingerprints == 0  # three copies are one program: no majority of five
    assert sorted((p.a, p.b) for p in report.flagged_pairs) == [("ada", "ben"), ("ada", "fay"), ("ben", "fay")]
    assert [c.members for c in report.clusters] == [["ada", "ben", "fay"]] and report.clusters[0].code_pairs == 3
    page = (tmp_path / "integrity.html").read_text(encoding="utf-8")
    assert page.count('<div class="fragment"') == 3 and "3 pair(s) at or above 50%" in page
    analyse(ring, STARTER_FILES, {}, tmp_path / "top1", top=1)
    assert (tmp_path / "top1" / "integrity.html").read_text(encoding="utf-8").count('<div class="fragment"') == 1
