"""Hostile inputs and faults, one case each: every one a clear error, nothing half-written."""
