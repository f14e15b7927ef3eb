"""andini: intent in, validated tool calls and JSON plans out, grounded in your documents.

This core package holds what every other package shares: settings, the record schema, the chat
formats and the error type. It imports nothing else of ours, and nothing heavy at import time.
"""

__version__ = "0.1.0"
