import numpy as np

from engine.search import greedy_chain, perturb, random_archs
from tests.conftest import tiny_space

SPACE = tiny_space()


def synthetic_score(arch, _stage="") -> float:
    """Known optimum: many 3x3 convs with groups 1 in wide layers score best."""
    convs = [c for b in arch.blocks for la in b.layers for p in la.paths for c in p]
    bad = sum((c.kernel != (3, 3)) + (c.groups != 1) for c in convs) / max(len(convs), 1)
    width = np.mean([la.units for b in arch.blocks for la in b.layers]) / SPACE.max_units
    return float(bad + (1 - width))


def test_perturbation_and_chain_improve_on_random_sampling():
    rng = np.random.default_rng(0)
    pool = list(random_archs(SPACE, rng, 20))
    best = min(pool, key=synthetic_score)
    start = synthetic_score(best)
    top, s1 = perturb(best, SPACE, rng, 30, synthetic_score)
    assert s1 <= start
    end, s2 = greedy_chain(top, SPACE, rng, 60, synthetic_score)
    assert s2 < start
    # A chain that never moves (a broken strategy) would not get there.
    assert synthetic_score(end) == s2
