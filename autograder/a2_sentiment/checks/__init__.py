"""Hidden checks for a2_sentiment, as units of the trusted-verdict harness (``harness``),
one module per part of the notebook: ``data`` (pad_sequences, the vocabulary), ``model``
(SentimentRNN, count_parameters, recurrent_param_count), ``training`` (train_model/evaluate,
best_epoch/KeepBest) and ``plots`` (plot_history); ``common`` holds what they share.

One unit per grade cell; its entry point is what the notebook's hidden one-liner calls
(``check_pad_sequences(pad_sequences)``). Every check draws its inputs from the generator it
is given (random sequences, corpora, histories, toy data and weights, built to keep the
traps the checks are about: a validation tail that differs from the rest, logits in
(0, 0.5), words with equal counts, ...), names the probe in ``a2_sentiment.probes`` that
runs the student's code on them in the kernel, and judges the returned data here, against
``a2_sentiment.reference``. No reference code and no comparison ever runs in the student's kernel.
"""
from .data import check_pad_sequences, check_vocabulary, pad, vocab
from .model import check_count_parameters, check_param_ratio, check_sentiment_model, count, ratio, sentiment
from .plots import check_plot_history, plot
from .training import best, check_best_epoch, check_train_model, train

__all__ = ["check_pad_sequences", "check_vocabulary", "check_sentiment_model", "check_count_parameters",
           "check_param_ratio", "check_train_model", "check_best_epoch", "check_plot_history",
           "pad", "vocab", "sentiment", "count", "ratio", "train", "best", "plot"]
