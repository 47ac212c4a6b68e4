"""Gymnasium wrappers that change how the reward is delivered, never the task."""
