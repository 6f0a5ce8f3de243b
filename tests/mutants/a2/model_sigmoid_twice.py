# cell: sentiment_model
# loses: test_sentiment_model
# Keras habit: a sigmoid in the model although BCEWithLogitsLoss applies one again.
@@
-        return self.fc(outputs[:, -1, :]).squeeze(-1)  # squeeze(-1), not squeeze(): keeps B = 1
+        return torch.sigmoid(self.fc(outputs[:, -1, :])).squeeze(-1)
