# cell: abc_answers
# loses: test_abc_answers
# Right idea, wrong spelling: the answers must be exactly 'RNN', 'LSTM', 'GRU'.
@@
-# Reasoning: the tanh RNN barely leaves chance level; the GRU climbs fastest; the LSTM follows.
-A_model = 'RNN'
-B_model = 'GRU'
-C_model = 'LSTM'
+A_model, B_model, C_model = "rnn", "lstm", "gru"
