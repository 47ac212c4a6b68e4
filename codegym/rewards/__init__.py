"""Reward functions: pure maps from (task, program, execution result) to a float."""
