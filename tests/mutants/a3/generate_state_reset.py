# cell: generate
# loses: test_generate
# Feeds each new character with a fresh (zero) state: the model only ever sees one character of context.
@@
-            logits, state = model(torch.tensor([[idx]], dtype=torch.long, device=device), state)
+            logits, state = model(torch.tensor([[idx]], dtype=torch.long, device=device))
