"""A Chroma server restarted in the middle of a session (issue 12, part 4): while it is down, a search
fails with an error naming the URL and the setting; once it is back, the next search from the same
process answers from the same stored data, with nothing rebuilt or reconfigured. Real `chroma run`,
real embeddings."""

from __future__ import annotations

import pytest

from andini.errors import AndiniError
from andini.settings import get_settings
from tests.retrieval_support import chroma_server

RUNBOOK = "# Exporter runbook\n\n## Restart\n\nRestart the exporter with `systemctl restart exporter`.\n"


def test_search_recovers_after_the_chroma_server_restarts(tmp_path, free_port, monkeypatch):
    from retrieval.ingest import ingest
    from retrieval.search import search

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "exporter.md").write_text(RUNBOOK)
    data = tmp_path / "chroma-data"
    with chroma_server(data, free_port) as url:
        monkeypatch.setenv("ANDINI_CHROMA_URL", url)
        get_settings.cache_clear()
        assert ingest([docs]).files_added == 1
        before = search("how to restart the exporter", k=1)
        assert before and before[0].source.source.endswith("exporter.md")

    with pytest.raises(AndiniError) as down:
        search("how to restart the exporter", k=1)
    assert url in str(down.value) and "ANDINI_CHROMA_URL" in str(down.value)

    with chroma_server(data, free_port):
        after = search("how to restart the exporter", k=1)
        assert [h.chunk_id for h in after] == [h.chunk_id for h in before]
        assert ingest([docs]).chunks_written == 0  # the restarted server kept the index
