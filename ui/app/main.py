"""The Streamlit entry point (`andini ui` runs it): page set-up, navigation and the settings sidebar.

Each page lives in ui/app/views/ and calls the public functions of agent/, retrieval/ and eval/.
"""

from pathlib import Path

import streamlit as st

from ui.app.sidebar import render_settings

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="andini", page_icon=":material/route:", layout="wide")
page = st.navigation([
    st.Page(VIEWS / "chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page(VIEWS / "documents.py", title="Documents", icon=":material/description:"),
    st.Page(VIEWS / "tasks.py", title="Tasks & plans", icon=":material/checklist:"),
    st.Page(VIEWS / "generate.py", title="Generate", icon=":material/data_object:"),
    st.Page(VIEWS / "evaluation.py", title="Evaluation", icon=":material/monitoring:"),
], position="top")
render_settings()
page.run()
