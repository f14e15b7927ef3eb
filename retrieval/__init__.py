"""Retrieval: ingest documents into Chroma through LlamaIndex, and search them with citations."""
