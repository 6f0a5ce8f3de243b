# cell: row_rnn
# loses: test_row_rnn
# mistake: image read column by column
@@
-        outputs, _ = self.rnn(x.reshape(len(x), 28, 28))     # (N, 28 steps, hidden)
+        outputs, _ = self.rnn(x.reshape(len(x), 28, 28).transpose(1, 2))     # (N, 28 steps, hidden)
