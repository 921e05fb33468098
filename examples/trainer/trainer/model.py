"""A tiny multi-layer perceptron with weights as plain lists of floats."""

import math
import random


class MLP:
    """ReLU hidden layers, softmax output, trained with plain SGD."""

    def __init__(self, sizes, seed):
        rng = random.Random(seed)
        self.sizes = tuple(sizes)
        self.layers = []
        for fan_in, fan_out in zip(self.sizes, self.sizes[1:]):
            std = math.sqrt(2.0 / fan_in)  # He initialisation
            weights = [[rng.gauss(0.0, std) for _ in range(fan_in)] for _ in range(fan_out)]
            self.layers.append((weights, [0.0] * fan_out))

    @property
    def n_params(self):
        return sum(len(w) * len(w[0]) + len(b) for w, b in self.layers)

    def forward(self, x):
        """Return the activations of every layer; the last one holds the logits."""
        activations = [x]
        last = len(self.layers) - 1
        for k, (weights, bias) in enumerate(self.layers):
            out = [sum(w * v for w, v in zip(row, x)) + b for row, b in zip(weights, bias)]
            if k != last:
                out = [v if v > 0.0 else 0.0 for v in out]
            activations.append(out)
            x = out
        return activations

    def train_step(self, xs, ys, lr):
        """One SGD step on a batch; return the mean cross-entropy before the update."""
        loss = 0.0
        grads = [([[0.0] * len(row) for row in weights], [0.0] * len(bias)) for weights, bias in self.layers]
        for x, y in zip(xs, ys):
            acts = self.forward(x)
            logits = acts[-1]
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            total = sum(exps)
            probs = [e / total for e in exps]
            loss -= math.log(max(probs[y], 1e-12))
            delta = probs
            delta[y] -= 1.0
            for k in range(len(self.layers) - 1, -1, -1):
                weights, _ = self.layers[k]
                gw, gb = grads[k]
                inp = acts[k]
                for i, d in enumerate(delta):
                    if d:
                        gb[i] += d
                        row = gw[i]
                        for j, v in enumerate(inp):
                            row[j] += d * v
                if k:
                    back = [0.0] * len(inp)
                    for i, d in enumerate(delta):
                        if d:
                            for j, w in enumerate(weights[i]):
                                back[j] += d * w
                    delta = [b if a > 0.0 else 0.0 for b, a in zip(back, inp)]
        scale = lr / len(xs)
        for (weights, bias), (gw, gb) in zip(self.layers, grads):
            for row, grow in zip(weights, gw):
                for j, g in enumerate(grow):
                    row[j] -= scale * g
            for i, g in enumerate(gb):
                bias[i] -= scale * g
        return loss / len(xs)
