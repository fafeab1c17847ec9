"""Blob stores: filesystem (the real one) and memory (the fake beside it)."""
