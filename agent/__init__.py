"""The agent: model backends, tools and the LangChain agent loop, as a stream of events."""
