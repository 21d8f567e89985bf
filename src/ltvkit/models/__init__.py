"""Purchase, spend and retention models, one per file, sharing the MLE base in base.py."""
