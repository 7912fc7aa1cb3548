"""Import / export: JSONL files in the CLI's format (core/jsonl.py), checked and previewed before
anything is written; the whole store as a download."""

import re

import pandas as pd
import streamlit as st

from core.explorer.labels import count
from core.explorer.state import current_scope, guard
from core.explorer.widgets import data_changed
from core.jsonl import ParsedFile, parse_jsonl

PREVIEW_ROWS = 20
EXAMPLE = """{"id": "6f1c0c52-8d2e-4c1e-9f4e-0a4c5b7e9d10", "content": "Prefers aisle seats", "memory_type": "preference", "importance": 0.8}
{"id": "0d9e6b1a-3f47-4b8e-a2c5-7e1f9d3b6a20", "content": "Flies to Lisbon every month", "source": "chat"}
{"kind": "relationship", "source_memory_id": "6f1c0c52-8d2e-4c1e-9f4e-0a4c5b7e9d10", "target_memory_id": "0d9e6b1a-3f47-4b8e-a2c5-7e1f9d3b6a20", "relationship_type": "related", "strength": 0.6}"""
scope = current_scope()
svc, store = scope.svc, scope.store


@st.cache_data(max_entries=4, show_spinner="Checking every line…")
def check(data: bytes, dim: int) -> ParsedFile:
    """Parsed once per file content: reruns (ticking an option) do not parse again."""
    return parse_jsonl(data, dim)


def file_name() -> str:
    parts = (scope.tenant.name, scope.user.name, store.store_name)
    return "-".join(re.sub(r"[^\w.-]+", "_", p).strip("_") or "x" for p in parts) + ".jsonl"


st.title("Import / export")
st.caption("Move memories in and out of the selected store as JSON Lines, the format of `memex import` and `memex export`.")
with st.expander("The file format", icon=":material/description:"):
    st.write(
        "One JSON object a line. A memory needs `content`; `id`, `memory_type`, `source`, `importance`, `metadata`, "
        "`created_at`, `expires_at`, `archived` and `embedding` are optional. A relationship line has "
        '`"kind": "relationship"`, `source_memory_id`, `target_memory_id`, `relationship_type` and optionally `strength`.'
    )
    st.code(EXAMPLE, language="json")
if report := st.session_state.pop("import_report", None):
    st.success(
        f"Imported {count(report.memories, 'memory')} and {count(report.relationships, 'relationship')}.", icon=":material/check_circle:"
    )
    if report.skipped:
        st.warning(f"{len(report.skipped)} lines were skipped:")
        st.dataframe(pd.DataFrame({"skipped": report.skipped}), hide_index=True)

import_tab, export_tab = st.tabs(["Import", "Export"])
with import_tab:
    if not svc.may("write"):
        st.info("Your role in this tenant is viewer: you may export, not import. An editor or admin imports.", icon=":material/lock:")
    else:
        upload = st.file_uploader(
            "JSONL file",
            type=["jsonl", "json", "txt"],
            key=f"import_file_{st.session_state.get('import_n', 0)}",
            help=f"Embeddings, when present, must have {store.embedding_dim} dimensions "
            f"({store.embedding_model}); lines without one are embedded on import.",
        )
        if upload is None:
            st.info("Choose a file to see what it holds. Nothing is written before you press Import.")
        else:
            with guard("Could not read the file"):
                parsed = check(upload.getvalue(), store.embedding_dim)
                counts = st.columns(3)
                counts[0].metric("Memories", len(parsed.memories))
                counts[1].metric("Relationships", len(parsed.relationships))
                counts[2].metric("Bad lines", len(parsed.errors))
                preview = pd.DataFrame(
                    [
                        (
                            n,
                            m.content,
                            m.memory_type,
                            m.source,
                            m.importance,
                            m.archived,
                            m.embedding is not None,
                            str(m.id) if m.id else "",
                        )
                        for n, m in parsed.memories[:PREVIEW_ROWS]
                    ],
                    columns=["line", "content", "type", "source", "importance", "archived", "has embedding", "id"],
                )
                st.caption(
                    f"Preview: the first {min(PREVIEW_ROWS, len(parsed.memories))} of the file's {count(len(parsed.memories), 'memory')}"
                )
                st.dataframe(
                    preview, hide_index=True, placeholder="", column_config={"content": st.column_config.TextColumn(width="large")}
                )
                if parsed.errors:
                    st.error(
                        f"{len(parsed.errors)} lines cannot be imported. Fix them, or tick 'Skip bad lines' to import the rest.",
                        icon=":material/rule:",
                    )
                    numbered = [e.split(": ", 1) for e in parsed.errors]
                    st.dataframe(
                        pd.DataFrame({"line": [int(n.removeprefix("line ")) for n, _ in numbered], "problem": [p for _, p in numbered]}),
                        hide_index=True,
                    )
                options = st.columns(2)
                skip = options[0].checkbox("Skip bad lines", key="import_skip", disabled=not parsed.errors)
                new_ids = options[1].checkbox(
                    "New ids (copy into this store)",
                    key="import_new_ids",
                    help="Give the file's memories new ids, so a file exported from another store of "
                    "this tenant is copied instead of clashing with the originals.",
                )
                blocked = bool(parsed.errors) and not skip
                if st.button(
                    "Import", type="primary", icon=":material/upload:", disabled=blocked or not (parsed.memories or parsed.relationships)
                ):
                    bar = st.progress(0.0, text="Embedding and writing…")
                    with guard("The import stopped (batches already written stay; importing the same file again completes it)"):
                        result = svc.import_memories(
                            store.id,
                            parsed,
                            skip_bad=skip,
                            new_ids=new_ids,
                            progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} memories"),
                        )
                        data_changed()
                        st.session_state["import_report"] = result
                        st.session_state["import_n"] = st.session_state.get("import_n", 0) + 1  # an empty uploader again
                        st.rerun()

with export_tab:
    st.caption(
        "Every memory of the store (expired and archived included), then every relationship between them. "
        "Importing the file into an empty store recreates this one."
    )
    embeddings = st.checkbox(
        "Include embeddings",
        value=True,
        key="export_embeddings",
        help="Without them the file is much smaller; importing it embeds the memories again.",
    )
    st.download_button(
        "Download JSONL",
        lambda: "\n".join(svc.export_lines(store.id, embeddings=embeddings)) + "\n",
        file_name=file_name(),
        mime="application/jsonl",
        type="primary",
        icon=":material/download:",
        on_click="ignore",
        disabled=store.total_memories == 0,
    )
    st.text(f"{count(store.total_memories, 'memory')} · {file_name()}")
