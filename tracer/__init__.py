"""aiotrace: measure what an asynchronous I/O completion API costs."""

__version__ = "0.1.0"
