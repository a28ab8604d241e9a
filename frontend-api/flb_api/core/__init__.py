"""Configuration, security, the SQLite cache and request metrics of the API."""
