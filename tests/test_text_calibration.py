"""Calibration: the combination of rules and model yields probabilities that mean what they say."""

from __future__ import annotations

import json

import numpy as np

from classifiers.text.combine import Calibrator, logit

RNG = np.random.default_rng(7)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (p >= lo) & (p < hi) if hi < 1 else (p >= lo)
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return total


def overconfident(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model whose logits are 3x too large, and a rule that fires on half the positives."""
    true_logit = RNG.normal(0, 1.5, size=(n, 2))
    y = (RNG.random((n, 2)) < 1 / (1 + np.exp(-true_logit))).astype(float)
    model_prob = 1 / (1 + np.exp(-3 * true_logit))
    rule = ((y > 0) & (RNG.random((n, 2)) < 0.5)).astype(float) * 0.6
    return model_prob, rule, y


def test_calibration_fixes_an_overconfident_model():
    p, e, y = overconfident(4000)
    cal = Calibrator.fit(p[:2000], e[:2000], y[:2000])
    after = cal.apply(p[2000:], e[2000:])
    for j in range(2):
        assert (expected_calibration_error(after[:, j], y[2000:, j])
                < expected_calibration_error(p[2000:, j], y[2000:, j]) / 2)
    assert np.all(cal.a < 0.6)  # learnt a temperature of about 3
    assert np.all(cal.b > 0)    # and that the rule carries information


def test_identity_calibration_changes_nothing():
    p, e, _ = overconfident(50)
    assert np.allclose(Calibrator.identity(2).apply(p, e), np.clip(p, 1e-6, 1 - 1e-6))
    assert np.allclose(1 / (1 + np.exp(-logit(p))), np.clip(p, 1e-6, 1 - 1e-6))


def test_calibrator_round_trips_through_json():
    p, e, y = overconfident(300)
    cal = Calibrator.fit(p, e, y)
    again = Calibrator.from_json(json.loads(json.dumps(cal.to_json())))
    assert np.allclose(cal.apply(p, e), again.apply(p, e))


def test_the_shipped_model_beats_the_rules_alone_on_the_independent_set():
    from classifiers.text.artefacts import DEFAULT_MODEL_DIR

    metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    scorers = metrics["independent"]["scorers"]
    kept = scorers[metrics["kept"]]
    assert kept["macro_f1"]["all"] > scorers["rules_only"]["macro_f1"]["all"]
    assert metrics["kept"] in {"frozen", "finetuned"}
