"""CS1699 HW5 part 2 (CS1678 HW3 part D): a character-level Shakespeare writer.

  python sentence_generation.py --task_type=training --embedding_dim=256 --hidden_size=512 \
      --experiment_name=shakespeare
  python sentence_generation.py --task_type=generation --embedding_dim=256 --hidden_size=512 \
      --model_checkpoint=shakespeare/best_model.pt --start_string=ROMEO --generation_length=1000

The model reads history_length characters and predicts the next one. Generation feeds the
start string once, then one sampled character at a time, carrying the recurrent state, so
writing n characters costs n steps. Nothing runs at import time.
"""
import os
import time
from typing import Optional, Sequence

import torch
import torch.nn as nn
from absl import app, flags
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets import ShakespeareDataset
from rnn_modules import CoupledLSTMCell, GRUCell, LSTMCell, PeepholedLSTMCell

FLAGS = flags.FLAGS
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_float('weight_decay', 0.0, 'Adam weight decay (L2 penalty).')
flags.DEFINE_integer('batch_size', 2048, 'Windows (history + next character) per batch.')
flags.DEFINE_integer('epochs', 20, 'Passes over the text.')
flags.DEFINE_string('experiment_name', 'exp', 'Folder for best_model.pt and TensorBoard logs.')
flags.DEFINE_string('model_checkpoint', '', 'Checkpoint to write with (task_type=generation).')
flags.DEFINE_integer('embedding_dim', 50, 'Width of the character embeddings.')
flags.DEFINE_integer('hidden_size', 50, 'Width of the recurrent state.')
flags.DEFINE_enum('rnn_module', 'gru', ['lstm', 'gru', 'peepholed_lstm', 'coupled_lstm'],
                  'Which recurrent cell reads the characters.')
flags.DEFINE_integer('history_length', 100, 'Characters the model reads before predicting one.')
flags.DEFINE_integer('generation_length', 100, 'Characters to write after the start string.')
flags.DEFINE_string('start_string', 'R', 'Text the writer starts from.')
flags.DEFINE_enum('task_type', 'training', ['training', 'generation'],
                  'Train a model, or write with a trained one.')
flags.DEFINE_string('text_path', 'data/shakespeare.txt', 'The training text (UTF-8).')
flags.DEFINE_integer('windows_per_epoch', 0, 'Train on this many random windows per epoch (0: all).')

GRADIENT_CLIP_NORM = 1.0
RNN_MODULES = {
    'gru': GRUCell,
    'lstm': LSTMCell,
    'peepholed_lstm': PeepholedLSTMCell,
    'coupled_lstm': CoupledLSTMCell,
}


class SentenceGeneration(nn.Module):
    """Embedding -> recurrent cell over the history -> logits for the next character."""

    def __init__(self, vocabulary_size: int, embedding_dim: int, rnn_module, hidden_size: int,
                 bias: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn_model = rnn_module(embedding_dim, hidden_size, bias=bias)
        self.classifier = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, history: torch.Tensor, state=None):
        """history [B, T] ids; state None (zeros) or the state a previous call returned.

        Returns (logits [B, vocabulary_size] for the character after the history, state), so
        feeding a text in pieces, carrying the state, equals feeding it whole.
        """
        if history.size(1) == 0 and state is None:
            raise ValueError('an empty history needs a state to predict from')
        embedded = self.embedding(history)  # [B, T, E]
        for t in range(history.size(1)):
            state = self.rnn_model(embedded[:, t], state)
        hidden = state[0] if isinstance(state, tuple) else state  # [B, H]; (h, c) for LSTMs
        return self.classifier(hidden), state                     # [B, V]


def sample_next_char_id(predicted_logits: torch.Tensor):
    """Draw the next character's id from softmax(predicted_logits).

    predicted_logits: [V] or [1, V] -> an int; [B, V] -> a LongTensor [B].
    """
    next_char_id = torch.distributions.Categorical(logits=predicted_logits).sample()
    return next_char_id.item() if next_char_id.numel() == 1 else next_char_id


def generate(model: SentenceGeneration, vocabulary: Sequence[str], start_string: str, length: int,
             device=None) -> str:
    """start_string followed by `length` sampled characters; the model must be on `device`."""
    if not start_string:
        raise ValueError('the start string must not be empty: the model needs a history')
    index = {ch: i for i, ch in enumerate(vocabulary)}
    unknown = sorted(set(start_string) - set(index))
    if unknown:
        raise ValueError(f'characters not in the vocabulary: {unknown}')
    device = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    chars = []
    with torch.no_grad():
        history = torch.tensor([[index[ch] for ch in start_string]], device=device)  # [1, L]
        logits, state = model(history)                                             # [1, V]
        for _ in range(length):
            next_id = sample_next_char_id(logits)
            chars.append(vocabulary[next_id])
            if len(chars) < length:  # one step per new character, never the whole history again
                logits, state = model(torch.tensor([[next_id]], device=device), state)
    model.train(was_training)
    return start_string + ''.join(chars)


def window_batches(dataset: ShakespeareDataset, batch_size: int, windows: Optional[int] = None,
                   generator: Optional[torch.Generator] = None):
    """Shuffled batches (histories [B, T], next ids [B]) drawn from the dataset's windows.

    Sliced straight from the encoded text: per-item Dataset calls would cost more than a small
    model's step.
    """
    starts = torch.randperm(len(dataset), generator=generator)
    if windows is not None:
        starts = starts[:windows]
    all_windows = dataset.ids.unfold(0, dataset.history_length, 1)  # [N - T + 1, T], a view
    for begin in range(0, len(starts), batch_size):
        batch = starts[begin:begin + batch_size]
        yield all_windows[batch], dataset.ids[batch + dataset.history_length]


def train_language_model(dataset: ShakespeareDataset, rnn_module: str, *, embedding_dim: int = 50,
                         hidden_size: int = 50, bias: bool = False, learning_rate: float = 1e-3,
                         weight_decay: float = 0.0, batch_size: int = 2048, epochs: int = 20,
                         experiment_dir: str = 'exp', device=None,
                         windows_per_epoch: Optional[int] = None, seed: Optional[int] = None) -> dict:
    """Train a SentenceGeneration model; <experiment_dir>/best_model.pt holds the epoch with
    the lowest mean training loss as {'model': state_dict, 'vocabulary': [...], ...}.

    Returns {'loss': [mean loss per epoch], 'epoch_seconds': [...], 'windows_per_epoch', 'model'}.
    """
    if device is None:
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if seed is not None:
        torch.manual_seed(seed)
    # the window order has its own generator, drawn from torch's: torch.manual_seed fixes it
    order = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(2**62, ())))
    vocabulary = dataset.get_vocabulary()
    model = SentenceGeneration(len(vocabulary), embedding_dim, RNN_MODULES[rnn_module], hidden_size,
                               bias=bias).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()
    windows = min(windows_per_epoch or len(dataset), len(dataset))

    os.makedirs(experiment_dir, exist_ok=True)
    writer = SummaryWriter(log_dir=experiment_dir)
    history = {'loss': [], 'epoch_seconds': [], 'windows_per_epoch': windows, 'model': model}
    best_loss, step = float('inf'), 0
    for epoch in tqdm(range(epochs), desc='epochs'):
        model.train()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        loss_sum = 0.0
        for histories, targets in window_batches(dataset, batch_size, windows, order):
            histories, targets = histories.to(device), targets.to(device)
            logits, _ = model(histories)         # [B, V]
            loss = criterion(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP_NORM)  # 100-step chains
            optimizer.step()
            loss_sum += loss.item() * targets.numel()  # .item() also waits for the GPU
            writer.add_scalar('train/batch_loss', loss.item(), step)
            step += 1
        history['epoch_seconds'].append(time.perf_counter() - started)
        history['loss'].append(loss_sum / windows)
        writer.add_scalar('train/loss', history['loss'][-1], epoch)
        if history['loss'][-1] < best_loss:
            best_loss = history['loss'][-1]
            torch.save({'model': model.state_dict(), 'vocabulary': vocabulary, 'epoch': epoch,
                        'loss': best_loss}, os.path.join(experiment_dir, 'best_model.pt'))
        tqdm.write(f'epoch {epoch}: loss {history["loss"][-1]:.4f}, '
                   f'{history["epoch_seconds"][-1]:.1f} s for {windows} windows')
    writer.close()
    return history


def shakespeare_trainer() -> dict:
    """Train on FLAGS.text_path with the flags' settings; returns the history."""
    dataset = ShakespeareDataset(FLAGS.text_path, FLAGS.history_length)
    print(f'{len(dataset.ids)} characters of text, vocabulary of {len(dataset.get_vocabulary())}')
    return train_language_model(dataset, FLAGS.rnn_module, embedding_dim=FLAGS.embedding_dim,
                                hidden_size=FLAGS.hidden_size, learning_rate=FLAGS.learning_rate,
                                weight_decay=FLAGS.weight_decay, batch_size=FLAGS.batch_size,
                                epochs=FLAGS.epochs, experiment_dir=FLAGS.experiment_name,
                                windows_per_epoch=FLAGS.windows_per_epoch or None)


def shakespeare_writer() -> str:
    """Load FLAGS.model_checkpoint and write FLAGS.generation_length characters after
    FLAGS.start_string; returns the start string followed by the new text."""
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    # the checkpoint holds a state_dict and a list of str: safe to load with weights_only
    checkpoint = torch.load(FLAGS.model_checkpoint, map_location=device, weights_only=True)
    vocabulary = checkpoint['vocabulary']
    model = SentenceGeneration(len(vocabulary), FLAGS.embedding_dim, RNN_MODULES[FLAGS.rnn_module],
                               FLAGS.hidden_size).to(device)
    model.load_state_dict(checkpoint['model'])
    model.eval()
    return generate(model, vocabulary, FLAGS.start_string, FLAGS.generation_length, device)


def main(unused_argv):
    if FLAGS.task_type == 'training':
        shakespeare_trainer()
    elif FLAGS.task_type == 'generation':
        print(shakespeare_writer())
    else:
        raise ValueError(f'unknown task_type {FLAGS.task_type}')


if __name__ == '__main__':
    app.run(main)
