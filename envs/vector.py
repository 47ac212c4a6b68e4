"""``CodeVectorEnv``: a vector of CodeGym environments that executes all their programs in one batch.

Stepping a :class:`gymnasium.vector.SyncVectorEnv` of program environments runs one program after the
other. :class:`CodeVectorEnv` instead gathers the programs of every sub-environment whose step ends an
attempt and hands them to the executor's ``run_batch`` at once (which spreads them over its worker pool
and its cache), then finishes each sub-environment's step. Apart from that it behaves like
``SyncVectorEnv``: batched spaces from :func:`gymnasium.vector.utils.batch_space`, infos merged with
``_key`` masks, and the autoreset modes ``NEXT_STEP`` (default), ``SAME_STEP`` and ``DISABLED``.

``gym.make_vec("codegym/Basic-Program-v0", num_envs=8)`` builds one (every registered id has it as its
``vector_entry_point``); ``vectorization_mode="sync"`` or ``"async"`` give Gymnasium's own vector envs.
``reset(options={"task_id": ...})`` makes every sub-environment attempt the same task (a GRPO group).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from codegym.envs.base import CodeEnv
from codegym.envs.program import ProgramEnv
from codegym.envs.repair import RepairEnv
from codegym.envs.token import TokenEnv
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

__all__ = ["CodeVectorEnv", "make_program_vector", "make_repair_vector", "make_token_vector"]


class CodeVectorEnv(VectorEnv):
    """Runs several CodeGym environments in this process and executes their programs as one batch.

    Args:
        env_fns: Callables that each create an (unwrapped) :class:`~codegym.envs.base.CodeEnv`; all must
            have equal spaces.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (Gymnasium's default), ``SAME_STEP`` or ``DISABLED``
            (or their string values).
        copy: Return copies of the batched observations (as ``SyncVectorEnv(copy=True)``).

    Raises:
        TypeError: if a sub-environment is not a CodeEnv (wrappers would be bypassed by batching).
        RuntimeError: if the sub-environments' spaces differ.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], CodeEnv]],
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy: bool = True,
    ) -> None:
        super().__init__()
        if len(env_fns) == 0:
            raise ValueError("CodeVectorEnv: env_fns is empty (gym.make_vec needs num_envs >= 1)")
        self.envs: list[CodeEnv] = [fn() for fn in env_fns]
        for i, env in enumerate(self.envs):
            if not isinstance(env, CodeEnv):
                raise TypeError(
                    f"CodeVectorEnv: env {i} is {type(env).__name__}, not a CodeEnv; batching calls the "
                    "environment directly, so wrappers are not supported here (wrap the vector env instead)"
                )
        self.autoreset_mode = (
            autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else AutoresetMode(autoreset_mode)
        )
        self.copy = copy
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.metadata = dict(first.metadata)
        self.metadata["autoreset_mode"] = self.autoreset_mode
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        for i, env in enumerate(self.envs):
            if (
                env.observation_space != self.single_observation_space
                or env.action_space != self.single_action_space
            ):
                raise RuntimeError(f"CodeVectorEnv: env {i} has different spaces from env 0")
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._observations = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.zeros)
        self._env_obs: list[Any] = [None] * self.num_envs
        self._rewards = np.zeros(self.num_envs, dtype=np.float64)
        self._terminations = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncations = np.zeros(self.num_envs, dtype=np.bool_)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-environment (seed ``s`` gives them ``s, s+1, ...``); ``options`` go to each.

        ``options["reset_mask"]`` (a bool array) resets only the selected sub-environments.
        ``options["task_id"]`` may be one id (every sub-environment attempts it: a GRPO group) or a list
        of ``num_envs`` ids, one per sub-environment (several groups in one batch).

        Raises:
            ValueError: for seeds, a reset mask or a task id list of the wrong length.
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"CodeVectorEnv.reset: {len(seeds)} seeds for {self.num_envs} envs")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=np.bool_)
        elif not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
            raise ValueError(
                f"CodeVectorEnv.reset: options['reset_mask'] must be a bool array of shape ({self.num_envs},)"
            )
        task_ids = options.get("task_id")
        if isinstance(task_ids, (list, tuple, np.ndarray)):
            if len(task_ids) != self.num_envs:
                raise ValueError(f"CodeVectorEnv.reset: {len(task_ids)} task ids for {self.num_envs} envs")
        else:
            task_ids = [task_ids] * self.num_envs
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            if not mask[i]:
                continue
            env_options = {**options, "task_id": task_ids[i]} if "task_id" in options else options
            self._env_obs[i], info = env.reset(seed=seeds[i], options=env_options or None)
            self._terminations[i] = self._truncations[i] = self._autoreset[i] = False
            infos = self._add_info(infos, info, i)
        return self._batched_obs(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment; the programs that end an attempt run in one ``run_batch``."""
        per_env: list[dict[str, Any] | None] = [None] * self.num_envs
        pending: list[tuple[int, str]] = []
        for i, action in enumerate(iterate(self.action_space, actions)):
            env = self.envs[i]
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset[i]:
                self._env_obs[i], per_env[i] = env.reset()
                self._rewards[i] = 0.0
                self._terminations[i] = self._truncations[i] = False
                continue
            if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset[i]:
                raise RuntimeError(
                    f"CodeVectorEnv.step: env {i} ended; reset it (reset_mask) before stepping"
                )
            program = env._prepare(action)
            if program is not None:
                pending.append((i, program))
            else:
                self._record(i, env._conclude(None), per_env)
        if pending:
            batch = [(self.envs[i].task, program) for i, program in pending]
            results = self.envs[pending[0][0]].executor.run_batch(batch)
            for (i, _), result in zip(pending, results, strict=True):
                self._record(i, self.envs[i]._conclude(result), per_env)
        infos: dict[str, Any] = {}
        for i, info in enumerate(per_env):
            infos = self._add_info(infos, info or {}, i)
        self._autoreset = np.logical_or(self._terminations, self._truncations)
        return (
            self._batched_obs(),
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def _record(
        self, i: int, transition: tuple[Any, float, bool, bool, dict[str, Any]], per_env: list[Any]
    ) -> None:
        obs, reward, terminated, truncated, info = transition
        if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
            info = {"final_obs": obs, "final_info": info}
            obs, reset_info = self.envs[i].reset()
            info.update(reset_info)
        self._env_obs[i] = obs
        self._rewards[i] = reward
        self._terminations[i] = terminated
        self._truncations[i] = truncated
        per_env[i] = info

    def _batched_obs(self) -> Any:
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return deepcopy(self._observations) if self.copy else self._observations

    def render(self) -> tuple[Any, ...] | None:
        """Return every sub-environment's rendering (``render_mode="ansi"``: strings)."""
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method (or read an attribute) of every sub-environment."""
        results = []
        for env in self.envs:
            value = getattr(env, name)
            results.append(value(*args, **kwargs) if callable(value) else value)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Return an attribute of every sub-environment."""
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        """Set an attribute on every sub-environment (one value, or one per sub-environment)."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"CodeVectorEnv.set_attr: {len(values)} values for {self.num_envs} envs")
        for env, value in zip(self.envs, values):
            setattr(env, name, value)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every sub-environment."""
        for env in self.envs:
            env.close()


def _vector_of(env_class: type[CodeEnv], num_envs: int, kwargs: dict[str, Any]) -> CodeVectorEnv:
    autoreset_mode = kwargs.pop("autoreset_mode", AutoresetMode.NEXT_STEP)
    kwargs.pop("max_episode_steps", None)
    return CodeVectorEnv(
        [lambda: env_class(**kwargs) for _ in range(num_envs)], autoreset_mode=autoreset_mode
    )


def make_program_vector(num_envs: int = 1, **kwargs: Any) -> CodeVectorEnv:
    """Vector entry point of the ``*-Program-v0`` ids: ``num_envs`` ProgramEnvs with ``kwargs``."""
    return _vector_of(ProgramEnv, num_envs, kwargs)


def make_repair_vector(num_envs: int = 1, **kwargs: Any) -> CodeVectorEnv:
    """Vector entry point of the ``*-Repair-v0`` ids: ``num_envs`` RepairEnvs with ``kwargs``."""
    return _vector_of(RepairEnv, num_envs, kwargs)


def make_token_vector(num_envs: int = 1, **kwargs: Any) -> CodeVectorEnv:
    """Vector entry point of the ``*-Token-v0`` ids: ``num_envs`` TokenEnvs with ``kwargs``."""
    return _vector_of(TokenEnv, num_envs, kwargs)
