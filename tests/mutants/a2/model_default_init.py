# cell: sentiment_model
# loses: test_sentiment_model
# Forgets the N(0, 0.001²) input kernel: PyTorch's default uniform initialisation stays.
@@
         self.fc = nn.Linear(hidden_size, 1)
-        nn.init.normal_(self.rnn.weight_ih_l0, mean=0.0, std=0.001)
