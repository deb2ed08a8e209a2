# A correct 2020-form submission in plain student style. Tests derive broken cells from it
# by replacing one marked line at a time.
import torch
import torch.nn as nn
import torch.nn.functional as F


class GRUCell(nn.Module):
    """Given with the starter."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.W_z = nn.Parameter(torch.Tensor(hidden_size, hidden_size + input_size))
        self.W_r = nn.Parameter(torch.Tensor(hidden_size, hidden_size + input_size))
        self.W = nn.Parameter(torch.Tensor(hidden_size, hidden_size + input_size))
        for name in ("b_z", "b_r", "b"):
            if bias:
                setattr(self, name, nn.Parameter(torch.Tensor(hidden_size)))
            else:
                self.register_parameter(name, None)
        self.reset_parameters()

    def forward(self, x, prev_state):
        prev_h = torch.zeros(x.shape[0], self.hidden_size) if prev_state is None else prev_state
        concat = torch.cat((prev_h, x), dim=1)
        z = torch.sigmoid(F.linear(concat, self.W_z, self.b_z))
        r = torch.sigmoid(F.linear(concat, self.W_r, self.b_r))
        h_tilde = torch.tanh(F.linear(torch.cat((r * prev_h, x), dim=1), self.W, self.b))
        return (1 - z) * prev_h + z * h_tilde

    def reset_parameters(self):
        bound = (1.0 / self.hidden_size) ** 0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def count_parameters(self):
        print('Total Parameters: %d' % sum(p.numel() for p in self.parameters() if p.requires_grad))


class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size, bias=False):  # LSTM-SIGNATURE
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.forget_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)  # LSTM-FORGET
        self.input_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.output_gate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.candidate = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.reset_parameters()

    def forward(self, x, prev_state):
        if prev_state is None:  # LSTM-STATE
            zeros = torch.zeros(x.shape[0], self.hidden_size)
            prev_state = (zeros, zeros)
        prev_h, prev_c = prev_state
        concat = torch.cat((prev_h, x), dim=1)
        f = torch.sigmoid(self.forget_gate(concat))  # LSTM-F
        i = torch.sigmoid(self.input_gate(concat))
        o = torch.sigmoid(self.output_gate(concat))
        c_tilde = torch.tanh(self.candidate(concat))
        c = f * prev_c + i * c_tilde  # LSTM-C
        h = o * torch.tanh(c)  # LSTM-H
        return h, c

    def reset_parameters(self):
        bound = (1.0 / self.hidden_size) ** 0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def count_parameters(self):
        print('Total Parameters: %d' % sum(p.numel() for p in self.parameters() if p.requires_grad))


class PeepholedLSTMCell(nn.Module):
    """Forget and input gates see c_{t-1}; the output gate sees c_t."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gate = lambda extra: nn.Linear(extra * hidden_size + input_size, hidden_size, bias=bias)
        self.f, self.i, self.o, self.g = gate(2), gate(2), gate(2), gate(1)  # PEEP-GATES
        self.reset_parameters()

    def forward(self, x, prev_state):
        if prev_state is None:
            zeros = torch.zeros(x.shape[0], self.hidden_size)
            prev_state = (zeros, zeros)
        h, c = prev_state
        f = torch.sigmoid(self.f(torch.cat((c, h, x), 1)))
        i = torch.sigmoid(self.i(torch.cat((c, h, x), 1)))
        c_new = f * c + i * torch.tanh(self.g(torch.cat((h, x), 1)))  # PEEP-CANDIDATE
        o = torch.sigmoid(self.o(torch.cat((c_new, h, x), 1)))
        return o * torch.tanh(c_new), c_new

    def reset_parameters(self):
        bound = (1.0 / self.hidden_size) ** 0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def count_parameters(self):
        print('Total Parameters: %d' % sum(p.numel() for p in self.parameters() if p.requires_grad))


class CoupledLSTMCell(nn.Module):
    """The input gate is 1 - forget gate."""

    def __init__(self, input_size, hidden_size, bias=False):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.f = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.o = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.g = nn.Linear(hidden_size + input_size, hidden_size, bias=bias)
        self.reset_parameters()

    def forward(self, x, prev_state):
        if prev_state is None:
            zeros = torch.zeros(x.shape[0], self.hidden_size)
            prev_state = (zeros, zeros)
        h, c = prev_state
        hx = torch.cat((h, x), 1)
        f = torch.sigmoid(self.f(hx))
        c = f * c + (1 - f) * torch.tanh(self.g(hx))
        return torch.sigmoid(self.o(hx)) * torch.tanh(c), c

    def reset_parameters(self):
        bound = (1.0 / self.hidden_size) ** 0.5
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def count_parameters(self):
        print('Total Parameters: %d' % sum(p.numel() for p in self.parameters() if p.requires_grad))
