"""`warroom serve`: the service (alert intake, background runs, REST API, incident room)."""
