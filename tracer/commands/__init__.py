"""CLI subcommands that are not part of one layer."""
