# cell: small_cnn
# loses: test_small_cnn
# mistake: conv1_filters ignored
class SmallCNN(nn.Module):
    """conv1 (conv1_filters 5x5 filters) -> ReLU -> max-pool 2 -> ... -> 10 logits.

    Args:
        conv1_filters: number of first-layer filters (32 in this assignment).
        conv2_filters, hidden, dropout: the rest of the network (free to tune).
    forward(x): x float (N, 1, 32, 32) -> logits (N, 10).
    """

    def __init__(self, conv1_filters=32, conv2_filters=16, hidden=32, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)       # 5x5, output 32x32
        self.conv2 = nn.Conv2d(32, conv2_filters, 3, padding=1)
        self.fc1 = nn.Linear(conv2_filters * 8 * 8, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)     # (N, conv1_filters, 16, 16)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)     # (N, conv2_filters, 8, 8)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)
