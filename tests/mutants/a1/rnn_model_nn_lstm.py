# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Uses torch.nn.LSTM/GRU/RNN instead of the cells (not allowed), and has no rnn_cell_list.
@@
-    MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
-
     def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
         super().__init__()
-        if mode not in self.MODES:
-            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
         self.mode = mode
-        self.input_size = input_size
-        self.hidden_size = hidden_size
-        self.num_layers = num_layers
-        self.bias = bias
-        self.output_size = output_size
-        self.rnn_cell_list = nn.ModuleList()
-        for layer in range(num_layers):
-            size_in = input_size if layer == 0 else hidden_size
-            if mode == "LSTM":
-                cell = LSTMCell(size_in, hidden_size, bias)
-            elif mode == "GRU":
-                cell = GRUCell(size_in, hidden_size, bias)
-            else:
-                cell = BasicRNNCell(size_in, hidden_size, bias, nonlinearity=mode[4:].lower())
-            self.rnn_cell_list.append(cell)
+        if mode == "LSTM":
+            self.rnn = nn.LSTM(input_size, hidden_size, num_layers, bias=bias, batch_first=True)
+        elif mode == "GRU":
+            self.rnn = nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=True)
+        else:
+            self.rnn = nn.RNN(input_size, hidden_size, num_layers, bias=bias, batch_first=True,
+                              nonlinearity="tanh" if mode == "RNN_TANH" else "relu")
@@
-        if hx is None:
-            states = [None] * self.num_layers
-        elif self.mode == "LSTM":
-            states = [(hx[0][l], hx[1][l]) for l in range(self.num_layers)]
-        else:
-            states = [hx[l] for l in range(self.num_layers)]
-        for t in range(input.size(1)):
-            x = input[:, t, :]
-            for l, cell in enumerate(self.rnn_cell_list):
-                states[l] = cell(x, states[l])
-                x = states[l][0] if self.mode == "LSTM" else states[l]
-        return self.fc(x)
+        out, _ = self.rnn(input, hx)
+        return self.fc(out[:, -1])
