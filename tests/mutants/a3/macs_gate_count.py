# cell: macs_per_step
# loses: test_macs_per_step
# Gate counts swapped: 3 blocks for the LSTM and 4 for the GRU.
def macs_per_step(model):
    blocks = {nn.RNN: 1, nn.GRU: 4, nn.LSTM: 3}
    total = 0
    for module in model.modules():
        if type(module) in blocks:
            for layer in range(module.num_layers):
                d = module.input_size if layer == 0 else module.hidden_size
                total += blocks[type(module)] * module.hidden_size * (d + module.hidden_size)
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
    return int(total)
