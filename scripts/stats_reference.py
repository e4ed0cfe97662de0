"""Reference values for the statistics tests, computed with independent Python libraries.

Writes tests/fixtures/stats/*.json: each file holds the input tables and the values the
TypeScript statistics (functions/src/domain/stats/) must reproduce. The numbers come from
statsmodels (cluster-robust variance, GLM Bradley-Terry fits), scipy (normal and chi-square
distributions, L-BFGS) and Optimizely's ssrm-test (sequential SRM), never from the code
under test. Formulas that no library implements (the normal-mixture boundary, FastChat's
outlier e-test, online Elo) are written out here from their papers / FastChat's elo_analysis.py.

Run: .venv/bin/pip install -e 'gpu-worker[stats-reference]' && .venv/bin/pip install --no-deps ssrm-test==0.1.5
     .venv/bin/python scripts/stats_reference.py
(ssrm-test pins numpy<2, which the worker cannot take; it runs on NumPy 2 with the shim below.)
"""

import json
import math
from pathlib import Path

import numpy as np
import scipy.stats as st
import statsmodels.api as sm

# ssrm-test 0.1.5 still uses np.Inf, removed in NumPy 2.
np.Inf = np.inf  # noqa: N816
from ssrm_test import ssrm_test  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "stats"
PRIOR_VOTERS = 20
PRIOR_VOTER_VARIANCE = 0.04
TUNING_VOTES = 500


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(obj, separators=(",", ":")) + "\n")
    print("wrote", OUT / name)


# --- A/B: voter-clustered mean, normal-mixture confidence sequence -------------------------


def vote_table(rng, n_voters, p, spread, max_votes, arm="challenger"):
    """Voters with their own p (Beta around p) and their own number of votes."""
    rows = []
    conc = p * (1 - p) / spread**2 - 1
    for v in range(n_voters):
        pv = rng.beta(p * conc, (1 - p) * conc)
        for _ in range(int(rng.integers(1, max_votes + 1))):
            u = rng.random()
            result = "tie" if u < 0.05 else "both_bad" if u < 0.08 else ("win" if rng.random() < pv else "loss")
            rows.append(
                {"arm": arm, "voterId": f"v{v}", "result": result, "challengerOnLeft": bool(rng.random() < 0.5)}
            )
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def outcome(result):
    return {"win": 1.0, "loss": 0.0}.get(result, 0.5)


def clustered(y, groups):
    """Mean and its cluster-robust variance from statsmodels (G/(G-1) correction)."""
    fit = sm.OLS(np.asarray(y, float), np.ones(len(y))).fit(
        cov_type="cluster", cov_kwds={"groups": np.asarray(groups), "use_correction": True}
    )
    return float(fit.params[0]), float(fit.bse[0]) ** 2


def mixture(y, groups, alpha, tuning=TUNING_VOTES, prior=PRIOR_VOTERS):
    n = len(y)
    mean, var_mean = clustered(y, groups)
    per_vote = max(n * var_mean, float(np.var(np.asarray(y, float), ddof=1)))
    _, sizes = np.unique(np.asarray(groups), return_counts=True)
    voters = len(sizes)
    prior_var = 0.25 + max(0.0, float(np.sum(sizes.astype(float) ** 2)) / n - 1) * PRIOR_VOTER_VARIANCE
    sigma2 = (voters * per_vote + prior * prior_var) / (voters + prior)
    rho = math.sqrt((-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning)
    v = n * rho * rho + 1
    half = math.sqrt(sigma2) * math.sqrt(2 * v * math.log(math.sqrt(v) / alpha)) / (n * rho)
    e = math.exp(rho * rho * (n * (mean - 0.5)) ** 2 / sigma2 / (2 * v)) / math.sqrt(v)
    return {
        "mean": mean,
        "lower": max(0.0, mean - half),
        "upper": min(1.0, mean + half),
        "eValue": e,
        "sigma2": sigma2,
        "chanceToWin": float(st.norm.cdf(mean, 0.5, math.sqrt(sigma2 / n))),
    }


def arm_expected(rows, alpha_arm):
    y = [outcome(r["result"]) for r in rows]
    g = [r["voterId"] for r in rows]
    m = mixture(y, g, alpha_arm)
    left = [yy if r["challengerOnLeft"] else 1 - yy for yy, r in zip(y, rows)]
    lm = mixture(left, g, alpha_arm)
    return {
        "n": len(rows),
        "wins": sum(r["result"] == "win" for r in rows),
        "losses": sum(r["result"] == "loss" for r in rows),
        "ties": sum(r["result"] == "tie" for r in rows),
        "bothBad": sum(r["result"] == "both_bad" for r in rows),
        "voters": len(set(g)),
        "estimate": m["mean"],
        "lower": m["lower"],
        "upper": m["upper"],
        "eValue": m["eValue"],
        "pValue": min(1.0, 1 / m["eValue"]),
        "chanceToWin": m["chanceToWin"],
        "positionEffect": {
            "leftWinRate": lm["mean"],
            "estimate": lm["mean"] - 0.5,
            "lower": lm["lower"] - 0.5,
            "upper": lm["upper"] - 0.5,
        },
    }


def experiments():
    rng = np.random.default_rng(20261130)
    cases = []
    # One challenger, clustered voters, a real preference.
    rows = vote_table(rng, 40, 0.6, 0.1, 30)
    cases.append({"name": "one challenger, 40 clustered voters, p about 0.6", "arms": ["challenger"], "rows": rows})
    # Two challengers: one better, one equal; alpha split in two.
    rows = vote_table(rng, 60, 0.65, 0.05, 20, "b") + vote_table(rng, 60, 0.5, 0.05, 20, "c")
    cases.append({"name": "two challengers, Bonferroni", "arms": ["b", "c"], "rows": rows})
    # Few votes from few voters: the shrinkage toward 1/4 dominates.
    rows = vote_table(rng, 3, 0.7, 0.05, 4)
    cases.append({"name": "a handful of votes", "arms": ["challenger"], "rows": rows})
    # Heavy voters with no spread within a voter.
    rows = [
        {"arm": "challenger", "voterId": f"v{v}", "result": "win" if v % 3 else "loss", "challengerOnLeft": i % 2 == 0}
        for v in range(12)
        for i in range(25)
    ]
    cases.append({"name": "each voter always votes the same way", "arms": ["challenger"], "rows": rows})
    alpha = 0.05
    for c in cases:
        a = alpha / len(c["arms"])
        c["alpha"] = alpha
        c["expected"] = {arm: arm_expected([r for r in c["rows"] if r["arm"] == arm], a) for arm in c["arms"]}
    # A path: the interval after every 25 votes, with the running p-value.
    rows = vote_table(rng, 30, 0.62, 0.08, 15)
    y = [outcome(r["result"]) for r in rows]
    g = [r["voterId"] for r in rows]
    path, pmin = [], 1.0
    for k in range(1, len(rows) + 1):
        if len(set(g[:k])) >= 2:
            m = mixture(y[:k], g[:k], alpha)
            pmin = min(pmin, 1 / m["eValue"])
        if k % 25 == 0 or k == len(rows):
            if len(set(g[:k])) >= 2:
                path.append({"n": k, "estimate": m["mean"], "lower": m["lower"], "upper": m["upper"], "pValue": pmin})
            else:
                path.append({"n": k, "estimate": float(np.mean(y[:k])), "lower": 0, "upper": 1, "pValue": pmin})
    write(
        "experiments.json",
        {"tuningVotes": TUNING_VOTES, "priorVoters": PRIOR_VOTERS, "priorVoterVariance": PRIOR_VOTER_VARIANCE, "cases": cases, "path": {"alpha": alpha, "every": 25, "rows": rows, "points": path}},
    )


# --- Sample ratio mismatch -----------------------------------------------------------------


def srm():
    rng = np.random.default_rng(7)
    cases = []
    for expected, true, looks, conc in [
        ([0.5, 0.5], [0.5, 0.5], 6, 1000),
        ([0.5, 0.5], [0.53, 0.47], 8, 1000),
        ([0.25, 0.25, 0.5], [0.25, 0.25, 0.5], 5, 1000),
        ([0.25, 0.25, 0.5], [0.3, 0.25, 0.45], 5, 1000),
        ([0.5, 0.5], [0.52, 0.48], 4, 10000),
    ]:
        increments = [rng.multinomial(int(rng.integers(200, 2000)), true).tolist() for _ in range(looks)]
        cum = np.cumsum(np.array(increments), axis=0)
        p_seq = ssrm_test.sequential_p_values(np.array(increments), np.array(expected), dirichlet_concentration=conc)
        bfs = ssrm_test.sequential_bayes_factors(np.array(increments), np.array(expected), dirichlet_concentration=conc)
        chi = st.chisquare(cum[-1], np.array(expected) * cum[-1].sum()).pvalue
        cases.append(
            {
                "expected": expected,
                "concentration": conc,
                "looks": cum.tolist(),
                "pValues": [float(p) for p in p_seq],
                "logBayesFactors": [float(np.log(b)) for b in bfs],
                "chiSquarePValue": float(chi),
            }
        )
    write("srm.json", {"alpha": 0.05, "cases": cases})


# --- Rater quality: Bernoulli e-processes and FastChat's outlier e-test --------------------


def bernoulli_e(xs, p0, qs):
    xs = np.asarray(xs, bool)
    k = np.cumsum(xs)
    t = np.arange(1, len(xs) + 1)
    paths = [(q / p0) ** k * ((1 - q) / (1 - p0)) ** (t - k) for q in qs]
    e = np.mean(paths, axis=0)
    return {"final": float(e[-1]), "max": float(max(1.0, e.max()))}


def fastchat_outlier(votes, max_vote=100):
    """FastChat's outlier_detect products, with conformal p-values (the vote itself counted in)."""
    p_upper, p_lower = [], []
    for vote, wins, losses in votes[:max_vote]:
        ratings = np.array([1] * wins + [0] * losses + [vote], float)
        p_upper.append((ratings <= vote).mean())
        p_lower.append((ratings >= vote).mean())
    return {
        "upper": float(np.prod(1 / (2 * np.array(p_upper)))),
        "lower": float(np.prod(1 / (2 * np.array(p_lower)))),
    }


def rater():
    rng = np.random.default_rng(11)
    bern = []
    for p0, qs, rate, n in [
        (0.75, [0.9, 0.95, 0.99], 1.0, 30),
        (0.75, [0.9, 0.95, 0.99], 0.55, 60),
        (0.75, [0.5, 0.25], 0.5, 80),
        (0.75, [0.5, 0.25], 0.85, 40),
        (0.2, [0.5, 0.8], 0.7, 25),
    ]:
        xs = (rng.random(n) < rate).tolist()
        bern.append({"p0": p0, "qs": qs, "xs": xs, **bernoulli_e(xs, p0, qs)})
    outl = []
    for bias in [0.5, 0.1, 0.9]:
        votes = []
        for _ in range(int(rng.integers(20, 120))):
            wins, losses = int(rng.integers(0, 60)), int(rng.integers(0, 60))
            u = rng.random()
            vote = 0.5 if u < 0.1 else (1.0 if rng.random() < bias else 0.0)
            votes.append([vote, wins, losses])
        outl.append({"votes": votes, **fastchat_outlier(votes)})
    write("rater.json", {"bernoulli": bern, "outlier": outl})


# --- Leaderboard: Bradley-Terry with a left-position term, online Elo ----------------------

ELO_SCALE = 400 / math.log(10)
RIDGE = 0.01


def battle_table(rng, strengths, n_voters, max_votes, gamma, tie_rate, same_model_share):
    models = list(strengths)
    rows = []
    for v in range(n_voters):
        taste = {m: rng.normal(0, 0.3) for m in models}
        for _ in range(int(rng.integers(1, max_votes + 1))):
            if rng.random() < same_model_share:
                a = b = models[0]
            else:
                a, b = rng.choice(models, 2, replace=False)
            z = strengths[a] + taste[a] - strengths[b] - taste[b] + gamma
            u = rng.random()
            if u < tie_rate:
                outcome, both_bad = 0.5, bool(rng.random() < 0.4)
            else:
                outcome, both_bad = float(rng.random() < 1 / (1 + math.exp(-z))), False
            rows.append({"voterId": f"v{v}", "left": str(a), "right": str(b), "outcome": outcome, "bothBad": both_bad})
    return rows


def bt_design(rows, models):
    idx = {m: i for i, m in enumerate(models)}
    x = np.zeros((len(rows), len(models) + 1))
    for r, row in enumerate(rows):
        if row["left"] != row["right"]:
            x[r, idx[row["left"]]] += 1
            x[r, idx[row["right"]]] -= 1
        x[r, -1] = 1
    return x


def bt_ridge(rows, models):
    """The penalised fit by L-BFGS (as FastChat fits Bradley-Terry), on unique (pair, outcome) rows."""
    from scipy.optimize import minimize

    x = bt_design(rows, models)
    y = np.array([r["outcome"] for r in rows])
    k = len(models)

    def f(beta):
        z = x @ beta
        nll = np.sum(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)) + 0.5 * RIDGE * np.sum(beta[:k] ** 2)
        p = 1 / (1 + np.exp(-z))
        g = x.T @ (p - y)
        g[:k] += RIDGE * beta[:k]
        return nll, g

    res = minimize(f, np.zeros(k + 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
    theta, gamma = res.x[:k], res.x[k]
    return {m: 1000 + ELO_SCALE * t for m, t in zip(models, theta)}, float(gamma)


def bt_glm(rows, models, groups=None):
    """Unpenalised fit with statsmodels' GLM (first model as the reference), optionally cluster-robust."""
    x = bt_design(rows, models)[:, 1:]
    y = np.array([r["outcome"] for r in rows])
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if groups is not None else {}
    fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(**kw)
    k = len(models)
    theta = np.concatenate([[0.0], fit.params[: k - 1]])
    theta -= theta.mean()
    ratings = {m: 1000 + ELO_SCALE * t for m, t in zip(models, theta)}
    widths = None
    if groups is not None:
        cov = fit.cov_params()
        widths = {}
        for i, m in enumerate(models):
            c = np.zeros(k)  # centred theta_i as a combination of (theta_2..theta_k, gamma)
            full = -np.ones(k) / k
            full[i] += 1
            c[: k - 1] = full[1:]
            widths[m] = float(2 * 1.959963984540054 * ELO_SCALE * math.sqrt(c @ cov @ c))
    return ratings, float(fit.params[k - 1]), widths


def fastchat_elo(rows, k=4, scale=400, base=10, init=1000):
    rating = {}
    for r in rows:
        a, b = r["left"], r["right"]
        ra, rb = rating.get(a, init), rating.get(b, init)
        rating[a], rating[b] = ra, rb
        if a == b:
            continue
        ea = 1 / (1 + base ** ((rb - ra) / scale))
        eb = 1 / (1 + base ** ((ra - rb) / scale))
        rating[a] = ra + k * (r["outcome"] - ea)
        rating[b] = rb + k * (1 - r["outcome"] - eb)
    return rating


def leaderboard():
    rng = np.random.default_rng(3)
    cases = []
    for name, strengths, voters, max_votes, gamma, ties, same in [
        ("five models, ties, position effect", {"base:tiny": 0.0, "a1": 0.3, "a2": 0.5, "a3": -0.2, "a4": 0.9}, 80, 30, 0.25, 0.1, 0.0),
        ("three models and data pairs (same model both sides)", {"base:tiny": 0.0, "x": 0.4, "y": 0.45}, 60, 20, -0.3, 0.05, 0.3),
    ]:
        rows = battle_table(rng, strengths, voters, max_votes, gamma, ties, same)
        models = sorted(strengths)
        ridge_ratings, ridge_gamma = bt_ridge(rows, models)
        glm_ratings, glm_gamma, widths = bt_glm(rows, models, groups=np.array([r["voterId"] for r in rows]))
        cases.append(
            {
                "name": name,
                "models": models,
                "rows": rows,
                "ridge": RIDGE,
                "ratings": ridge_ratings,
                "gamma": ridge_gamma,
                "glmRatings": glm_ratings,
                "glmGamma": glm_gamma,
                "clusterIntervalWidths": widths,
                "onlineElo": fastchat_elo(rows),
            }
        )
    write("leaderboard.json", {"cases": cases})


if __name__ == "__main__":
    leaderboard()
    experiments()
    srm()
    rater()
