"""CS1699 HW5 part 1 (CS1678 HW3 part C): sentiment of IMDB reviews with a hand-made RNN.

  python sentiment_analysis.py --rnn_module=gru --experiment_name=imdb_gru
  python sentiment_analysis.py --compare_cells=gru,lstm --epochs=10 --experiment_name=imdb_cmp

The second form trains each cell with the same settings and writes
<experiment_name>/comparison.json and comparison.md (parameters, seconds per epoch, final
training loss, validation accuracy): the GRU/LSTM comparison the handout asks for.
Nothing runs at import time.
"""
import json
import os
import time
from typing import Optional, Sequence

import torch
import torch.nn as nn
from absl import app, flags
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets import IMDBReviewDataset, imdb_collate_fn
from rnn_modules import CoupledLSTMCell, GRUCell, LSTMCell, PeepholedLSTMCell

FLAGS = flags.FLAGS
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_float('weight_decay', 0.0, 'Adam weight decay (L2 penalty).')
flags.DEFINE_integer('batch_size', 256, 'Reviews per batch.')
flags.DEFINE_integer('epochs', 50, 'Passes over the training reviews.')
flags.DEFINE_string('experiment_name', 'exp', 'Folder for best_model.pt and TensorBoard logs.')
flags.DEFINE_string('model_checkpoint', '', 'A checkpoint written by training (unused here).')
flags.DEFINE_integer('embedding_dim', 128, 'Width of the word embeddings.')
flags.DEFINE_integer('hidden_size', 100, 'Width of the recurrent state.')
flags.DEFINE_integer('review_max_length', 200, 'Reviews are cut to this many tokens.')
flags.DEFINE_integer('vocabulary_min_count', 100, 'A word must occur this often to get an id.')
flags.DEFINE_integer('vocabulary_max_size', 20000, 'At most this many vocabulary entries.')
flags.DEFINE_enum('rnn_module', 'gru', ['lstm', 'gru', 'peepholed_lstm', 'coupled_lstm'],
                  'Which recurrent cell reads the reviews.')
flags.DEFINE_string('train_csv', 'data/imdb_train.csv', 'Training reviews (columns review,sentiment).')
flags.DEFINE_string('val_csv', 'data/imdb_test.csv', 'Validation reviews, same format.')
flags.DEFINE_list('compare_cells', [], 'If set (e.g. gru,lstm): train each cell and compare them.')

PADDING_TOKEN = 0
GRADIENT_CLIP_NORM = 1.0
RNN_MODULES = {
    'gru': GRUCell,
    'lstm': LSTMCell,
    'peepholed_lstm': PeepholedLSTMCell,
    'coupled_lstm': CoupledLSTMCell,
}


class SentimentClassification(nn.Module):
    """Embedding -> recurrent cell over time -> state at the last real token -> 2 logits."""

    def __init__(self, vocabulary_size: int, embedding_dim: int, rnn_module, hidden_size: int,
                 bias: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=PADDING_TOKEN)
        self.rnn_model = rnn_module(embedding_dim, hidden_size, bias=bias)
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, batch_reviews: torch.Tensor, batch_lengths: torch.Tensor) -> torch.Tensor:
        # steps past the longest review only read padding: skip them
        steps = int(batch_lengths.max())
        embedded = self.embedding(batch_reviews[:, :steps])      # [B, T, E]
        state, outputs = None, []
        for t in range(steps):
            state = self.rnn_model(embedded[:, t], state)
            # an LSTM-like cell returns (h, c); only h is read out
            outputs.append(state[0] if isinstance(state, tuple) else state)  # [B, H]
        hidden = torch.stack(outputs, dim=1)                      # [B, T, H]
        rows = torch.arange(hidden.size(0), device=hidden.device)
        last = hidden[rows, batch_lengths.to(hidden.device) - 1]  # [B, H]: later padding is ignored
        return self.classifier(last)                              # [B, 2]


def number_of_parameters(module: nn.Module) -> int:
    """Trainable parameters, without printing (the cells' count_parameters prints)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)  # kernels run asynchronously: time them finished


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device):
    """(mean cross-entropy, accuracy) over a loader, in eval mode."""
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction='sum')
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for reviews, lengths, labels in loader:
            reviews, lengths, labels = reviews.to(device), lengths.to(device), labels.to(device)
            logits = model(reviews, lengths)  # [B, 2]
            total_loss += criterion(logits, labels).item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
    return total_loss / max(seen, 1), correct / max(seen, 1)


def train_sentiment(train_set: IMDBReviewDataset, val_set: IMDBReviewDataset, rnn_module: str, *,
                    embedding_dim: int = 128, hidden_size: int = 100, bias: bool = False,
                    learning_rate: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 256,
                    epochs: int = 50, experiment_dir: str = 'exp',
                    device: Optional[torch.device] = None, seed: Optional[int] = None) -> dict:
    """Train one model; keep <experiment_dir>/best_model.pt at the best validation accuracy.

    Returns the history: per-epoch train_loss, train_accuracy, val_loss, val_accuracy,
    epoch_seconds (training phase only), and the parameter counts.
    """
    if device is None:
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if seed is not None:
        torch.manual_seed(seed)  # same init and batch order for every cell compared
    vocabulary = train_set.get_vocabulary()
    model = SentimentClassification(len(vocabulary), embedding_dim, RNN_MODULES[rnn_module],
                                    hidden_size, bias=bias).to(device)
    order = torch.Generator().manual_seed(seed) if seed is not None else None
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True,
                              collate_fn=imdb_collate_fn, generator=order)
    val_loader = DataLoader(val_set, batch_size=batch_size, shuffle=False, collate_fn=imdb_collate_fn)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()

    os.makedirs(experiment_dir, exist_ok=True)
    writer = SummaryWriter(log_dir=experiment_dir)
    history = {'rnn_module': rnn_module, 'parameters': number_of_parameters(model),
               'cell_parameters': number_of_parameters(model.rnn_model), 'train_loss': [],
               'train_accuracy': [], 'val_loss': [], 'val_accuracy': [], 'epoch_seconds': [],
               'best_val_accuracy': -1.0, 'best_epoch': -1}
    step = 0
    for epoch in tqdm(range(epochs), desc=f'{rnn_module} epochs'):
        model.train()
        _sync(device)
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for reviews, lengths, labels in train_loader:
            reviews, lengths, labels = reviews.to(device), lengths.to(device), labels.to(device)
            logits = model(reviews, lengths)  # [B, 2]
            loss = criterion(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # long reviews make long backprop chains: clipping keeps one bad batch from blowing up
            nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP_NORM)
            optimizer.step()
            loss_sum += loss.item() * labels.numel()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.numel()
            writer.add_scalar('train/batch_loss', loss.item(), step)
            step += 1
        _sync(device)
        history['epoch_seconds'].append(time.perf_counter() - started)
        history['train_loss'].append(loss_sum / max(seen, 1))
        history['train_accuracy'].append(correct / max(seen, 1))

        val_loss, val_accuracy = evaluate(model, val_loader, device)
        history['val_loss'].append(val_loss)
        history['val_accuracy'].append(val_accuracy)
        for name in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy'):
            writer.add_scalar(name.replace('_', '/', 1), history[name][-1], epoch)
        if val_accuracy > history['best_val_accuracy']:
            history['best_val_accuracy'], history['best_epoch'] = val_accuracy, epoch
            # plain types only, so torch.load(..., weights_only=True) reads it back
            torch.save({'model': model.state_dict(), 'vocabulary': vocabulary, 'epoch': epoch,
                        'val_accuracy': val_accuracy, 'rnn_module': rnn_module},
                       os.path.join(experiment_dir, 'best_model.pt'))
        tqdm.write(f'{rnn_module} epoch {epoch}: train loss {history["train_loss"][-1]:.4f}, '
                   f'train acc {history["train_accuracy"][-1]:.4f}, val acc {val_accuracy:.4f}, '
                   f'{history["epoch_seconds"][-1]:.1f} s')
    writer.close()
    return history


def load_imdb(train_csv: str, val_csv: str, review_max_length: int = 200,
              vocabulary_min_count: int = 100, vocabulary_max_size: Optional[int] = 20000):
    """(train, validation) datasets; validation is encoded with the training vocabulary."""
    train_set = IMDBReviewDataset(train_csv, vocab_min_count=vocabulary_min_count,
                                  vocab_max_size=vocabulary_max_size,
                                  review_max_length=review_max_length)
    val_set = IMDBReviewDataset(val_csv, vocabulary=train_set.get_vocabulary(),
                                review_max_length=review_max_length)
    return train_set, val_set


def imdb_trainer() -> dict:
    """Train FLAGS.rnn_module on the IMDB reviews; returns the training history."""
    train_set, val_set = load_imdb(FLAGS.train_csv, FLAGS.val_csv, FLAGS.review_max_length,
                                   FLAGS.vocabulary_min_count, FLAGS.vocabulary_max_size)
    train_set.print_statistics()
    return train_sentiment(train_set, val_set, FLAGS.rnn_module, embedding_dim=FLAGS.embedding_dim,
                           hidden_size=FLAGS.hidden_size, learning_rate=FLAGS.learning_rate,
                           weight_decay=FLAGS.weight_decay, batch_size=FLAGS.batch_size,
                           epochs=FLAGS.epochs, experiment_dir=FLAGS.experiment_name)


COMPARISON_COLUMNS = [  # (key, markdown header, format)
    ('cell', 'cell', '{}'),
    ('parameters', 'model parameters', '{:,}'),
    ('cell_parameters', 'cell parameters', '{:,}'),
    ('handout_cell_parameters', 'cell parameters at 128/100/bias', '{:,}'),
    ('seconds_per_epoch', 'seconds per epoch', '{:.2f}'),
    ('final_train_loss', 'final train loss', '{:.4f}'),
    ('final_train_accuracy', 'final train accuracy', '{:.4f}'),
    ('val_accuracy', 'final val accuracy', '{:.4f}'),
    ('best_val_accuracy', 'best val accuracy', '{:.4f}'),
]


def comparison_markdown(rows: Sequence[dict]) -> str:
    lines = ['| ' + ' | '.join(header for _, header, _ in COMPARISON_COLUMNS) + ' |',
             '|' + '---|' * len(COMPARISON_COLUMNS)]
    for row in rows:
        lines.append('| ' + ' | '.join(fmt.format(row[key]) for key, _, fmt in COMPARISON_COLUMNS) + ' |')
    return '\n'.join(lines) + '\n'


def compare_cells(train_csv: str, val_csv: str, cells: Sequence[str] = ('gru', 'lstm'),
                  epochs: int = 10, *, experiment_dir: str = 'exp', embedding_dim: int = 128,
                  hidden_size: int = 100, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                  batch_size: int = 256, review_max_length: int = 200,
                  vocabulary_min_count: int = 100, vocabulary_max_size: Optional[int] = 20000,
                  device: Optional[torch.device] = None, seed: int = 0) -> dict:
    """Train each cell with identical data, settings and seed; write the comparison.

    Writes <experiment_dir>/comparison.json ({'settings', 'cells': [row per cell]}) and
    comparison.md (the same rows as a table); each cell's run lives in <experiment_dir>/<cell>.
    """
    unknown = [c for c in cells if c not in RNN_MODULES]
    if unknown:
        raise ValueError(f'unknown cell(s) {unknown}; choose from {sorted(RNN_MODULES)}')
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    train_set, val_set = load_imdb(train_csv, val_csv, review_max_length, vocabulary_min_count,
                                   vocabulary_max_size)
    settings = dict(embedding_dim=embedding_dim, hidden_size=hidden_size,
                    learning_rate=learning_rate, weight_decay=weight_decay,
                    batch_size=batch_size, epochs=epochs)
    rows = []
    for cell in cells:
        history = train_sentiment(train_set, val_set, cell, experiment_dir=os.path.join(experiment_dir, cell),
                                  device=device, seed=seed, **settings)
        rows.append({
            'cell': cell,
            'parameters': history['parameters'],
            'cell_parameters': history['cell_parameters'],
            # the handout's comparison setting, whatever sizes were trained
            'handout_cell_parameters': number_of_parameters(RNN_MODULES[cell](128, 100, bias=True)),
            'seconds_per_epoch': sum(history['epoch_seconds']) / len(history['epoch_seconds']),
            'final_train_loss': history['train_loss'][-1],
            'final_train_accuracy': history['train_accuracy'][-1],
            'val_accuracy': history['val_accuracy'][-1],
            'best_val_accuracy': history['best_val_accuracy'],
            'history': {k: history[k] for k in ('train_loss', 'train_accuracy', 'val_accuracy',
                                                'epoch_seconds')},
        })
    result = {'settings': dict(settings, device=str(device), seed=seed, train_reviews=len(train_set),
                               val_reviews=len(val_set), vocabulary_size=len(train_set.get_vocabulary())),
              'cells': rows}
    os.makedirs(experiment_dir, exist_ok=True)
    with open(os.path.join(experiment_dir, 'comparison.json'), 'w') as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(experiment_dir, 'comparison.md'), 'w') as f:
        f.write(comparison_markdown(rows))
    print(comparison_markdown(rows))
    return result


def main(unused_argv):
    if FLAGS.compare_cells:
        compare_cells(FLAGS.train_csv, FLAGS.val_csv, FLAGS.compare_cells, FLAGS.epochs,
                      experiment_dir=FLAGS.experiment_name, embedding_dim=FLAGS.embedding_dim,
                      hidden_size=FLAGS.hidden_size, learning_rate=FLAGS.learning_rate,
                      weight_decay=FLAGS.weight_decay, batch_size=FLAGS.batch_size,
                      review_max_length=FLAGS.review_max_length,
                      vocabulary_min_count=FLAGS.vocabulary_min_count,
                      vocabulary_max_size=FLAGS.vocabulary_max_size)
    else:
        imdb_trainer()


if __name__ == '__main__':
    app.run(main)
