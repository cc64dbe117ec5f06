"""Shared plumbing of the shop services: settings, telemetry, database, downstream calls."""
