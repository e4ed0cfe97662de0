"""The loss functions on tables of numbers (no model)."""

import math

import pytest
import torch

from prefloop_worker.train import objectives as O


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


# model_w, model_l, ref_w, ref_l, beta → inside = -½β((mw-ml)-(rw-rl))
DPO_TABLE = [
    (0.10, 0.10, 0.10, 0.10, 5000.0, 0.0),
    (0.09, 0.10, 0.10, 0.10, 5000.0, 25.0),  # winner improved by 0.01 → +½·5000·0.01
    (0.10, 0.11, 0.10, 0.10, 2000.0, 10.0),  # loser got worse
    (0.12, 0.10, 0.10, 0.10, 1000.0, -10.0),
    (0.50, 0.40, 0.45, 0.40, 100.0, -2.5),
]


@pytest.mark.parametrize("mw,ml,rw,rl,beta,inside", DPO_TABLE)
def test_dpo_inside_and_loss(mw, ml, rw, rl, beta, inside):
    terms = O.dpo_loss(t(mw), t(ml), t(rw), t(rl), beta)
    assert terms.inside.item() == pytest.approx(inside, abs=1e-9)
    assert terms.loss.item() == pytest.approx(math.log1p(math.exp(-inside)), abs=1e-9)
    assert (terms.reward_w - terms.reward_l).item() == pytest.approx(inside, abs=1e-9)


def test_dpo_mean_is_outside_the_sigmoid():
    mw, ml, rw, rl = t(0.09, 0.12), t(0.10, 0.10), t(0.10, 0.10), t(0.10, 0.10)
    terms = O.dpo_loss(mw, ml, rw, rl, 1000.0)  # insides +5 and -10
    expected = (math.log1p(math.exp(-5.0)) + math.log1p(math.exp(10.0))) / 2
    assert terms.loss.item() == pytest.approx(expected, rel=1e-12)
    wrong = -torch.nn.functional.logsigmoid(terms.inside.mean()).item()  # the old diffusers bug
    assert abs(terms.loss.item() - wrong) > 1.0


def test_implicit_accuracy_counts_ties_half():
    assert O.implicit_accuracy(t(1.0, -1.0, 0.0, 0.0)).item() == pytest.approx(0.5)
    assert O.implicit_accuracy(t(2.0, 3.0, 0.0, -1.0)).item() == pytest.approx(0.625)
    assert O.implicit_accuracy(t(0.0, 0.0)).item() == pytest.approx(0.5)


def test_zero_logits_when_policy_equals_reference():
    x = torch.rand(8, dtype=torch.float64)
    y = torch.rand(8, dtype=torch.float64)
    terms = O.dpo_loss(x, y, x.clone(), y.clone(), 5000.0)
    assert torch.equal(terms.inside, torch.zeros(8, dtype=torch.float64))
    assert terms.loss.item() == pytest.approx(math.log(2))


# model_w, model_l, beta, lambda → the NCP code's cpo: -logsigmoid(-½β(mw-ml)) (+ λ·mw)
CPO_TABLE = [
    (0.10, 0.10, 100.0, 0.0, math.log(2)),
    (0.10, 0.12, 200.0, 0.0, math.log1p(math.exp(-2.0))),
    (0.30, 0.20, 20.0, 0.5, math.log1p(math.exp(1.0)) + 0.15),
]


@pytest.mark.parametrize("mw,ml,beta,lam,loss", CPO_TABLE)
def test_cpo_reference(mw, ml, beta, lam, loss):
    terms = O.preference_loss("cpo", t(mw), t(ml), t(0.0), t(0.0), beta=beta, sft_weight=lam)
    assert terms.loss.item() == pytest.approx(loss, abs=1e-12)


def test_cpo_defaults_have_no_sft_term_and_the_dpo_temperature():
    # the NCP code: loss = -logsigmoid(-beta_dpo * model_diff), beta_dpo = ½β (its DPO uses the same beta_dpo)
    mw, ml, beta = 0.30, 0.20, 10.0
    expected = math.log1p(math.exp(0.5 * beta * (mw - ml)))
    assert O.preference_loss("cpo", t(mw), t(ml), t(0.0), t(0.0), beta=beta).loss.item() == pytest.approx(expected, abs=1e-12)
    # the earlier default, kept as a named variant: full β and λ = 1
    legacy = math.log1p(math.exp(beta * (mw - ml))) + 1.0 * mw
    got = O.preference_loss("cpo", t(mw), t(ml), t(0.0), t(0.0), beta=beta, variant="full-beta-sft").loss.item()
    assert got == pytest.approx(legacy, abs=1e-12)


def test_cpo_ignores_the_reference():
    a = O.cpo_loss(t(0.1), t(0.2), t(0.0), t(0.0), 50.0, 1.0).loss
    b = O.cpo_loss(t(0.1), t(0.2), t(7.0), t(-3.0), 50.0, 1.0).loss
    assert a.item() == b.item()


def test_sft_is_winner_mse():
    terms = O.sft_loss(t(0.2, 0.4), t(9.0, 9.0), t(1.0, 1.0), t(1.0, 1.0), 1.0)
    assert terms.loss.item() == pytest.approx(0.3)


def test_cosine_distance_and_rpo_weights():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d = O.cosine_distance_matrix(emb, emb)
    assert d[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert d[0, 1].item() == pytest.approx(1.0, abs=1e-6)
    assert d[0, 2].item() == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    w = O.rpo_weights(emb, emb, tau=0.5)
    row = torch.softmax(torch.tensor([0.0, -2.0, -(1 - 1 / math.sqrt(2)) / 0.5]), dim=0)
    assert torch.allclose(w[0], row, atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(3))


def test_rpo_weights_outside_with_diagonal_weights_is_dpo():
    g = torch.Generator().manual_seed(0)
    mw, ml, rw, rl = (torch.rand(6, generator=g, dtype=torch.float64) for _ in range(4))
    rpo = O.rpo_loss(mw, ml, rw, rl, 300.0, torch.eye(6, dtype=torch.float64), variant="weights-outside")
    dpo = O.dpo_loss(mw, ml, rw, rl, 300.0)
    assert rpo.loss.item() == pytest.approx(dpo.loss.item(), rel=1e-12)
    assert torch.equal(rpo.inside, dpo.inside)


def _softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(-x, 0.0)  # -logsigmoid(x)


def _rpo_by_hand(mw, ml, rw, rl, emb, beta, tau, outside):
    """RPO from the formulas in DESIGN.md, in plain Python floats."""
    n = len(mw)

    def cos(a, b):
        dot = sum(x * y for x, y in zip(a, b))
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    total = 0.0
    for i in range(n):
        logits = [-(1 - cos(emb[i], emb[j])) / tau for j in range(n)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        weights = [e / sum(exps) for e in exps]
        row = 0.0
        for j in range(n):
            inside = -0.5 * beta * ((mw[i] - rw[i]) - (ml[j] - rl[j]))
            row += weights[j] * _softplus(inside) if outside else _softplus(inside * weights[j]) / n
        total += row
    return total / n


@pytest.mark.parametrize("outside", [False, True])
def test_rpo_matches_the_formula(outside):
    mw, ml = [0.10, 0.20, 0.15], [0.30, 0.10, 0.12]
    rw, rl = [0.20, 0.18, 0.16], [0.20, 0.14, 0.11]
    emb = [[1.0, 0.0, 0.5], [0.2, 1.0, 0.0], [1.0, 1.0, 1.0]]
    beta, tau = 40.0, 0.5
    w = O.rpo_weights(torch.tensor(emb, dtype=torch.float64), torch.tensor(emb, dtype=torch.float64), tau)
    got = O.rpo_loss(t(*mw), t(*ml), t(*rw), t(*rl), beta, w, variant="weights-outside" if outside else "reference")
    assert got.loss.item() == pytest.approx(_rpo_by_hand(mw, ml, rw, rl, emb, beta, tau, outside), rel=1e-6)


def test_rpo_reference_puts_the_weights_inside_the_sigmoid():
    mw, ml = t(0.1, 0.2), t(0.3, 0.1)
    rw, rl = t(0.2, 0.2), t(0.2, 0.2)
    w = t(0.75, 0.25, 0.5, 0.5).view(2, 2)
    beta = 10.0
    expected = 0.0
    for i in range(2):
        for j in range(2):
            inside = -0.5 * beta * ((mw[i] - ml[j]) - (rw[i] - rl[j])).item()
            expected += math.log1p(math.exp(-inside * w[i, j].item())) / 2  # mean over j
    expected /= 2
    assert O.rpo_loss(mw, ml, rw, rl, beta, w).loss.item() == pytest.approx(expected, rel=1e-12)


def _kto_by_hand(model, ref, desirable, beta, lam_d=1.0, lam_u=1.0):
    g = [-(m - r) for m, r in zip(model, ref)]
    z = max(0.0, sum(g) / len(g))
    total = 0.0
    for gi, d in zip(g, desirable):
        y = 1.0 if d else -1.0
        h = 1 / (1 + math.exp(-y * 0.5 * beta * (gi - z)))
        total += (lam_d if d else lam_u) * (1 - h)
    return total / len(g)


KTO_TABLE = [
    # model, ref, desirable, beta
    ([0.10, 0.20, 0.30, 0.25], [0.12, 0.18, 0.30, 0.20], [True, False, True, False], 100.0),
    ([0.10, 0.20], [0.10, 0.20], [False, False], 5000.0),  # a both-bad vote: two undesirable images
    ([0.30, 0.31, 0.29], [0.20, 0.20, 0.20], [True, True, False], 50.0),  # mean g < 0: the reference point clamps to 0
]


@pytest.mark.parametrize("model,ref,desirable,beta", KTO_TABLE)
def test_kto_matches_the_formula(model, ref, desirable, beta):
    got = O.kto_loss(t(*model), t(*ref), torch.tensor(desirable), beta)
    assert got.loss.item() == pytest.approx(_kto_by_hand(model, ref, desirable, beta), rel=1e-9)
    weighted = O.kto_loss(t(*model), t(*ref), torch.tensor(desirable), beta, desirable_weight=2.0, undesirable_weight=0.5)
    assert weighted.loss.item() == pytest.approx(_kto_by_hand(model, ref, desirable, beta, 2.0, 0.5), rel=1e-9)


def test_kto_pushes_undesirable_images_away():
    model = torch.tensor([0.10, 0.10], dtype=torch.float64, requires_grad=True)
    O.kto_loss(model, t(0.10, 0.10), torch.tensor([False, False]), 1000.0).loss.backward()
    assert (model.grad < 0).all()  # descending the loss raises the error on undesirable images


def test_every_objective_has_a_formula():
    for objective in O.OBJECTIVES:
        assert O.formula(objective)
    assert O.formula("cpo", "full-beta-sft") != O.formula("cpo")
    assert O.formula("rpo", "weights-outside") != O.formula("rpo")


def test_unknown_objective():
    with pytest.raises(ValueError):
        O.preference_loss("ppo", t(0.0), t(0.0), t(0.0), t(0.0), beta=1.0)
