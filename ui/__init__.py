"""The two front ends over the agent's event stream: the Streamlit app (ui/app/) and the HTTP API (ui/api/).

ui/cli.py registers their commands (`andini ui`, `andini serve`)."""
