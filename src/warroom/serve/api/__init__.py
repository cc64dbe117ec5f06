"""The REST API, one router per resource (OpenAPI at /api/v1/openapi.json)."""
