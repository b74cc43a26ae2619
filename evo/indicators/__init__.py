"""Indicator kernels shared by the fast engine and the families' signal kernels."""
