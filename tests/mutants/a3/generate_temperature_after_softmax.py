# cell: generate
# loses: test_generate
# Divides the probabilities by the temperature after the softmax: multinomial renormalises, so the
# temperature has no effect at all.
@@
-                probs = torch.softmax(last / temperature, dim=-1)
+                probs = torch.softmax(last, dim=-1) / temperature
