"""Reference data kept in the repo, each file with its source in its header."""
