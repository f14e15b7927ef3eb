"""The Streamlit app (`andini ui`): main.py is the entry, one file per page in views/, shared helpers beside."""
