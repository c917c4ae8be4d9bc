"""Evaluation: datasets, tasks, metrics, reports."""
