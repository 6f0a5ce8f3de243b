# cell: row_rnn
# loses: test_row_rnn
# mistake: image read column by column
class RowRNN(nn.Module):
    """Read an image row by row with a recurrent layer; classify from the last step.

    Args:
        cell: "rnn", "lstm" or "gru".
        hidden_size: units of the recurrent layer.
        num_layers: stacked recurrent layers.
    forward(x): x float (N, 28, 28) -> logits (N, 10).
    """

    def __init__(self, cell, hidden_size, num_layers=1):
        super().__init__()
        layers = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        if cell.lower() not in layers:
            raise ValueError(f"cell must be 'rnn', 'lstm' or 'gru', not {cell!r}")
        self.rnn = layers[cell.lower()](28, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 10)

    def forward(self, x):
        outputs, _ = self.rnn(x.reshape(len(x), 28, 28).transpose(1, 2))     # (N, 28 steps, hidden)
        return self.fc(outputs[:, -1])
