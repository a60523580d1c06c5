"""The payloads clients send and receive, as pydantic models: the one source of validation and
of the OpenAPI document (the API generates its Swagger models from these)."""
