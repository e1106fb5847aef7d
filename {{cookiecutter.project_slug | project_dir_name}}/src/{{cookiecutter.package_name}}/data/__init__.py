"""Data: the demo source generator, ingestion of raw tables, and reading the warehouse."""
