import torch
import torch.nn as nn
from absl import app, flags
from torch.distributions import categorical

from rnn_modules import CoupledLSTMCell, GRUCell, LSTMCell, PeepholedLSTMCell

FLAGS = flags.FLAGS
flags.DEFINE_string('model_checkpoint', '', 'Checkpoint to generate from.')
flags.DEFINE_integer('embedding_dim', 50, 'Dimensionality for character embeddings.')
flags.DEFINE_integer('hidden_size', 50, 'Dimensionality for recurrent neuron.')
flags.DEFINE_enum('rnn_module', 'gru', ['lstm', 'gru', 'peepholed_lstm', 'coupled_lstm'], 'Recurrent module.')
flags.DEFINE_integer('generation_length', 100, 'Number of characters to generate.')
flags.DEFINE_string('start_string', 'R', 'Start string for generation.')

RNN_MODULES = {'gru': GRUCell, 'lstm': LSTMCell, 'peepholed_lstm': PeepholedLSTMCell, 'coupled_lstm': CoupledLSTMCell}


class SentenceGeneration(nn.Module):
    def __init__(self, vocabulary_size, embedding_dim, rnn_module, hidden_size, bias=False):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.rnn_model = rnn_module(input_size=embedding_dim, hidden_size=hidden_size, bias=bias)
        self.classifier = nn.Linear(hidden_size, vocabulary_size)

    def forward(self, history, state=None):
        data = self.embedding(history)
        for step in range(data.shape[1]):
            state = self.rnn_model(data[:, step, :], state)  # GEN-STEP
        h = state[0] if isinstance(state, tuple) else state
        return self.classifier(h), state


def sample_next_char_id(predicted_logits):
    return categorical.Categorical(logits=predicted_logits).sample()


def shakespeare_writer():
    checkpoint = torch.load(FLAGS.model_checkpoint, map_location='cpu', weights_only=True)
    vocabulary = checkpoint['vocabulary']
    char2index = {c: i for i, c in enumerate(vocabulary)}
    model = SentenceGeneration(len(vocabulary), FLAGS.embedding_dim, RNN_MODULES[FLAGS.rnn_module], FLAGS.hidden_size)
    model.load_state_dict(checkpoint['model'])
    model.eval()
    generated = []
    with torch.no_grad():
        logits, state = model(torch.tensor([[char2index[c] for c in FLAGS.start_string]]))
        for _ in range(FLAGS.generation_length):
            next_id = sample_next_char_id(logits)  # GEN-SAMPLE
            generated.append(vocabulary[int(next_id)])
            logits, state = model(next_id.view(1, 1), state)
    return FLAGS.start_string + ''.join(generated)


def main(argv):
    print(shakespeare_writer())


if __name__ == '__main__':
    app.run(main)
