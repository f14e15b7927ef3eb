"""Page logic of the Streamlit app through Streamlit's AppTest (no browser).

The chat tests drive the pages with a scripted agent: they check the UI's plumbing (drawing steps,
sources, plans, confirmations and errors from events), not the agent. Documents, tasks and evaluation
use the real retrieval, task store and eval reports."""

from __future__ import annotations

import pytest

from andini.schema import Plan, Step
from tests.ui_support import ScriptedAgent, app_test


@pytest.fixture
def agent(tmp_path):
    return ScriptedAgent(tmp_path)


def ask(at, text: str):
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def test_chat_turn_shows_tool_step_answer_and_citation(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "How do I install it?")
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert [s.label for s in at.status] == ["Tool: search_knowledge_base"]
    step = at.status[0]
    assert step.state == "complete"
    assert step.json[0].value and "How do I install it?" in step.json[0].value
    answer = at.chat_message[1]
    assert [m.value for m in answer.markdown].count("Run `make setup`.") == 1  # streamed, not repeated
    citation = [e for e in at.expander if "guide.md" in e.label]
    assert citation and "Guide > Install" in citation[0].label
    assert citation[0].markdown[0].value == "> Install with make setup."
    assert agent.calls == [("stream", "How do I install it?", None)]


def test_conversation_continues_in_the_same_thread(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "first question")
    at = ask(at, "second question")
    assert agent.calls[1] == ("stream", "second question", "t-1")
    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2


def test_side_effect_tool_waits_for_approval(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "create a task for the report")
    assert any("create_task" in w.value for w in at.warning)
    assert agent.calls == [("stream", "create a task for the report", None)]
    approve = next(b for b in at.button if b.label == "Approve")
    approve.click().run()
    assert not at.exception
    assert agent.calls[-1] == ("resume", "t-1", True)
    assert any(m.value == "Task created." for m in at.chat_message[-1].markdown)
    assert not [b for b in at.button if b.label == "Approve"]


def test_denied_tool_is_not_run(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "create a task")
    next(b for b in at.button if b.label == "Deny").click().run()
    assert agent.calls[-1] == ("resume", "t-1", False)
    assert any("did not create" in m.value for m in at.chat_message[-1].markdown)


def test_plan_renders_as_checklist_with_downloads(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "make a plan for the release")
    labels = [c.label for c in at.checkbox]
    assert labels == ["**Run the tests** — make test", "**Tag the version**"]
    assert {b.label for b in at.download_button} == {"Download JSON", "Download YAML"}
    assert any(b.label == "Turn into tasks" for b in at.button)


def test_error_event_is_shown_with_the_fix(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "is the server down")
    assert any("No TGI server" in e.value and "What to do:" in e.value for e in at.error)


def test_exception_in_the_agent_becomes_a_readable_error(monkeypatch, agent):
    at = ask(app_test(monkeypatch, agent).run(), "this will fail")
    errors = [e.value for e in at.error]
    assert any("model server refused the connection" in e and "What to do:" in e for e in errors)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]


def test_settings_change_reaches_the_agent(monkeypatch, agent):
    at = app_test(monkeypatch, agent).run()
    assert "Using **local**" in at.sidebar.caption[0].value
    at.sidebar.selectbox(key="set_backend").select("tgi").run()
    at.sidebar.text_input(key="set_tgi_url").input("http://127.0.0.1:9999").run()
    at.sidebar.selectbox(key="set_search_mode").select("bm25").run()
    at.sidebar.number_input(key="set_search_k").set_value(3).run()
    at.sidebar.slider(key="set_temperature").set_value(0.7).run()
    summary = at.sidebar.caption[0].value
    assert "tgi" in summary and "http://127.0.0.1:9999" in summary and "bm25 k=3" in summary
    ask(at, "hello")
    settings = agent.settings_seen[-1]
    assert (settings.backend, settings.tgi_url, settings.search_mode, settings.search_k,
            settings.temperature) == ("tgi", "http://127.0.0.1:9999", "bm25", 3, 0.7)


def test_health_line_reports_model_and_chroma(monkeypatch, agent):
    at = app_test(monkeypatch, agent).run()
    lines = [c.value for c in at.sidebar.caption]
    assert any("**Model**" in line for line in lines)
    assert any("**Chroma**" in line for line in lines)


@pytest.mark.slow
def test_upload_ingests_lists_and_removes_a_document(monkeypatch):
    at = app_test(monkeypatch).run()
    at.switch_page("views/documents.py").run()
    assert not at.exception, at.exception
    at.file_uploader[0].set_value(("notes.md", b"# Notes\n\nThe launch code is 42.\n", "text/markdown"))
    at.run()
    next(b for b in at.button if b.label == "Ingest uploads").click().run()
    assert not at.exception, at.exception
    assert any("1 added" in s.value for s in at.success), [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["document"].map(lambda p: p.rsplit("/", 1)[-1])) == ["notes.md"]
    assert table["chunks"].iloc[0] >= 1
    remove = next(s for s in at.selectbox if s.label == "Remove a document")
    remove.select(table["document"].iloc[0]).run()
    next(b for b in at.button if b.label == "Remove").click().run()
    assert any("Removed notes.md" in i.value for i in at.info)
    assert not at.dataframe


def test_missing_folder_is_reported_with_the_fix(monkeypatch):
    at = app_test(monkeypatch).run()
    at.switch_page("views/documents.py").run()
    at.text_input[0].input("/no/such/folder").run()
    next(b for b in at.button if b.label == "Ingest folder").click().run()
    assert any("No such file or folder: /no/such/folder" in e.value and "What to do:" in e.value
               for e in at.error)


def _write_run(name: str, accuracy: float, categories: dict[str, float]):
    from eval.runs import RunWriter, new_run_dir

    writer = RunWriter(new_run_dir("toolcalls", name))
    writer.write_config({"name": name, "kind": "toolcalls"})
    for i in range(4):
        writer.add_item({"id": f"item-{i}", "passed": i < accuracy * 4, "latency_s": 0.1})
    writer.write_summary({"kind": "toolcalls", "name": name,
                          "overall": {"items": 4, "accuracy": accuracy, "latency_p50_s": 0.1},
                          "categories": {c: {"items": 2, "accuracy": v} for c, v in categories.items()}})
    return writer.path


def test_evaluation_lists_shows_and_compares_runs(monkeypatch):
    _write_run("base", 0.5, {"simple": 0.5, "parallel": 0.5})
    _write_run("tuned", 0.75, {"simple": 1.0, "parallel": 0.5})
    at = app_test(monkeypatch).run()
    at.switch_page("views/evaluation.py").run()
    assert not at.exception, at.exception
    assert sorted(at.dataframe[0].value["run"]) == ["base", "tuned"]
    assert len(at.tabs) == 2 and not at.error
    compare_tab = at.tabs[1]
    table = compare_tab.dataframe[0].value.set_index("metric")
    assert table.loc["accuracy", "B − A"] == pytest.approx(0.25)
    assert {"A", "B"} <= set(table.columns)
    next(b for b in at.button if b.label.startswith("Write a comparison report")).click().run()
    assert any("report.md" in s.value for s in at.success), [e.value for e in at.error]


def test_tasks_table_filters_and_updates(monkeypatch):
    from agent.tasks import TaskStore

    store = TaskStore()
    first = store.create("Write the report", "two pages")
    store.create("Book the room")
    at = app_test(monkeypatch).run()
    at.switch_page("views/tasks.py").run()
    assert not at.exception, at.exception
    assert sorted(at.dataframe[0].value["title"]) == ["Book the room", "Write the report"]
    at.text_input(key="task-text").input("report").run()
    assert list(at.dataframe[0].value["title"]) == ["Write the report"]
    at.selectbox(key=f"task-status-{first.id}").select("done").run()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert store.get(first.id).status == "done"
    at.text_input(key="task-text").input("").run()
    at.selectbox(key="task-filter").select("done").run()
    assert list(at.dataframe[0].value["title"]) == ["Write the report"]


def test_stored_plan_turns_into_tasks(monkeypatch):
    from agent.plans import PlanStore
    from agent.tasks import TaskStore

    plan_id = PlanStore().save(Plan(goal="Ship it", steps=[Step(title="Test"), Step(title="Tag")]))
    at = app_test(monkeypatch).run()
    at.switch_page("views/tasks.py").run()
    assert any("Ship it" in e.label for e in at.expander)
    assert {b.label for b in at.download_button} == {"Download JSON", "Download YAML"}
    next(b for b in at.button if b.label == "Turn into tasks").click().run()
    assert not at.exception, at.exception
    assert any("Added 2 tasks" in s.value for s in at.success)
    assert sorted(t.title for t in TaskStore().list() if t.plan_id == plan_id) == ["Tag", "Test"]


from ui.app.views.generate import EXAMPLE as SERVICE  # noqa: E402 - the page's own example schema


def _generate_page(monkeypatch, schema: str, intent: str, yaml: bool = False, search: bool = False):
    at = app_test(monkeypatch).run()
    at.switch_page("views/generate.py").run()
    assert not at.exception, at.exception
    at.text_area(key="generate-schema").input(schema).run()
    at.text_area(key="generate-intent").input(intent).run()
    if yaml:
        at.radio(key="generate-format").set_value("YAML").run()
    if search:
        at.checkbox(key="generate-search").check().run()
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, at.exception
    return at


def test_generate_page_names_the_pointer_of_a_bad_schema(monkeypatch):
    at = _generate_page(monkeypatch, '{"properties": {"p": {"$ref": "#/$defs/port"}}}', "port 80")
    assert any("pasted schema: at /properties/p/$ref: cannot resolve" in e.value for e in at.error)


def test_generate_page_shows_the_last_output_when_nothing_validates(monkeypatch, model_server):
    monkeypatch.setenv("ANDINI_BACKEND", "tgi")
    model_server.replies += [{"text": '{"name": "shop"}'}] * 3
    at = _generate_page(monkeypatch, SERVICE, "shop on 8443")
    assert any("No valid document after 3 attempt(s)" in e.value for e in at.error)
    assert any('{"name": "shop"}' in c.value for c in at.code)
    assert any("'port' is a required property" in m.value for m in at.markdown)


@pytest.mark.slow
def test_generate_page_writes_a_valid_yaml_document_from_a_passage(monkeypatch):
    """The real model, grounded in one real ingested document: the YAML shown validates, and the
    passage it used is listed."""
    import yaml

    from andini.docschema import load_schema_text
    from andini.settings import get_settings
    from retrieval.ingest import ingest

    doc = get_settings().home / "shop.md"
    doc.write_text("# Shop service\n\nThe shop service listens on port 8443 and speaks https.\n")
    assert ingest([doc]).ok
    at = _generate_page(monkeypatch, SERVICE, "The shop service's settings.", yaml=True, search=True)
    assert any("Valid against the schema" in s.value for s in at.success), [e.value for e in at.error]
    document = yaml.safe_load(at.code[0].value)
    assert load_schema_text(SERVICE).errors(document) == []
    assert any("shop.md" in e.label for e in at.expander)


def test_plan_card_runs_its_tool_calls_after_approval(monkeypatch):
    from agent.plans import PlanStore
    from agent.tasks import TaskStore

    plan_id = PlanStore().save({"goal": "Remember the bank", "steps": [
        {"title": "Add", "tool_call": {"name": "create_task", "arguments": {"title": "Call the bank"}}},
        {"title": "Phone", "detail": "by hand"}]})
    at = app_test(monkeypatch).run()
    at.switch_page("views/tasks.py").run()
    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception, at.exception
    assert any("Stopped at step 1" in w.value for w in at.warning) and TaskStore().list() == []
    at.checkbox(key=f"plan-approve-{plan_id}").check().run()
    next(b for b in at.button if b.label == "Continue").click().run()
    assert any("every step done" in s.value for s in at.success), [e.value for e in at.error]
    assert [t.title for t in TaskStore().list()] == ["Call the bank"]
    assert any("yours to do" in m.value for m in at.markdown)


def test_fresh_home_says_tool_calls_need_the_adapter(monkeypatch, agent):
    from andini.adapters import TRAIN_COMMAND

    at = app_test(monkeypatch, agent).run()
    assert "adapter `none`" in at.sidebar.caption[0].value
    [hint] = [i.value for i in at.sidebar.info if "Tool calls need" in i.value]
    assert TRAIN_COMMAND in hint
    pick = at.sidebar.selectbox(key="adapter_pick")
    assert pick.options == ["Newest for this model (none trained yet)", "None (the base model)", "Another folder…"]


@pytest.fixture
def two_adapters(tmp_path, andini_home):
    from andini.adapters import register
    from tests.adapter_support import tiny_adapter

    for name, when in (("older", "2026-12-01T10:00:00Z"), ("newer", "2026-12-02T10:00:00Z")):
        register(tiny_adapter(tmp_path / "runs" / name, finished_at=when), andini_home)
    return tmp_path / "runs"


def test_adapter_menu_lists_registered_adapters_and_reaches_the_agent(monkeypatch, agent, two_adapters):
    at = app_test(monkeypatch, agent).run()
    assert "adapter `newer`" in at.sidebar.caption[0].value
    assert not [i for i in at.sidebar.info if "Tool calls need" in i.value]
    pick = at.sidebar.selectbox(key="adapter_pick")
    assert pick.options[0] == "Newest for this model (newer)"
    assert pick.options[1:3] == ["newer (smollm2-135m-instruct · 2026-12-02 10:00 · 8 examples)",
                                 "older (smollm2-135m-instruct · 2026-12-01 10:00 · 8 examples)"]
    ask(at, "hello")
    assert agent.settings_seen[-1].adapter is None  # unset: the newest, resolved by the agent

    at.sidebar.selectbox(key="adapter_pick").select("older").run()
    assert "adapter `older`" in at.sidebar.caption[0].value
    ask(at, "hello again")
    assert agent.settings_seen[-1].adapter == "older"

    at.sidebar.selectbox(key="adapter_pick").select(":none").run()
    assert "adapter `none`" in at.sidebar.caption[0].value
    assert any("ANDINI_ADAPTER=none" in i.value for i in at.sidebar.info)
    ask(at, "and without")
    assert agent.settings_seen[-1].adapter == "none"

    at.sidebar.selectbox(key="adapter_pick").select(":folder").run()
    folder = str(two_adapters / "older")
    at.sidebar.text_input(key="set_adapter").input(folder).run()
    assert f"adapter `{folder}`" in at.sidebar.caption[0].value
    ask(at, "from a folder")
    assert agent.settings_seen[-1].adapter == folder


def test_server_backend_takes_an_adapter_id(monkeypatch, agent, two_adapters):
    at = app_test(monkeypatch, agent).run()
    at.sidebar.selectbox(key="set_backend").select("tgi").run()
    assert "LoRA adapter" not in [s.label for s in at.sidebar.selectbox]  # local folders mean nothing to TGI
    field = at.sidebar.text_input(key="set_adapter")
    assert field.label == "LoRA adapter id"
    field.input("andini").run()
    assert "adapter `andini`" in at.sidebar.caption[0].value
    assert not [i for i in at.sidebar.info if "Tool calls need" in i.value]  # a server's adapter: its business
    ask(at, "hello")
    assert agent.settings_seen[-1].adapter == "andini"
