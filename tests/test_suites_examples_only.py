"""The examples-only variants of ``arith`` and ``listops`` (programming by example) and their env ids."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
from codegym.envs import ProgramEnv, env_ids
from codegym.envs.curriculum import CurriculumSampler

import codegym
from codegym.suites import arith, listops
from codegym.suites.procedural import compile_function
from codegym.suites.validate import validate_suite
from codegym.tasks import Task

SUITES = {"arith": arith, "listops": listops}
IO_IDS = [
    f"codegym/{part}-{kind}-v0"
    for part in ("ArithIO", "ListOpsIO")
    for kind in ("Program", "Repair", "Token")
]


def both(name: str, **kwargs: Any) -> tuple[codegym.TaskSuite, codegym.TaskSuite]:
    """The plain suite and its examples-only variant, built with the same arguments."""
    return codegym.load_suite(name, **kwargs), codegym.load_suite(name, examples_only=True, **kwargs)


def example_line(task: Task, test: Any) -> str:
    """How the prompt writes one visible example: ``f(3) == 6`` / ``f([1, 2]) == [2, 4]``."""
    return f"    f({test.args[0]!r}) == {test.expected!r}"


def passes(fn: Any, tests: Any) -> bool:
    """Whether ``fn`` returns exactly (value and type) what every test expects."""
    for test in tests:
        try:
            got = fn(*[list(a) if isinstance(a, list) else a for a in test.args])
        except Exception:
            return False
        if type(got) is not type(test.expected) or got != test.expected:
            return False
    return True


# ---------------------------------------------------------------------------------------------------------
# The plain suites are unchanged


def test_plain_suites_are_unchanged():
    assert codegym.load_suite("arith", n=30, seed=0)[0].prompt == (
        "Write f(x) that returns x + 5.\nExamples:\n    f(1) == 6\n    f(4) == 9\n"
    )
    listops_task = codegym.load_suite("listops", n=30, seed=0, difficulty=2)[0]
    assert listops_task.task_id == "listops/d2/s0/0"
    assert listops_task.prompt == (
        "Write f(xs) that takes a list of integers and applies these steps in order: subtract 1 from every "
        "element; then multiply every element by 2.\nExamples:\n"
        "    f([-3, -5, -8, -8, -9, 0]) == [-8, -12, -18, -18, -20, -2]\n"
        "    f([-5, 1, -6, 8, -3, -5]) == [-12, 0, -14, 14, -8, -12]\n"
    )
    for name in SUITES:
        for kwargs in ({}, {"n": 40, "seed": 3, "difficulty": [1, 2, 3]}):
            default = codegym.load_suite(name, **kwargs)
            off = codegym.load_suite(name, examples_only=False, **kwargs)
            assert list(default) == list(off)
            assert all("examples_only" not in t.metadata for t in default)
            assert len(default[0].visible_tests) == SUITES[name].NUM_VISIBLE
    assert gym.spec("codegym/Arith-Program-v0").kwargs == {"suite": "arith"}


# ---------------------------------------------------------------------------------------------------------
# The variant: same bodies, tests and splits; other ids and prompts


@pytest.mark.parametrize("name", sorted(SUITES))
def test_variant_keeps_bodies_hidden_tests_and_splits(name):
    module = SUITES[name]
    plain, io = both(name, n=60, seed=5, difficulty=list(range(1, module.MAX_DIFFICULTY + 1)))
    assert io.name == plain.name == name and len(io) == len(plain)
    assert not set(io.task_ids) & set(plain.task_ids)
    for p, t in zip(plain, io):
        assert t.task_id == p.task_id.replace(f"{name}/", f"{name}-io/", 1)
        assert (t.reference, t.tests, t.entry_point, t.split, t.difficulty) == (
            p.reference,
            p.tests,
            p.entry_point,
            p.split,
            p.difficulty,
        )
        assert t.metadata == {**p.metadata, "examples_only": True}
        assert len(t.visible_tests) == module.NUM_VISIBLE_EXAMPLES_ONLY >= 3
        assert set(map(repr, p.visible_tests)) <= set(map(repr, t.visible_tests))
    for split in ("train", "test"):
        assert [t.reference for t in io.split(split)] == [t.reference for t in plain.split(split)]
    assert len(io.split("test")) > 0


@pytest.mark.parametrize("name", sorted(SUITES))
def test_prompt_shows_the_examples_and_not_the_statement(name):
    plain, io = both(name, n=80, seed=0, difficulty=[1, 2, 3])
    statements = [*listops._DESCRIPTIONS.values()] if name == "listops" else []
    for p, t in zip(plain, io):
        assert t.prompt.startswith(f"Write f({'x' if name == 'arith' else 'xs'}) that ")
        assert p.prompt.splitlines()[0] not in t.prompt
        assert t.metadata["description"] not in t.prompt
        if name == "arith":
            assert t.metadata["expression"] not in t.prompt
        for words in statements:
            assert words not in t.prompt
        for test in t.visible_tests:
            assert example_line(t, test) + "\n" in t.prompt
    assert (
        io[0].prompt
        == codegym.load_suite(name, n=80, seed=0, difficulty=[1, 2, 3], examples_only=True)[0].prompt
    )


@pytest.mark.parametrize("name", sorted(SUITES))
def test_hidden_tests_go_beyond_the_examples(name):
    io = codegym.load_suite(name, n=200, seed=1, difficulty=[1, 2, 3, 4], examples_only=True)
    for task in io:
        shown = {repr(t.args) for t in task.visible_tests}
        beyond = [t for t in task.tests if repr(t.args) not in shown]
        assert beyond, task.task_id
        if name == "arith":
            assert len(beyond) == len(task.tests) == arith.NUM_HIDDEN  # hidden inputs are never shown
        else:
            assert any(t.args == ([],) for t in beyond)  # the empty list is always hidden, never shown


def test_examples_pin_down_the_shortest_bodies():
    """A wrong body that fits every example is rare: never at the first level, 2% of length-2 pipelines."""
    digits_or_x = ["x", *"123456789"]
    arith_bodies = [
        [a, op, b] for op in arith.OPERATORS for a in digits_or_x for b in digits_or_x if "x" in (a, b)
    ]
    one_step = [[t] for t in listops.VOCAB]
    two_steps = [[a, b] for a in listops.VOCAB if a not in listops.TERMINAL_TOKENS for b in listops.VOCAB]
    cases = [("arith", 1, arith, arith_bodies, 0), ("listops", 1, listops, one_step, 0)]
    cases.append(("listops", 2, listops, two_steps, 6))
    for name, level, module, bodies, most in cases:
        fns = [compile_function(module.program_from_tokens(b), "f") for b in bodies]
        tasks = codegym.load_suite(name, n=300, seed=0, difficulty=level, examples_only=True)
        ambiguous = [
            t.task_id
            for t in tasks
            if any(passes(fn, t.visible_tests) and not passes(fn, t.tests) for fn in fns)
        ]
        assert len(ambiguous) <= most, (name, level, ambiguous)


def test_references_pass_every_test_in_the_sandbox():
    tasks: list[Task] = []
    for name, module in SUITES.items():
        for level in range(1, module.MAX_DIFFICULTY + 1):
            tasks += codegym.load_suite(name, n=6, seed=2, difficulty=level, examples_only=True)
    with codegym.Executor(backend="local") as ex:
        report = validate_suite(tasks, ex)
    assert report.num_tasks == len(tasks) == 66
    assert report.num_tests == 6 * len(tasks) and report.num_visible == 5 * len(tasks)


# ---------------------------------------------------------------------------------------------------------
# Environment ids and the held-out evaluation


@pytest.mark.parametrize("env_id", IO_IDS)
def test_io_ids_make_and_step(env_id):
    name = "arith" if "ArithIO" in env_id else "listops"
    assert gym.spec(env_id).kwargs == {"suite": name, "examples_only": True}
    assert env_id in env_ids()
    env = gym.make(env_id, suite_kwargs={"n": 12, "seed": 4, "difficulty": 2})
    u = env.unwrapped
    assert len(u.full_suite) == 12 and all(t.metadata["examples_only"] is True for t in u.full_suite)
    obs, info = env.reset(seed=0)
    task = u.task
    assert info["task_id"] == task.task_id and task.task_id.startswith(f"{name}-io/d2/s4/")
    if env_id.endswith("-Token-v0"):
        shown = "".join(f"({t.args[0]!r}){t.expected!r}" for t in task.visible_tests)
        assert u.prompt_ids.tolist() == u.tokenizer.encode(shown, skip_unknown=True)
        assert (len(u.prompt_ids) > 0) == (name == "arith")  # listops' vocabulary spells no list
        for token in task.metadata["reference_tokens"]:
            obs, reward, terminated, truncated, info = env.step(u.tokenizer.tokens.index(token))
        obs, reward, terminated, truncated, info = env.step(u.eos_token_id)
    else:
        assert (obs if isinstance(obs, str) else obs["prompt"]) == task.prompt
        obs, reward, terminated, truncated, info = env.step(task.reference)
    assert info["status"] == "passed" and reward == 1.0 and terminated and not truncated
    env.close()


def test_io_vector_env_and_curriculum_keep_the_variant():
    envs = gym.make_vec("codegym/ListOpsIO-Program-v0", num_envs=2, suite_kwargs={"n": 10})
    envs.reset(seed=0)
    assert all(task.task_id.startswith("listops-io/") for task in envs.call("task"))
    envs.close()
    env = gym.make("codegym/ArithIO-Program-v0", sampler="curriculum")
    assert all(t.metadata["examples_only"] is True for t in env.unwrapped.sampler.tasks)
    env.close()
    sampler = CurriculumSampler("listops", levels=[1, 2], tasks_per_level=10, examples_only=True)
    assert all(t.task_id.startswith("listops-io/") for t in sampler.tasks)


def test_heldout_tasks_of_an_io_id_are_examples_only():
    from codegym.agents.train import RunConfig, heldout_tasks

    kwargs = "n=60,seed=1,difficulty=1;2"
    io = heldout_tasks(RunConfig(env="codegym/ArithIO-Program-v0", eval_suite_kwargs=kwargs))
    plain = heldout_tasks(RunConfig(env="codegym/Arith-Program-v0", eval_suite_kwargs=kwargs))
    assert io and all(t.task_id.startswith("arith-io/") and t.split == "test" for t in io)
    assert [t.reference for t in io] == [t.reference for t in plain]
    assert all(t.task_id.startswith("arith/") for t in plain)
    listops_io = heldout_tasks(RunConfig(env="codegym/ListOpsIO-Token-v0", eval_suite_kwargs="n=30"))
    assert listops_io and all(t.metadata["examples_only"] is True for t in listops_io)


# ---------------------------------------------------------------------------------------------------------
# Bad values


@pytest.mark.parametrize("value", ["yes", 1, None])
@pytest.mark.parametrize("name", sorted(SUITES))
def test_bad_option_values_are_named(name, value):
    with pytest.raises(ValueError, match=rf"{name}: examples_only must be True or False, got {value!r}"):
        codegym.load_suite(name, n=3, examples_only=value)


def test_bad_env_arguments_are_named():
    with pytest.raises(
        ValueError, match="examples_only=True conflicts with suite_kwargs examples_only=False"
    ):
        gym.make("codegym/ArithIO-Program-v0", suite_kwargs={"examples_only": False})
    with pytest.raises(ValueError, match="ProgramEnv: examples_only must be True or False, got 'on'"):
        ProgramEnv("arith", examples_only="on")
    plain = codegym.load_suite("arith", n=5)
    with pytest.raises(ValueError, match="suite 'arith' has tasks that are not examples-only"):
        ProgramEnv(plain, examples_only=True)
    ProgramEnv(codegym.load_suite("arith", n=5, examples_only=True), examples_only=True).close()
    with pytest.raises(ValueError, match="CurriculumSampler: examples_only must be True or False, got 0"):
        CurriculumSampler("arith", examples_only=0)
    with pytest.raises(TypeError, match="unknown argument"):
        codegym.load_suite("basic", examples_only=True)
