# cell: generate
# loses: test_generate
# Takes the argmax whatever the temperature.
@@
-            if temperature == 0:
-                idx = int(last.argmax())
-            else:
-                probs = torch.softmax(last / temperature, dim=-1)
-                idx = int(torch.multinomial(probs, 1, generator=generator))
+            idx = int(last.argmax())
