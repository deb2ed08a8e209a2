"""Recurrent cells for CS1699 HW5 (2020; parts C/D of CS1678 HW3 in 2024), built from scratch.

Every cell takes one time step: `forward(x, prev_state)` with x [batch, input_size].
GRUCell's state is h [batch, hidden_size]; the LSTM-like cells' state is the pair (h, c),
each [batch, hidden_size], passed and returned as a tuple. prev_state=None means zeros.

Each gate owns a weight [hidden, hidden + input] applied to cat(prev_h, x), plus one bias
[hidden] when bias=True. At input 128, hidden 100, bias=True the cells have:
GRU 68,700; LSTM 91,600; peephole LSTM 121,600; coupled LSTM 68,700 parameters.
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
    """Long short-term memory with input, forget and output gates.

    f = sigmoid(W_f [h, x] + b_f),  i = sigmoid(W_i [h, x] + b_i),  o = sigmoid(W_o [h, x] + b_o)
    c~ = tanh(W_c [h, x] + b_c),    c' = f * c + i * c~,             h' = o * tanh(c')
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        self._gate('W_f', 'b_f')  # forget gate
        self._gate('W_i', 'b_i')  # input gate
        self._gate('W_o', 'b_o')  # output gate
        self._gate('W_c', 'b_c')  # candidate cell state
        self.reset_parameters()

    def forward(self, x: torch.Tensor, prev_state=None):
        prev_h, prev_c = _lstm_state(self, x, prev_state)                  # [B, H] each
        hx = torch.cat([prev_h, x], dim=1)                                 # [B, H + I]
        f = torch.sigmoid(F.linear(hx, self.W_f, self.b_f))                # [B, H]
        i = torch.sigmoid(F.linear(hx, self.W_i, self.b_i))
        o = torch.sigmoid(F.linear(hx, self.W_o, self.b_o))
        c_tilde = torch.tanh(F.linear(hx, self.W_c, self.b_c))
        c = f * prev_c + i * c_tilde                                       # [B, H]
        h = o * torch.tanh(c)
        return h, c


class PeepholedLSTMCell(RecurrentCell):
    """LSTM whose gates also look at the cell state ("peephole connections").

    The forget and input gates see the previous cell state c, the output gate the new one
    c', each through a full [hidden, hidden] matrix (P_f, P_i, P_o), no extra bias.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        self._gate('W_f', 'b_f')
        self._gate('W_i', 'b_i')
        self._gate('W_o', 'b_o')
        self._gate('W_c', 'b_c')
        for name in ('P_f', 'P_i', 'P_o'):
            self.register_parameter(name, nn.Parameter(torch.empty(hidden_size, hidden_size)))
        self.reset_parameters()

    def forward(self, x: torch.Tensor, prev_state=None):
        prev_h, prev_c = _lstm_state(self, x, prev_state)
        hx = torch.cat([prev_h, x], dim=1)                                          # [B, H + I]
        f = torch.sigmoid(F.linear(hx, self.W_f, self.b_f) + F.linear(prev_c, self.P_f))
        i = torch.sigmoid(F.linear(hx, self.W_i, self.b_i) + F.linear(prev_c, self.P_i))
        c = f * prev_c + i * torch.tanh(F.linear(hx, self.W_c, self.b_c))           # [B, H]
        # the output gate peeks at the updated cell state, as in Gers & Schmidhuber
        o = torch.sigmoid(F.linear(hx, self.W_o, self.b_o) + F.linear(c, self.P_o))
        h = o * torch.tanh(c)
        return h, c


class CoupledLSTMCell(RecurrentCell):
    """LSTM with coupled forget and input gates: what is forgotten is replaced, i = 1 - f."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False):
        super().__init__(input_size, hidden_size, bias)
        self._gate('W_f', 'b_f')
        self._gate('W_o', 'b_o')
        self._gate('W_c', 'b_c')
        self.reset_parameters()

    def forward(self, x: torch.Tensor, prev_state=None):
        prev_h, prev_c = _lstm_state(self, x, prev_state)
        hx = torch.cat([prev_h, x], dim=1)                                 # [B, H + I]
        f = torch.sigmoid(F.linear(hx, self.W_f, self.b_f))                # [B, H]
        o = torch.sigmoid(F.linear(hx, self.W_o, self.b_o))
        c_tilde = torch.tanh(F.linear(hx, self.W_c, self.b_c))
        c = f * prev_c + (1 - f) * c_tilde
        h = o * torch.tanh(c)
        return h, c
