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
from core.explorer.labels import count, heading, plot_text
from core.explorer.state import current_scope, guard
from core.explorer.widgets import (
    DATE,
    ROW_WRAP,
    TEXT_COLUMNS,
    ask,
    confirm_pending,
    data_version,
    done,
    show_flash,
    store_frame,
    store_type_colours,
    table_height,
)
from core.quality import DuplicateGroup
from core.supersede import Supersession

MAX_GROUPS = 30
WIDTHS = {  # content takes the rest: the widest column, wrapped, and the table fits 1400 px
    "memory_type": 90,
    "source": 90,
    "importance": 75,
    "access_count": 70,
    "last_accessed": 85,
    "created_at": 85,
    "expires_at": 85,
    "days_left": 70,
    "status": 70,
}
CONFIG = {
    **TEXT_COLUMNS,
    "content": st.column_config.TextColumn("content", width=270),
    **{c: st.column_config.Column(heading(c), width=w) for c, w in WIDTHS.items()},
    "importance": st.column_config.NumberColumn("importance", format="%.2f", width=75),
    "days_left": st.column_config.NumberColumn("days left", format="%.1f", width=70),
    **{c: st.column_config.DatetimeColumn(heading(c), format=DATE, width=85) for c in ("last_accessed", "created_at", "expires_at")},
}
COLUMNS = ("content", "memory_type", "source", "importance", "access_count", "last_accessed", "created_at", "status")
EXPIRY_COLUMNS = ("content", "expires_at", "days_left", "memory_type", "source", "importance", "created_at")
scope = current_scope()
writable = scope.svc.may("write")  # a viewer looks; the curation actions are not drawn for them
svc, store = scope.svc, scope.store


def confirm(label: str, action: Callable[[], str]) -> None:
    ask(label, f"{label}? Deleted memories cannot be brought back.", action)


def deleted(ids: list[str], what: str) -> str:
    return f"Deleted {count(svc.delete_memories(ids), what)}"


def merged(keep: str, others: list[str], content: str) -> str:
    return f"Merged: kept 1 memory, deleted {count(svc.merge_memories(keep, others, content).deleted, 'other')}"


@st.cache_data(ttl=300, show_spinner="Comparing every pair of memories…")
def duplicate_groups(
    _svc: MemoryService, tenant_id: str, store_id: str, version: int, threshold: float, archived: bool
) -> list[DuplicateGroup]:
    """Cached per tenant and store: two tenants' stores never share an entry."""
    return _svc.near_duplicates(store_id, threshold, include_archived=archived)


def superseded_table(pairs: list[Supersession]) -> pd.DataFrame:
    """One row per (older, newer) pair, both memories' text side by side (read in one call: the
    newer memory may live in another store of the tenant)."""
    memories = {m.id: m for m in svc.get_memories(list({i for p in pairs for i in (p.older_id, p.newer_id)}))}
    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame(
        {
            "older memory": [memories[p.older_id].content for p in pairs],
            "relationship": [f"{p.verb} by" for p in pairs],
            "newer memory": [memories[p.newer_id].content for p in pairs],
            "older created": pd.to_datetime([memories[p.older_id].created_at for p in pairs], utc=True),
            "newer created": pd.to_datetime([memories[p.newer_id].created_at for p in pairs], utc=True),
            "older status": [memories[p.older_id].status(now) for p in pairs],
            "older id": [str(p.older_id) for p in pairs],
        }
    )


def curate(rows: pd.DataFrame, key: str, empty: str, columns: tuple[str, ...] = COLUMNS) -> list[str]:
    """Memories in a table; raise/lower importance or (un)archive the selected rows in one click."""
    if rows.empty:
        st.success(empty, icon=":material/check:")
        return []
    event = st.dataframe(
        rows[[*columns, "id"]].assign(source=rows["source"].fillna("")),
        key=f"{key}_{data_version()}",
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        row_height=ROW_WRAP,
        height=table_height(len(rows)),
        placeholder="never",  # only dates are left empty: never accessed, never expires
        column_config=CONFIG,
    )
    ids = [rows.iloc[i]["id"] for i in event.selection.rows if i < len(rows)]
    actions = [
        ("Raise importance", ":material/arrow_upward:", lambda: svc.adjust_importance(ids, 0.1), "Raised the importance of"),
        ("Lower importance", ":material/arrow_downward:", lambda: svc.adjust_importance(ids, -0.1), "Lowered the importance of"),
        ("Archive", ":material/archive:", lambda: svc.set_archived(ids, True), "Archived"),
        ("Unarchive", ":material/unarchive:", lambda: svc.set_archived(ids, False), "Unarchived"),
    ]
    if writable:
        with st.container(horizontal=True):
            for label, icon, run, verb in actions:
                if st.button(label, icon=icon, key=f"{key}_{label}", disabled=not ids):
                    with guard(f"Could not {label.lower()}"):
                        done(f"{verb} {count(run(), 'memory')}")
    return ids


st.title("Quality and curation")
st.caption(
    "Find the noise in this store, select rows and curate: importance up or down, archive (search skips an "
    "archived memory, nothing is lost, unarchive brings it back), merge or delete duplicates, retire what newer memories replaced."
)
show_flash()
frame = store_frame(scope)
if frame.empty:
    st.info("This store holds no memories yet: add some on the Memories page or import a JSONL file.")
    st.stop()

dup_tab, superseded_tab, stale_tab, expiry_tab, orphan_tab, time_tab = st.tabs(
    ["Near-duplicates", "Superseded", "Never retrieved", "Expiring", "Orphans", "Timeline"]
)
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
        f"{count(len(groups), 'group')} holding {count(sum(len(g.memories) for g in groups), 'memory')}"
        + (f"; the first {MAX_GROUPS} are shown, raise the threshold to narrow" if len(groups) > MAX_GROUPS else "")
    )
    if not groups:
        st.info(
            f"No two memories are {threshold:.2f} similar or closer. Lower the minimum similarity (0.85 or 0.80 often "
            "finds paraphrases of one fact) to see looser duplicates.",
            icon=":material/tune:",
        )
    by_id = frame.set_index("id", drop=False)
    for n, group in enumerate(groups[:MAX_GROUPS], start=1):
        with st.container(border=True):
            st.markdown(f"**Group {n}** · {count(len(group.memories), 'memory')} · closest pair {group.similarity:.3f}")
            st.caption("Select one row to keep it alone or to merge the others into it; several to curate or delete them.")
            members = by_id.reindex([str(i) for i in group.ids]).dropna(subset=["content"])
            ids = curate(members, f"dup{n}", "")
            if not writable:
                continue  # a viewer sees the groups, not the actions
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
                confirm(f"Delete {count(len(others), 'memory')} and keep the selected one", partial(deleted, others, "duplicate"))
            if buttons.button(
                "Merge into the selected",
                key=f"dup{n}_merge",
                disabled=not keep,
                help="Keeps the selected memory with the highest importance and all metadata; the others' "
                "relationships move to it, then the others are deleted.",
            ):
                confirm(f"Merge {count(len(members), 'memory')} into one", partial(merged, keep, others, content))
            if buttons.button("Delete the selected", key=f"dup{n}_delete", disabled=not ids):
                confirm(f"Delete {count(len(ids), 'memory')}", partial(deleted, ids, "memory"))

with superseded_tab, guard("Could not read the relationships"):
    st.caption(
        "Pairs where a newer memory updates or contradicts an older one. Search still returns the older memory where it "
        "ranks, so an agent may answer from the past: archive the older one (search then skips it; unarchive brings it back)."
    )
    resolved = st.toggle("Include pairs whose older memory is already archived", key="superseded_all")
    by_id = frame.set_index("id", drop=False)
    pairs = [p for p in svc.supersessions(store.id) if resolved or by_id["status"].get(str(p.older_id)) != "archived"]
    if not pairs:
        st.success(
            "No memory here is updated or contradicted by a newer one"
            + ("." if resolved else " (or every such older memory is archived already)."),
            icon=":material/check:",
        )
    else:
        listed = superseded_table(pairs)
        event = st.dataframe(
            listed,
            key=f"superseded_{data_version()}",
            hide_index=True,
            on_select="rerun",
            selection_mode="multi-row",
            row_height=ROW_WRAP,
            column_order=["older memory", "relationship", "newer memory", "older created", "newer created", "older status", "open"],
            column_config={
                "older memory": st.column_config.TextColumn(width="large"),
                "newer memory": st.column_config.TextColumn(width="large"),
                "older created": st.column_config.DatetimeColumn(format=DATE),
                "newer created": st.column_config.DatetimeColumn(format=DATE),
                "open": st.column_config.LinkColumn(
                    "open", display_text="the older ↗", help="Opens the older memory on the Memories page."
                ),
            },
        )
        chosen = [listed.iloc[i]["older id"] for i in event.selection.rows if i < len(listed)]
        live = [i for i in dict.fromkeys(listed["older id"]) if by_id["status"].get(i) != "archived"]
        row = st.container(horizontal=True) if writable else None
        if row is not None and row.button(
            f"Archive the older of the {count(len(chosen), 'selected pair')}" if chosen else "Archive the older (select pairs)",
            icon=":material/archive:",
            type="primary",
            disabled=not chosen,
            key="superseded_archive",
        ):
            with guard("Could not archive"):
                done(f"Archived {count(svc.set_archived(list(dict.fromkeys(chosen)), True), 'older memory')}")
        if row is not None and row.button(
            f"Archive every older memory listed ({len(live)})", icon=":material/archive:", disabled=not live, key="superseded_all_archive"
        ):
            with guard("Could not archive"):
                done(f"Archived {count(svc.set_archived(live, True), 'older memory')}")

with stale_tab, guard("Could not list the memories"):
    since = st.date_input("Not retrieved since", date.today() - timedelta(days=30), key="since", width=240)
    stale = never_retrieved(frame, since)
    st.caption(f"{count(len(stale), 'memory')} no search has returned since {since.day} {since:%b %Y} (or ever), oldest first.")
    curate(stale, "stale", "Every memory was retrieved since then.")

with expiry_tab, guard("Could not list the memories"):
    within = st.number_input("Expiring within (days)", 1, 3650, 7, key="within", width=240)
    rows = expiring(frame, within)
    st.subheader("Expiring soon")
    curate(rows[rows["days_left"] >= 0], "soon", f"Nothing expires in the next {count(within, 'day')}.", EXPIRY_COLUMNS)
    st.subheader("Already expired")
    st.caption("Search skips expired memories; they stay in the store until purged.")
    gone = rows[rows["days_left"] < 0]
    curate(gone, "gone", "No memory has expired.", EXPIRY_COLUMNS)
    if writable and not gone.empty and st.button(f"Purge expired memories ({len(gone)})", icon=":material/delete_sweep:"):
        confirm(f"Delete {count(len(gone), 'expired memory')}", lambda: f"Purged {count(svc.purge_expired(store.id), 'expired memory')}")

with orphan_tab, guard("Could not read the graph"):
    lonely = frame[frame["id"].isin({str(i) for i in svc.orphan_ids(store.id)})]
    st.caption(
        f"{count(len(lonely), 'memory')} {'has' if len(lonely) == 1 else 'have'} no relationship in either direction: "
        "nothing leads a graph walk to them."
    )
    curate(lonely, "orphans", "Every memory has at least one relationship.")

with time_tab, guard("Could not draw the timeline"):
    period = st.segmented_control("Per", ["day", "week", "month"], default="week", key="period") or "week"
    colours = {plot_text(t): c for t, c in store_type_colours(scope).items()}  # as on the Graph and the Embedding map
    for by, name in (("memory_type", "type"), ("source", "source")):
        timeline = creation_timeline(frame, by, period[0].upper())
        timeline[by] = timeline[by].map(plot_text)
        st.plotly_chart(
            px.bar(
                timeline,
                x="period",
                y="memories",
                color=by,
                color_discrete_map=colours if by == "memory_type" else {},
                title=f"Memories created per {period}, by {name}",
                labels={"period": period, "memories": "memories created", by: name},
            )
        )

confirm_pending()
