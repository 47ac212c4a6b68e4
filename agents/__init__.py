"""LLM policies and trainers (installed as ``codegym.agents``)."""
