"""Reward functions: pure maps from (task, program, execution result) to a float.

Every reward has the signature ``fn(task, program, result) -> float``; composites (:class:`WeightedSum`,
:data:`ppocoder`) also give a named breakdown through :func:`reward_breakdown`, which environments put
in ``info["reward_components"]``. See ``docs/rewards.md`` for the formulas, their sources and how to
compose them.

==================  =======================================================================  ============
name                formula                                                                  range
==================  =======================================================================  ============
``pass_fail``       1 if every hidden test passes                                            {0, 1}
``pass_rate``       fraction of hidden tests passed                                          [0, 1]
``coderl_graded``   -1 syntax / -0.6 runtime / -0.3 failed / +1 passed (CodeRL)             [-1, 1]
``rltf_adaptive``   as CodeRL, but failed -> -0.3 + 1.3 * pass_rate (RLTF)                   [-1, 1]
``compiles``        +1 if the program compiles, else -1 (PPOCoder)                           {-1, 1}
``syntax_match``    CodeBLEU AST-subtree match with the reference                            [0, 1]
``dataflow_match``  CodeBLEU data-flow match with the reference                              [0, 1]
``ppocoder``        compiles + syntax_match + dataflow_match (weights configurable)          [-1, 3]
``format_reward``   1 if bare valid Python defining the entry point                          {0, 1}
``length_penalty``  DAPO soft overlong punishment, relative to the reference                 [-1, 0]
``Efficiency``      clipped speed-up over the reference for passing programs                 [0, 2]
==================  =======================================================================  ============
"""

from codegym.rewards.base import RewardFunction, reward_breakdown, reward_name
from codegym.rewards.compose import WeightedSum, weighted_sum
from codegym.rewards.efficiency import Efficiency, efficiency, run_time
from codegym.rewards.outcome import (
    coderl_graded,
    compiles,
    pass_fail,
    pass_rate,
    program_compiles,
    rltf_adaptive,
)
from codegym.rewards.similarity import (
    codebleu_agreement,
    dataflow_match,
    dataflow_match_score,
    ppocoder,
    ppocoder_reward,
    syntax_match,
    syntax_match_score,
)
from codegym.rewards.terms import LengthPenalty, extract_code, format_checks, format_reward, length_penalty
from codegym.rewards.trl import TRLRewardFunc, build_program, completion_text, trl_reward_func

REWARDS: dict[str, RewardFunction] = {
    "pass_fail": pass_fail,
    "pass_rate": pass_rate,
    "coderl_graded": coderl_graded,
    "rltf_adaptive": rltf_adaptive,
    "compiles": compiles,
    "syntax_match": syntax_match,
    "dataflow_match": dataflow_match,
    "ppocoder": ppocoder,
    "format_reward": format_reward,
    "length_penalty": length_penalty,
}
"""The ready reward functions by name (those that need no argument), as :func:`get_reward` finds them."""


def get_reward(name: str) -> RewardFunction:
    """Return the ready reward called ``name`` (see :data:`REWARDS`).

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    try:
        return REWARDS[name]
    except KeyError:
        raise KeyError(f"unknown reward {name!r}; known rewards: {', '.join(sorted(REWARDS))}") from None


__all__ = [
    "REWARDS",
    "Efficiency",
    "LengthPenalty",
    "RewardFunction",
    "TRLRewardFunc",
    "WeightedSum",
    "build_program",
    "coderl_graded",
    "codebleu_agreement",
    "compiles",
    "completion_text",
    "dataflow_match",
    "dataflow_match_score",
    "efficiency",
    "extract_code",
    "format_checks",
    "format_reward",
    "get_reward",
    "length_penalty",
    "pass_fail",
    "pass_rate",
    "ppocoder",
    "ppocoder_reward",
    "program_compiles",
    "reward_breakdown",
    "reward_name",
    "rltf_adaptive",
    "syntax_match",
    "syntax_match_score",
    "run_time",
    "trl_reward_func",
    "weighted_sum",
]
