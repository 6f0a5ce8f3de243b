"""Hidden checks for a3_char_lm, on the checks harness (see ``harness``), one module per
part of the notebook: ``data`` (build_vocab, encode/decode, make_windows,
train_val_windows), ``model`` (CharModel, macs_per_step, model_size_bytes) and ``metrics``
(accuracy, bits_per_char, evaluate, generate); ``common`` holds what they share.

Every check draws fresh inputs from the grader's ``rng``, asks a probe in
``a3_char_lm.probes`` to run the student's code on them (one torch thread: tiny models), and
judges the returned data here against ``a3_char_lm.reference`` with a message that says
what is wrong. The notebook's grade cells call the entry points, e.g.
``check_make_windows(make_windows)``.
"""
from .data import (check_build_vocab, check_encode_decode, check_make_windows, check_train_val_windows, codec_unit,
                   split_unit, vocab_unit, windows_unit)
from .metrics import (accuracy_unit, bpc_unit, check_accuracy, check_bits_per_char, check_evaluate, check_generate,
                      evaluate_unit, generate_unit)
from .model import check_char_model, check_macs_per_step, check_model_size, macs_unit, model_unit, size_unit

__all__ = ["check_build_vocab", "check_encode_decode", "check_make_windows", "check_train_val_windows",
           "check_char_model", "check_macs_per_step", "check_model_size", "check_accuracy", "check_bits_per_char",
           "check_evaluate", "check_generate", "vocab_unit", "codec_unit", "windows_unit", "split_unit",
           "model_unit", "macs_unit", "size_unit", "accuracy_unit", "bpc_unit", "evaluate_unit", "generate_unit"]
