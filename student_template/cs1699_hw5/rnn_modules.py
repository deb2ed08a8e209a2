"""Recurrent cells for CS1699 HW5 (starter code). GRUCell is given; write the LSTM cells.

Every cell takes one time step: `forward(x, prev_state)` with x [batch, input_size].
GRUCell's state is h [batch, hidden_size]; the LSTM-like cells' state is the pair (h, c),
each [batch, hidden_size], passed and returned as a tuple. prev_state=None means zeros.

Each gate owns a weight [hidden, hidden + input] applied to cat(prev_h, x), plus one bias
[hidden] when bias=True. At input 128, hidden 100, bias=True the cells have:
GRU 68,700; LSTM 91,600; peephole LSTM 121,600; coupled LSTM 68,700 parameters.

Do not use torch.nn.LSTMCell, torch.nn.GRUCell or any other built-in recurrent module.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RecurrentCell(nn.Module):
    """What all the cells share: sizes, gate parameters, init, repr and parameter count."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias

    def _gate(self, weight_name: str, bias_name: str) -> None:
        """Register a gate: weight [hidden, hidden + input] on cat(prev_h, x), bias [hidden]."""
        weight = torch.empty(self.hidden_size, self.hidden_size + self.input_size)
        self.register_parameter(weight_name, nn.Parameter(weight))
        if self.bias:
            self.register_parameter(bias_name, nn.Parameter(torch.empty(self.hidden_size)))
        else:
            # still an attribute (None), so forward can hand it to F.linear unconditionally
            self.register_parameter(bias_name, None)

    def zero_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.size(0), self.hidden_size)  # [B, H], x's dtype and device

    def reset_parameters(self) -> None:
        # the classic RNN init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        return 'input_size={}, hidden_size={}, bias={}'.format(
            self.input_size, self.hidden_size, self.bias)

    def count_parameters(self) -> int:
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        print('Total Parameters: %d' % total)
        return total


class GRUCell(RecurrentCell):
    """Gated recurrent unit (given in the starter).

    z = sigmoid(W_z [h, x] + b_z),  r = sigmoid(W_r [h, x] + b_r)
    h~ = tanh(W [r * h, x] + b),    h' = (1 - z) * h + z * h~
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        self._gate('W_z', 'b_z')  # update gate
        self._gate('W_r', 'b_r')  # reset gate
        self._gate('W', 'b')      # candidate state
        self.reset_parameters()

    def forward(self, x: torch.Tensor, prev_state: torch.Tensor = None) -> torch.Tensor:
        prev_h = self.zero_state(x) if prev_state is None else prev_state  # [B, H]
        hx = torch.cat([prev_h, x], dim=1)                                 # [B, H + I]
        z = torch.sigmoid(F.linear(hx, self.W_z, self.b_z))                # [B, H]
        r = torch.sigmoid(F.linear(hx, self.W_r, self.b_r))                # [B, H]
        h_tilde = torch.tanh(F.linear(torch.cat([r * prev_h, x], dim=1), self.W, self.b))
        return (1 - z) * prev_h + z * h_tilde                              # [B, H]


def _lstm_state(cell: RecurrentCell, x: torch.Tensor, prev_state):
    """(h, c) from prev_state, zeros when None; a lone tensor is a GRU state: refuse it."""
    if prev_state is None:
        return cell.zero_state(x), cell.zero_state(x)
    if not isinstance(prev_state, (tuple, list)) or len(prev_state) != 2:
        raise TypeError(f'{type(cell).__name__} expects prev_state = (h, c) or None, '
                        f'got {type(prev_state).__name__}')
    return prev_state[0], prev_state[1]


class LSTMCell(RecurrentCell):
    """Long short-term memory with input, forget and output gates (see the blog post's
    "Variants on Long Short Term Memory" section for the equations)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        # TODO: register one weight [hidden, hidden + input] per gate and the candidate cell
        # state with self._gate(weight_name, bias_name), then call self.reset_parameters().
        raise NotImplementedError

    def forward(self, x: torch.Tensor, prev_state=None):
        # TODO: prev_state is None or (h, c); return the new (h, c) as a tuple.
        # _lstm_state(self, x, prev_state) turns None into zeros.
        raise NotImplementedError


class PeepholedLSTMCell(RecurrentCell):
    """LSTM whose gates also look at the cell state: the forget and input gates see the
    previous cell state c, the output gate the new one c', each through a full
    [hidden, hidden] matrix (no extra bias)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        # TODO
        raise NotImplementedError

    def forward(self, x: torch.Tensor, prev_state=None):
        # TODO: return (h, c)
        raise NotImplementedError


class CoupledLSTMCell(RecurrentCell):
    """LSTM with coupled forget and input gates: the input gate is 1 - forget gate."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        # TODO
        raise NotImplementedError

    def forward(self, x: torch.Tensor, prev_state=None):
        # TODO: return (h, c)
        raise NotImplementedError
