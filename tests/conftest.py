"""Shared test set-up. End-to-end tests start their own processes; see tests/support."""
