"""Memories: filter and sort the store's memories, open one, add, edit, expire, archive, delete."""

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TypedDict

import pandas as pd
import streamlit as st

from core.explorer.frames import memory_frame, status_words
from core.explorer.labels import count, heading
from core.explorer.state import current_scope, guard, param, set_params
from core.explorer.widgets import (
    DATE,
    ROW_WRAP,
    TEXT_COLUMNS,
    ask,
    confirm_pending,
    data_version,
    done,
    memory_detail,
    show_flash,
    store_frame,
    superseded_links,
    table_height,
)
from core.models import SORTABLE, Memory

PAGE_SIZE = 100
# frame column -> table heading, in the table's order
COLUMNS = {
    "content": "content",
    "memory_type": "type",
    "source": "source",
    "importance": "importance",
    "access_count": "accesses",
    "last_accessed": "last accessed",
    "created_at": "created",
    "status": "status",
    "superseded": "superseded",
    "id": "id",
}
NOTES = {
    "Delete": "Deleted memories and their relationships cannot be brought back.",
    "Expire": "Search stops returning expired memories; they stay in the store until purged.",
    "Archive": "Search skips archived memories; unarchive brings them back.",
    "Unarchive": "Search finds them again.",
}
DATES = ("last accessed", "created")
# with content's 220, every column fits at 1400 px, superseded too
WIDTHS = {"type": 90, "source": 100, "accesses": 70, "last accessed": 85, "created": 85, "status": 85}
scope = current_scope()
svc, store = scope.svc, scope.store
writable = svc.may("write")  # a viewer looks; the actions below are not drawn for them


class Filters(TypedDict):
    """The table's filters: keyword arguments of list_memories."""

    memory_types: list[str]
    sources: list[str]
    text_contains: str | None
    min_importance: float
    max_importance: float
    include_expired: bool
    archived: bool | None
    created_after: datetime | None
    created_before: datetime | None
    order_by: str
    descending: bool


def utc(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def confirm(verb: str, what: str, action: Callable[[], str]) -> None:
    """Destructive actions wait for the confirmation dialog."""
    ask(f"{verb} {what}", f"{verb} {what}? {NOTES[verb]}", action)


def delete_open(memory_id: str) -> str:
    svc.delete_memory(memory_id)
    set_params(memory=None)
    return "Memory deleted"


def expire_open(memory_id: str) -> str:
    return f"Expired {count(svc.expire_memories([memory_id]), 'memory')}"


def bulk_action(verb: str, run: Callable[[list[str]], int], ids: list[str]) -> str:
    return f"{verb}d {count(run(ids), 'memory')}"


def memory_form(key: str, types: list[str], memory: Memory | None = None) -> dict | None:
    """Add (empty) or edit (pre-filled) form; returns checked fields once submitted, else None."""
    key = f"{key}_{data_version()}"  # a fresh form after each write
    kinds = sorted(set(types) | {memory.memory_type if memory else "fact"})
    old_expiry = memory.expires_at.date() if memory and memory.expires_at else None
    with st.form(key, border=False):
        content = st.text_area("Content", memory.content if memory else "", height=120, key=f"{key}_content")
        top = st.columns(3)
        kind = top[0].selectbox(
            "Type", kinds, kinds.index(memory.memory_type if memory else "fact"), accept_new_options=True, key=f"{key}_type"
        )
        source = top[1].text_input("Source (optional)", (memory.source or "") if memory else "", key=f"{key}_source")
        importance = top[2].slider("Importance", 0.0, 1.0, memory.importance if memory else 0.5, 0.01, key=f"{key}_importance")
        bottom = st.columns([3, 1])
        meta = bottom[0].text_area(
            "Metadata (a JSON object)",
            json.dumps(memory.metadata if memory else {}, indent=2, ensure_ascii=False),
            height=100,
            key=f"{key}_metadata",
        )
        expires = bottom[1].date_input("Expires on (optional)", old_expiry, key=f"{key}_expires")
        if not st.form_submit_button("Save changes" if memory else "Add memory", type="primary"):
            return None
    try:
        metadata = json.loads(meta.strip() or "{}")
        problem = "" if isinstance(metadata, dict) else f"found a {type(metadata).__name__}"
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    if problem:
        st.error(f'Metadata must be a JSON object such as {{"project": "apollo"}}, or {{}} for none ({problem}).')
        return None
    fields = dict(content=content, memory_type=kind, source=source.strip() or None, importance=importance, metadata=metadata)
    return fields | ({"expires_at": utc(expires)} if expires != old_expiry else {})


st.title("Memories")
st.caption("Filter, sort and select memories: select one row to open it, several for bulk actions.")
show_flash()

frame = store_frame(scope)
types, sources = sorted(frame["memory_type"].unique()), sorted(frame["source"].dropna().unique())
with st.container(border=True):
    first = st.columns([2, 2, 3, 2])
    chosen_types = first[0].multiselect("Type", types, key="type", bind="query-params")
    chosen_sources = first[1].multiselect(
        "Source", [""] + sources, key="source", bind="query-params", format_func=lambda s: s or "(no source)"
    )
    contains = first[2].text_input("Content or metadata contains", key="q", bind="query-params")
    low, high = first[3].slider("Importance", 0.0, 1.0, (0.0, 1.0), 0.05, key="importance")
    second = st.columns([3, 3, 2, 2, 2])
    created = second[0].date_input("Created between", value=[], key="created")
    archived = (
        second[1].segmented_control("Archived", ["all", "active", "archived"], default="all", key="archived", bind="query-params") or "all"
    )
    expired = second[2].toggle("Include expired", key="expired", bind="query-params")
    order = second[3].selectbox("Sort by", SORTABLE, key="sort", bind="query-params", format_func=heading)
    descending = second[4].toggle("Descending", value=True, key="desc", bind="query-params")

filters = Filters(
    memory_types=chosen_types,
    sources=chosen_sources,
    text_contains=contains or None,
    min_importance=low,
    max_importance=high,
    include_expired=expired,
    archived={"all": None, "active": False, "archived": True}[archived],
    created_after=utc(created[0]) if created else None,
    created_before=utc(created[1] + timedelta(days=1)) if len(created) > 1 else None,
    order_by=order,
    descending=descending,
)
signature = repr(sorted(filters.items()))
if st.session_state.get("memories_signature") != signature:  # new filters start on page 1
    st.session_state["memories_signature"], st.session_state["memories_page"] = signature, 1
number = st.session_state.get("memories_page", 1)
with guard("Could not list the memories"):
    result = svc.list_memories(store.id, **filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    pages = max(1, -(-result.total // PAGE_SIZE))
    if number > pages:  # the last page emptied by a delete
        st.session_state["memories_page"] = pages
        st.rerun()
    listed = memory_frame(result.items)
    listed = listed.assign(
        source=listed["source"].fillna(""),
        status=status_words(listed),
        superseded=pd.Series([link or "" for link in superseded_links(scope, list(listed["id"]))], dtype=object),
    )
    table = listed[list(COLUMNS)].rename(columns=COLUMNS)
    st.caption(f"{result.total} of the store's {count(len(frame), 'memory')} match" + (f", page {number} of {pages}" if pages > 1 else ""))
    if frame.empty:
        st.info("This store holds no memories yet: add one below or import a JSONL file on the Import / export page.")
    key = f"memories_table_{abs(hash((signature, number, data_version())))}"  # a write clears the selection
    event = st.dataframe(
        table,
        key=key,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        row_height=ROW_WRAP,
        height=table_height(len(table)),
        placeholder="never",  # the only empty cells left are dates never reached (source is "" when there is none)
        column_config={
            **TEXT_COLUMNS,
            "content": st.column_config.TextColumn("content", width=220),
            **{c: st.column_config.Column(c, width=w) for c, w in WIDTHS.items()},
            "superseded": TEXT_COLUMNS["superseded"] if table["superseded"].ne("").any() else None,
            **{c: st.column_config.DatetimeColumn(c, format=DATE, width=WIDTHS[c]) for c in DATES},
            "importance": st.column_config.NumberColumn(format="%.2f", width=75, help="0 to 1: how much the memory matters."),
        },
    )
    if pages > 1:
        st.number_input("Page", 1, pages, key="memories_page")
    selected = [table.iloc[i]["id"] for i in event.selection.rows if i < len(table)]
    last_key, last_selected = st.session_state.get("memories_last", (None, []))
    if key == last_key and selected != last_selected:  # the user changed the selection: it decides what is open
        set_params(memory=selected[0] if len(selected) == 1 else None)
    st.session_state["memories_last"] = (key, selected)

    if len(selected) > 1 and writable:
        n, ids = len(selected), list(selected)
        st.caption(f"{count(n, 'memory')} selected: every bulk action asks for confirmation first")
        bulk: list[tuple[str, str, Callable[[list[str]], int]]] = [
            ("Delete", ":material/delete:", svc.delete_memories),
            ("Expire", ":material/timer_off:", svc.expire_memories),
            ("Archive", ":material/archive:", lambda ids: svc.set_archived(ids, True)),
            ("Unarchive", ":material/unarchive:", lambda ids: svc.set_archived(ids, False)),
        ]
        with st.container(horizontal=True):
            for verb, icon, run in bulk:
                if st.button(f"{verb} {n} memories", icon=icon):
                    confirm(verb, f"{n} memories", partial(bulk_action, verb, run, ids))

if writable:
    with st.expander("Add a memory", icon=":material/add:", expanded=frame.empty):
        if (fields := memory_form("memories_add", types)) is not None:
            with guard("Could not add the memory"):
                set_params(memory=str(svc.add_memory(store.id, **fields).id))
                done("Memory added and embedded")

if memory_id := param("memory"):
    memory = None
    with guard("Could not open the memory"):
        memory = svc.get_memory(memory_id)
    if memory is None:
        set_params(memory=None)  # a stale link: the error above says why
    else:
        st.divider()
        st.subheader("Selected memory")
        mid = str(memory.id)
        with st.container(horizontal=True):
            if writable:
                if st.button("Unarchive" if memory.archived else "Archive", icon=":material/archive:"):
                    with guard("Could not change the archive flag"):
                        svc.set_archived([mid], not memory.archived)
                        done("Memory unarchived" if memory.archived else "Memory archived: search skips it")
                if st.button("Expire now", icon=":material/timer_off:"):
                    confirm("Expire", "this memory", partial(expire_open, mid))
                if st.button("Delete", icon=":material/delete:"):
                    confirm("Delete", "this memory", partial(delete_open, mid))
            st.button("Close", icon=":material/close:", on_click=set_params, kwargs={"memory": None})
        if memory.store_id != store.id:
            st.info("This memory belongs to another store of this tenant (reached through a relationship).")
        if writable:
            with st.expander("Edit this memory", icon=":material/edit:"):
                if (fields := memory_form(f"memories_edit_{mid}", types, memory)) is not None:
                    with guard("Could not save the memory"):
                        svc.update_memory(mid, **fields)
                        done("Memory saved" + (" and re-embedded" if fields["content"] != memory.content else ""))
        with guard("Could not read the relationships"):
            if (related := memory_detail(scope, memory, key="memories")) is not None:
                set_params(memory=related)
                st.rerun()

confirm_pending()
