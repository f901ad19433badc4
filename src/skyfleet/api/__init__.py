"""The REST API under /v1: FastAPI app, authentication, error rendering and routes."""
