# cell: param_ratio
# loses: test_param_ratio
# Forgets the recurrent (hidden-to-hidden) matrix.
def recurrent_param_count(kind, input_size, hidden_size, biases=2):
    blocks = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    return blocks * (hidden_size * input_size + biases * hidden_size)
