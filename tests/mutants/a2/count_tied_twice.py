# cell: count_parameters
# loses: test_count_parameters
# Sums layer by layer, so a tensor shared by two layers is counted twice.
def count_parameters(model):
    table = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    table["total"] = sum(table.values())
    return table
