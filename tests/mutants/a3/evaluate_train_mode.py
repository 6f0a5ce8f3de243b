# cell: evaluate
# loses: test_evaluate
# Never switches to eval mode: dropout stays on while evaluating.
@@
-    model.eval()
