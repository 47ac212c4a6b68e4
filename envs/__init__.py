"""Gymnasium environments for code generation (installed as ``codegym.envs``)."""
