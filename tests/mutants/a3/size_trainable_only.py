# cell: model_size_bytes
# loses: test_model_size
# Counts only trainable parameters (frozen parameters and buffers take memory too).
def model_size_bytes(model):
    return int(sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad))
