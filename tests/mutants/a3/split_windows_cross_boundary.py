# cell: train_val_windows
# loses: test_train_val_windows
# Makes the windows of the whole text, then splits the list of windows: the first validation
# windows start in the training text.
@@
-    boundary = int(len(text) * (1 - val_fraction))
-    train = make_windows(encode(text[:boundary], stoi), seq_len)
-    val = make_windows(encode(text[boundary:], stoi), seq_len)
-    return chars, stoi, train, val
+    X, y = make_windows(encode(text, stoi), seq_len)
+    n_train = int(len(X) * (1 - val_fraction))
+    return chars, stoi, (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])
