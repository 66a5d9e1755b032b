"""How rules and model become one calibrated score per category.

For category *c*, with ``p`` the head's probability and ``e`` the rule evidence (the noisy-OR
of the weights of the distinct rules of *c* that fired, see ``classifiers.text.rules``)::

    score_c = sigmoid(a_c * logit(p) + b_c * e + d_c)

``a``, ``b`` and ``d`` are fitted per category on the validation split (templates never seen
in training) by minimising the log-loss: a Platt / temperature scaling of the model
(``1/a`` is the temperature) in which the rules are one more input. The rules thus add to
the score only as much as they earned on held-out data, and the result is a probability an
analyst can read as one. With no rule hits (``e = 0``) it reduces to temperature scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Per-category coefficients (``a`` model, ``b`` rules, ``d`` bias), arrays of length C."""

    a: np.ndarray
    b: np.ndarray
    d: np.ndarray

    @classmethod
    def identity(cls, n: int) -> Calibrator:
        """Model probability unchanged, rules ignored: the starting point of :meth:`fit`."""
        return cls(np.ones(n), np.zeros(n), np.zeros(n))

    def apply(self, model_prob: np.ndarray, rule_evidence: np.ndarray) -> np.ndarray:
        """Calibrated scores, shape (n, C), from model probabilities and rule evidence."""
        z = self.a * logit(model_prob) + self.b * rule_evidence + self.d
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def fit(cls, model_prob: np.ndarray, rule_evidence: np.ndarray, labels: np.ndarray,
            l2: float = 1e-3) -> Calibrator:
        """Fit ``a, b, d`` per category by L-BFGS on the log-loss (tiny L2 keeps it finite
        when a category is perfectly separated on the validation split)."""
        x = torch.tensor(logit(model_prob), dtype=torch.float64)
        e = torch.tensor(rule_evidence, dtype=torch.float64)
        y = torch.tensor(labels, dtype=torch.float64)
        params = torch.zeros(3, x.shape[1], dtype=torch.float64)
        params[0] = 1.0
        params.requires_grad_(True)
        opt = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            z = params[0] * x + params[1] * e + params[2]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
            loss = loss + l2 * (params[:2] ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        a, b, d = params.detach().numpy()
        return cls(a.copy(), b.copy(), d.copy())

    def to_json(self) -> dict[str, list[float]]:
        return {"a": self.a.tolist(), "b": self.b.tolist(), "d": self.d.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> Calibrator:
        return cls(np.asarray(data["a"]), np.asarray(data["b"]), np.asarray(data["d"]))
