# cell: sentiment_model
# loses: test_sentiment_model
# Forgets the N(0, 0.001²) input kernel: PyTorch's default uniform initialisation stays.
class SentimentRNN(nn.Module):
    KINDS = ("rnn", "lstm", "gru")

    def __init__(self, kind="rnn", vocab_size=2000, embed_dim=50, hidden_size=5):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, not {kind!r}")
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](embed_dim, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x):
        outputs, _ = self.rnn(self.embedding(x))
        return self.fc(outputs[:, -1, :]).squeeze(-1)
