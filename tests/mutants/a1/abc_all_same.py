# cell: abc_answers
# loses: test_abc_answers
# The same answer for every curve: at most one can be right, whatever the key.
@@
-# Reasoning: the tanh RNN barely leaves chance level; the GRU climbs fastest; the LSTM follows.
-A_model = 'RNN'
-B_model = 'GRU'
-C_model = 'LSTM'
+A_model = B_model = C_model = "LSTM"
