# cell: count_parameters
# loses: test_count_parameters
# Counts only trainable parameters (Keras' "Trainable params", not the total).
def count_parameters(model):
    table = {name: sum(p.numel() for p in child.parameters() if p.requires_grad)
             for name, child in model.named_children()}
    table["total"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return table
