"""Gymnasium wrappers that change how the reward is delivered, never the task.

* :class:`SparseReward`: the whole episode's reward at its end, zero before.
* :class:`DenseReward`: pieces per completed line (token env) and per newly passing test.
* :class:`PotentialShaping`: ``F = gamma * Phi(s') - Phi(s)``, policy invariant (Ng et al. 1999), with
  ready potentials :class:`PrefixSyntaxMatch` and :class:`ScorerPotential`.
* :class:`KLRegularizer`: ``-beta * KL estimate`` per token or per program, fixed or adaptive beta.

Every wrapper logs its pieces in ``info`` and adds them to ``info["reward_components"]``. They wrap one
environment; for vector training wrap each sub-environment (``gym.make_vec(..., wrappers=[...])``
with a Sync/Async vector env).
"""

from codegym.wrappers.dense import LINE_SCORERS, DenseReward, prefix_is_viable, score_compiles, score_parses
from codegym.wrappers.kl import KLRegularizer
from codegym.wrappers.shaping import PotentialShaping, PrefixSyntaxMatch, ScorerPotential
from codegym.wrappers.sparse import SparseReward

__all__ = [
    "LINE_SCORERS",
    "DenseReward",
    "KLRegularizer",
    "PotentialShaping",
    "PrefixSyntaxMatch",
    "ScorerPotential",
    "SparseReward",
    "prefix_is_viable",
    "score_compiles",
    "score_parses",
]
