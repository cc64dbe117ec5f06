"""warroom: an incident-response engine."""
