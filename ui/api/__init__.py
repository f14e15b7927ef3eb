"""The HTTP automation API (`andini serve`): server.py builds the FastAPI app from the route modules."""
