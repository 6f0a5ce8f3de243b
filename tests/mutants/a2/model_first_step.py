# cell: sentiment_model
# loses: test_sentiment_model
# Classifies from the first time step's output instead of the last.
@@
-        return self.fc(outputs[:, -1, :]).squeeze(-1)  # squeeze(-1), not squeeze(): keeps B = 1
+        return self.fc(outputs[:, 0, :]).squeeze(-1)
