# cell: macs_per_step
# loses: test_macs_per_step
# Every layer of a stack is charged the first layer's input size.
def macs_per_step(model):
    blocks = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}
    total = 0
    for module in model.modules():
        if type(module) in blocks:
            total += module.num_layers * blocks[type(module)] * module.hidden_size * (module.input_size + module.hidden_size)
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
    return int(total)
