"""Scheduled jobs: one module per family, the catalog that names them, and the scheduler that triggers them."""
