"""Quality and curation: the noise in a store (near-duplicates, memories nobody retrieves, expiring
ones, orphans of the graph) and one-click curation of what the analyst selects."""

from collections.abc import Callable
from datetime import date, timedelta
from functools import partial

import pandas as pd
import plotly.express as px
import streamlit as st

from core import MemoryService
from core.explorer.frames import creation_timeline, expiring, never_retrieved
from core.explorer.labels import plot_text
from core.explorer.state import current_scope, guard
from core.explorer.widgets import ask, confirm_pending, data_version, done, show_flash, store_frame
from core.quality import DuplicateGroup

MAX_GROUPS = 30
CONFIG = {
    "content": st.column_config.TextColumn(width="large"),
    "id": None,
    "memory_type": "type",
    "access_count": "accesses",
    "importance": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f"),
    "days_left": "days left",
    **{
        c: st.column_config.DatetimeColumn(c.replace("_at", "").replace("_", " "), format="YYYY-MM-DD HH:mm")
        for c in ("last_accessed", "created_at", "updated_at", "expires_at")
    },
}
COLUMNS = ["content", "memory_type", "source", "importance", "access_count", "last_accessed", "created_at", "status"]
scope = current_scope()
svc, store = scope.svc, scope.store


def confirm(label: str, action: Callable[[], str]) -> None:
    ask(label, f"{label}? Deleted memories cannot be brought back.", action)


def deleted(ids: list[str], what: str) -> str:
    return f"Deleted {svc.delete_memories(ids)} {what}"


def merged(keep: str, others: list[str], content: str) -> str:
    return f"Merged: kept 1 memory, deleted {svc.merge_memories(keep, others, content).deleted}"


@st.cache_data(ttl=300, show_spinner="Comparing every pair of memories…")
def duplicate_groups(
    _svc: MemoryService, tenant_id: str, store_id: str, version: int, threshold: float, archived: bool
) -> list[DuplicateGroup]:
    """Cached per tenant and store: two tenants' stores never share an entry."""
    return _svc.near_duplicates(store_id, threshold, include_archived=archived)


def curate(rows: pd.DataFrame, key: str, empty: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Memories in a table; raise/lower importance or (un)archive the selected rows in one click."""
    if rows.empty:
        st.success(empty, icon=":material/check:")
        return []
    event = st.dataframe(
        rows[COLUMNS[:1] + list(extra) + COLUMNS[1:] + ["id"]],
        key=f"{key}_{data_version()}",
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        column_config=CONFIG,
    )
    ids = [rows.iloc[i]["id"] for i in event.selection.rows if i < len(rows)]
    actions = [
        ("Raise importance", ":material/arrow_upward:", lambda: svc.adjust_importance(ids, 0.1), "Raised the importance of"),
        ("Lower importance", ":material/arrow_downward:", lambda: svc.adjust_importance(ids, -0.1), "Lowered the importance of"),
        ("Archive", ":material/archive:", lambda: svc.set_archived(ids, True), "Archived"),
        ("Unarchive", ":material/unarchive:", lambda: svc.set_archived(ids, False), "Unarchived"),
    ]
    with st.container(horizontal=True):
        for label, icon, run, verb in actions:
            if st.button(label, icon=icon, key=f"{key}_{label}", disabled=not ids):
                with guard(f"Could not {label.lower()}"):
                    count = run()
                    done(f"{verb} {count} {'memory' if count == 1 else 'memories'}")
    return ids


st.title("Quality and curation")
st.caption(
    "Find the noise in this store, select rows and curate: importance up or down, archive (search skips an "
    "archived memory, nothing is lost, unarchive brings it back), merge or delete duplicates."
)
show_flash()
frame = store_frame(scope)
if frame.empty:
    st.info("This store holds no memories yet: add some on the Memories page or import a JSONL file.")
    st.stop()

dup_tab, stale_tab, expiry_tab, orphan_tab, time_tab = st.tabs(["Near-duplicates", "Never retrieved", "Expiring", "Orphans", "Timeline"])
with dup_tab, guard("Could not compare the memories"):
    c = st.columns([3, 1])
    threshold = c[0].slider(
        "Minimum cosine similarity",
        0.5,
        1.0,
        0.9,
        0.01,
        key="similarity",
        bind="query-params",
        help="Two memories this close or closer count as duplicates; chains of such pairs form a group.",
    )
    archived = c[1].toggle("Include archived", key="dup_archived")
    groups = duplicate_groups(svc, str(scope.tenant.id), str(store.id), data_version(), threshold, archived)
    st.caption(
        f"{len(groups)} groups holding {sum(len(g.memories) for g in groups)} memories"
        + (f"; the first {MAX_GROUPS} are shown, raise the threshold to narrow" if len(groups) > MAX_GROUPS else "")
    )
    by_id = frame.set_index("id", drop=False)
    for n, group in enumerate(groups[:MAX_GROUPS], start=1):
        with st.container(border=True):
            st.markdown(f"**Group {n}** · {len(group.memories)} memories · closest pair {group.similarity:.3f}")
            st.caption("Select one row to keep it alone or to merge the others into it; several to curate or delete them.")
            members = by_id.reindex([str(i) for i in group.ids]).dropna(subset=["content"])
            ids = curate(members, f"dup{n}", "")
            keep = ids[0] if len(ids) == 1 else ""
            others = [i for i in members["id"] if i != keep]
            if keep:
                content = st.text_area(
                    "Content of the merged memory (edit to combine them)",
                    str(by_id.loc[keep, "content"]),
                    key=f"dup{n}_content_{keep}_{data_version()}",
                )
            buttons = st.container(horizontal=True)
            if buttons.button("Keep the selected, delete the others", key=f"dup{n}_keep", disabled=not keep):
                confirm(f"Delete {len(others)} memories and keep the selected one", partial(deleted, others, "duplicates"))
            if buttons.button(
                "Merge into the selected",
                key=f"dup{n}_merge",
                disabled=not keep,
                help="Keeps the selected memory with the highest importance and all metadata; the others' "
                "relationships move to it, then the others are deleted.",
            ):
                confirm(f"Merge {len(members)} memories into one", partial(merged, keep, others, content))
            if buttons.button("Delete the selected", key=f"dup{n}_delete", disabled=not ids):
                confirm(f"Delete {len(ids)} memories", partial(deleted, ids, "memories"))

with stale_tab, guard("Could not list the memories"):
    since = st.date_input("Not retrieved since", date.today() - timedelta(days=30), key="since", width=240)
    stale = never_retrieved(frame, since)
    st.caption(f"{len(stale)} memories no search has returned since {since:%Y-%m-%d} (or ever), oldest first.")
    curate(stale, "stale", "Every memory was retrieved since then.", ("updated_at",))

with expiry_tab, guard("Could not list the memories"):
    within = st.number_input("Expiring within (days)", 1, 3650, 7, key="within", width=240)
    rows = expiring(frame, within)
    st.subheader("Expiring soon")
    curate(rows[rows["days_left"] >= 0], "soon", f"Nothing expires in the next {within} days.", ("expires_at", "days_left"))
    st.subheader("Already expired")
    st.caption("Search skips expired memories; they stay in the store until purged.")
    gone = rows[rows["days_left"] < 0]
    curate(gone, "gone", "No memory has expired.", ("expires_at", "days_left"))
    if not gone.empty and st.button(f"Purge expired memories ({len(gone)})", icon=":material/delete_sweep:"):
        confirm(f"Delete {len(gone)} expired memories", lambda: f"Purged {svc.purge_expired(store.id)} expired memories")

with orphan_tab, guard("Could not read the graph"):
    lonely = frame[frame["id"].isin({str(i) for i in svc.orphan_ids(store.id)})]
    st.caption(f"{len(lonely)} memories have no relationship in either direction: nothing leads a graph walk to them.")
    curate(lonely, "orphans", "Every memory has at least one relationship.")

with time_tab, guard("Could not draw the timeline"):
    period = st.segmented_control("Per", ["day", "week", "month"], default="week", key="period") or "week"
    for by, name in (("memory_type", "type"), ("source", "source")):
        timeline = creation_timeline(frame, by, period[0].upper())
        timeline[by] = timeline[by].map(plot_text)
        st.plotly_chart(
            px.bar(
                timeline,
                x="period",
                y="memories",
                color=by,
                title=f"Memories created per {period}, by {name}",
                labels={"period": period, "memories": "memories created", by: name},
            )
        )

confirm_pending()
