"""Business rules: plain synchronous functions over the pydantic models, no I/O, no clock."""
