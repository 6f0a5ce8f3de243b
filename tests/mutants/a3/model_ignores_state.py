# cell: char_model
# loses: test_char_model
# forward never passes the given state to the recurrent layer: every call starts from zeros.
class CharModel(nn.Module):
    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embedding_dim=32, head_hidden=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = self.CELLS[cell](embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, head_hidden), nn.ReLU()) if head_hidden else None
        self.fc = nn.Linear(head_hidden or hidden_size, vocab_size)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embedding(x))
        if self.head is not None:
            out = self.head(out)
        return self.fc(out), state
