import torch
import torch.nn as nn
from absl import app, flags

from rnn_modules import CoupledLSTMCell, GRUCell, LSTMCell, PeepholedLSTMCell

FLAGS = flags.FLAGS
flags.DEFINE_integer('embedding_dim', 128, 'Dimensionality for word embeddings.')
flags.DEFINE_integer('hidden_size', 100, 'Dimensionality for recurrent neuron.')

PADDING_TOKEN = 0
RNN_MODULES = {'gru': GRUCell, 'lstm': LSTMCell, 'peepholed_lstm': PeepholedLSTMCell, 'coupled_lstm': CoupledLSTMCell}


class SentimentClassification(nn.Module):
    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, bias=False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=PADDING_TOKEN)
        self.rnn_model = rnn_module(input_size=embedding_dim, hidden_size=hidden_size, bias=bias)
        self.classifier = nn.Linear(hidden_size, 2)

    def forward(self, batch_reviews, batch_lengths):
        data = self.embedding(batch_reviews)
        state, outputs = None, []
        for step in range(data.shape[1]):
            state = self.rnn_model(data[:, step, :], state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        outputs = torch.stack(outputs, dim=1)
        last = outputs[torch.arange(data.shape[0]), batch_lengths - 1, :]  # SENT-LAST
        return self.classifier(last)


def main(argv):
    pass


if __name__ == '__main__':
    app.run(main)
