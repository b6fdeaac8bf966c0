"""Delivery engine: claim due messages, send them, record the outcome."""
