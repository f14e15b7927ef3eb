"""Front ends that render the agent event stream: the Streamlit app and the HTTP API."""
