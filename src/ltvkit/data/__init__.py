"""Reading, validating and summarising transaction logs; bundled and synthetic data."""
