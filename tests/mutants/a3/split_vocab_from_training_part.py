# cell: train_val_windows
# loses: test_train_val_windows
# Builds the vocabulary from the training part only and skips unknown validation characters.
@@
-    chars, stoi = build_vocab(text)
-    boundary = int(len(text) * (1 - val_fraction))
-    train = make_windows(encode(text[:boundary], stoi), seq_len)
-    val = make_windows(encode(text[boundary:], stoi), seq_len)
+    cut = int(len(text) * (1 - val_fraction))
+    chars, stoi = build_vocab(text[:cut])
+    val_text = "".join(ch for ch in text[cut:] if ch in stoi)
+    train = make_windows(encode(text[:cut], stoi), seq_len)
+    val = make_windows(encode(val_text, stoi), seq_len)
