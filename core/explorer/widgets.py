"""Display pieces the pages share. User content is always shown as text, never as HTML or
Markdown: st.text / st.code / st.json / st.dataframe render it literally, and text placed in
plotly charts is escaped first (plotly reads a subset of HTML in labels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pandas as pd
import streamlit as st

from core.errors import NotFound
from core.evaluation import EvalCase
from core.explorer.changes import changes_text, dated_before, event_summary
from core.explorer.colours import type_colours
from core.explorer.debugger import superseded_cells
from core.explorer.frames import table_frame
from core.explorer.labels import count, day, markdown_literal, short
from core.explorer.state import Scope, failure_message, guard
from core.models import Memory

# Tables: a row this tall wraps long text over three lines (Streamlit wraps above 4rem); a cell
# clicked shows its whole text.
ROW_WRAP = 70
DATE = "D MMM YYYY"  # "12 Mar 2026" (a DatetimeColumn's format: sorts as a date, reads as one)
TEXT_COLUMNS: dict[str, Any] = {
    "content": st.column_config.TextColumn("content", width="large", help="Long text wraps; click a cell to read all of it."),
    "superseded": st.column_config.LinkColumn(
        "superseded",
        width=95,
        display_text=r"#(.+)$",
        help="A newer memory updated or contradicted this one, so an agent may answer from the past: the link opens the newer memory.",
    ),
    "id": None,
}


def table_height(rows: int, shown: int = 8) -> int:
    """Pixels for a wrapped table showing up to `shown` rows before it scrolls."""
    return 38 + ROW_WRAP * max(1, min(rows, shown))


def date_columns(*names: str) -> dict[str, Any]:
    """Date columns that read as dates ("12 Mar 2026"); pair with placeholder="never" on the table
    when a missing date means never."""
    return {n: st.column_config.DatetimeColumn(n, format=DATE) for n in names}


def link_to_memory(memory_id: UUID | str) -> str:
    """A link to this page as it is now, with that memory open."""
    return "?" + urlencode({**st.query_params.to_dict(), "memory": str(memory_id)})


def store_type_colours(scope: Scope) -> dict[str, str]:
    """The colour of each memory type of the store, the same on every page."""
    return type_colours(store_frame(scope)["memory_type"].unique())


def data_version() -> int:
    return st.session_state.setdefault("data_version", 0)


def data_changed() -> None:
    """Call after any write: cached frames of this session are read again."""
    st.session_state["data_version"] = data_version() + 1
    st.cache_data.clear()
    _frame.clear()


# cache_resource, not cache_data: cache_data hands each run a copy (unpickled: a fifth of a second
# for a store of 20,000, on every page that reads it); this frame is shared, and read only.
@st.cache_resource(
    ttl=60,
    max_entries=16,
    show_spinner=False,
    hash_funcs={"core.explorer.state.Scope": lambda s: (str(s.tenant.id), str(s.store.id), s.store.total_memories)},
)
def _frame(scope: Scope, version: int) -> pd.DataFrame:
    return table_frame(scope.svc.memory_table(scope.store.id))  # newest first


def store_frame(scope: Scope) -> pd.DataFrame:
    """The selected store's memories (cached until the next write of this session): shared by
    every page run, so never changed in place."""
    return _frame(scope, data_version())


def memory_detail(scope: Scope, memory: Memory, *, key: str = "detail") -> str | None:
    """The whole memory: content (literally), metadata JSON, statistics, and its relationships in
    a table; returns the id of a related memory the user selected in that table, if any."""
    st.text(
        f"{memory.memory_type} · {memory.source or 'no source'} · importance {memory.importance:.2f}"
        f" · {memory.status(pd.Timestamp.now(tz='UTC'))}"
    )
    with st.container(border=True):
        st.text(memory.content)
    newer = superseded_notice(scope, memory.id, key)
    if newer is not None:
        return newer
    cols = st.columns(4)
    counted = (
        "Counted by the searches that ask for it (record_access: on by default for agents, the CLI and Python callers;"
        " a choice on the Search page; never for evaluations, explanations and replays). The line below the metadata"
        " counts every logged search that returned it."
    )
    cols[0].metric("Accesses", memory.access_count, help=counted)
    cols[1].metric("Last accessed", day(memory.last_accessed), help=counted)
    cols[2].metric("Created", day(memory.created_at))
    cols[3].metric("Expires", day(memory.expires_at))
    st.caption("Metadata")
    st.json(memory.metadata, expanded=True)
    st.caption(f"id {memory.id}")
    with guard("Could not read the log"):
        retrieved_line(scope, memory.id)
    with guard("Could not read the history"):
        history_timeline(scope, memory, key)
    related = scope.svc.neighbours(memory.id, depth=1, direction="both", limit=100)
    st.caption(f"Relationships: {len(related)} (select a row to open that memory)")
    if not related:
        return None
    table = pd.DataFrame(
        {
            "direction": ["→ outgoing" if r.direction == "outgoing" else "← incoming" for r in related],
            "type": [r.relationship_type for r in related],
            "strength": [r.strength for r in related],
            "memory": [r.memory.content for r in related],
            "id": [str(r.memory.id) for r in related],
        }
    )
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"{key}-rel-{memory.id}",
        row_height=ROW_WRAP if any(len(r.memory.content) > 90 for r in related) else None,
        column_config={
            "direction": st.column_config.TextColumn(width=100),
            "type": st.column_config.TextColumn(width=100),
            "strength": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f", width=110),
            "memory": st.column_config.TextColumn("memory", width="large"),
            "id": None,
        },
    )
    rows = event.selection.rows if event else []
    return table.iloc[rows[0]]["id"] if rows else None


def retrieved_line(scope: Scope, memory_id: UUID) -> None:
    """ "Retrieved N times, last for <query> by <caller>", linked to that entry of the log."""
    found = scope.svc.memory_retrievals(memory_id)
    if found.last is None:
        st.caption("Never returned by a logged search.")
        return
    last = found.last
    who = last.key_name or last.interface
    st.page_link(
        "pages/retrievals.py",
        label=markdown_literal(f"Retrieved {count(found.count, 'time')}, last on {day(last.at)} for “{short(last.query, 80)}” by {who}"),
        query_params={"entry": str(last.id)},
        icon=":material/history_edu:",
        help="Open that search on the Retrievals page: what came back then, and a replay against today's memories.",
    )


def _restore(scope: Scope, memory_id: UUID, version: int) -> str:
    scope.svc.restore_memory(memory_id, version)
    return f"Restored version {version}"


def history_timeline(scope: Scope, memory: Memory, key: str) -> None:
    """Every change the database recorded for the memory, newest first, a diff per edit, and a
    Restore button per earlier version (asks first)."""
    try:
        events = scope.svc.get_memory_history(memory.id)
    except NotFound:  # written before history was kept
        st.caption("No history recorded for this memory.")
        return
    with st.expander(f"History: {count(len(events), 'change')}", icon=":material/history:"):
        latest = events[-1].version
        for event in reversed(events):
            with st.container(border=True):
                st.text(event_summary(event))
                if note := dated_before(event, memory.created_at):
                    st.caption(note)
                if diff := changes_text(event.changes):
                    st.text(diff)
                if event.version < latest and event.event not in ("deleted", "merged") and scope.svc.may("write"):
                    if st.button(
                        f"Restore version {event.version}", key=f"{key}-restore-{memory.id}-{event.version}", icon=":material/undo:"
                    ):
                        ask(
                            f"Restore version {event.version}",
                            f"Set this memory back to how it was right after version {event.version}? "
                            "The restore is itself recorded, so it can be undone the same way.",
                            partial(_restore, scope, memory.id, event.version),
                            subject=short(memory.content, 200),
                        )
                        st.rerun()


def add_to_eval_set(scope: Scope, query: str, options: dict[str, str], key: str, picked: Sequence[str] = ()) -> None:
    """Mark the memories that should come back for `query` (ids -> labels) and add the case to an
    evaluation set of the store, existing or new."""
    st.caption("Mark the memories that should come back for this query; the Evaluate page then measures every mode on such cases.")
    expected = st.multiselect(
        "Memories that should come back",
        list(options),
        default=[i for i in picked if i in options],
        format_func=lambda i: options[i],
        key=f"{key}_expected",
    )
    sets = {str(s.id): s.name for s in scope.svc.list_eval_sets(scope.store.id)}
    target = st.selectbox("Evaluation set", [None, *sets], format_func=lambda i: sets[i] if i else "A new set…", key=f"{key}_set")
    name = None if target else st.text_input("Name of the new set", key=f"{key}_name", placeholder="e.g. travel questions")
    if st.button("Add to evaluation set", disabled=not expected, icon=":material/playlist_add:", key=f"{key}_add"):
        case = EvalCase.checked(query, expected)
        if target:
            scope.svc.add_eval_case(target, case)
        else:
            scope.svc.save_eval_set(scope.store.id, name or "", [case])
        data_changed()
        st.success("Added: run the set on the Evaluate page.")


def superseded_notice(scope: Scope, memory_id: UUID, key: str) -> str | None:
    """Say so when a newer memory updates or contradicts this one, with that memory's text and a
    button that opens it; returns its id when pressed."""
    found = scope.svc.superseded_among([memory_id]).get(memory_id)
    if found is None:
        return None
    newer = scope.svc.get_memory(found.newer_id)
    with st.container(border=True):
        st.warning(
            f"Superseded: a newer memory {found.relationship_type} this one"
            f" ({'created' if newer.store_id == scope.store.id else 'in another store, created'} {day(newer.created_at)}).",
            icon=":material/history:",
        )
        st.text(newer.content)
        if st.button("Open the newer memory", key=f"{key}-newer-{memory_id}", icon=":material/arrow_forward:"):
            return str(found.newer_id)
    return None


def superseded_links(scope: Scope, ids: Sequence[str]) -> list[str | None]:
    """For a table of these memories: a link to the newer memory of each superseded one."""
    found = scope.svc.superseded_among(list(ids)) if ids else {}
    return superseded_cells([UUID(str(i)) for i in ids], found, link_to_memory)


# Writes: confirm first when destructive, then say what was done -------------------------------

_PENDING, _FLASH, _FAILED = "confirm_pending", "flash_message", "flash_failure"


def flash(message: str) -> None:
    """After a write: refresh cached data and show `message` on the next run."""
    data_changed()
    st.session_state[_FLASH] = message


def done(message: str) -> None:
    """After a write in the page's script: flash and run the page again with fresh data."""
    flash(message)
    st.rerun()


def show_flash() -> None:
    """What the last write did (a toast), or why a confirmed action failed (an error box)."""
    if message := st.session_state.pop(_FLASH, None):
        st.toast(message, icon=":material/check_circle:")
    if failure := st.session_state.pop(_FAILED, None):
        st.error(failure, icon=":material/error:")


def ask(label: str, note: str, action: Callable[[], str], subject: str | None = None) -> None:
    """Queue a destructive action; `confirm_pending()` asks before it runs. `label` names the
    button, `note` says what cannot be undone (app text only), `subject` is shown as plain text
    (a user's name, say); `action` returns what to tell the user afterwards."""
    st.session_state[_PENDING] = (label, note, action, subject)


def _run_confirmed() -> None:
    """Runs as the button's callback, before anything is drawn: the action, then what to say
    about it (shown by show_flash on the run that follows)."""
    pending = st.session_state.pop(_PENDING, None)
    if pending is None:  # a second click on a dialog that is closing
        return
    label, _, action, _ = pending
    try:
        flash(action())
    except Exception as exc:  # noqa: BLE001 - said on the page, as guard() says it; the log keeps the traceback
        data_changed()  # a batch may have half-run before it failed: read the store again
        st.session_state[_FAILED] = failure_message(exc, f"Could not finish ({label.lower()})")


def _cancel() -> None:
    st.session_state.pop(_PENDING, None)


@st.dialog("Please confirm", on_dismiss=_cancel)
def _confirm_dialog() -> None:
    pending = st.session_state.get(_PENDING)
    if pending is None:
        # The buttons' callbacks have run (confirmed or cancelled) and Streamlit reruns only this
        # dialog: run the whole page again, which closes the dialog and draws what changed.
        st.rerun()
    label, note, _, subject = pending
    if subject is not None:
        st.text(subject)
    st.write(note)
    left, right = st.columns(2)
    left.button(label, key="confirm_yes", type="primary", width="stretch", on_click=_run_confirmed)
    right.button("Cancel", key="confirm_no", width="stretch", on_click=_cancel)


def confirm_pending() -> None:
    """Draw the confirmation dialog of a queued action; call it at the end of the page."""
    if _PENDING in st.session_state:
        _confirm_dialog()
