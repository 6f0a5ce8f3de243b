# cell: model_size_bytes
# loses: test_model_size
# Reports bits instead of bytes.
def model_size_bytes(model):
    tensors = list(model.parameters()) + list(model.buffers())
    return int(sum(t.numel() * t.element_size() * 8 for t in tensors))
