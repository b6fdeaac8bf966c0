"""Benchmarks that print their figures as ``name value unit`` lines."""
