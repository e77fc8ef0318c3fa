"""Evaluate a model's Claudesidian tool calling on prompt sets, against any local backend."""
