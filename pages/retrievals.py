"""Retrievals: what agents asked and got, replayed against today's memories."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from core.explorer import retrievals as rx
from core.explorer.changes import changes_text
from core.explorer.labels import count, markdown_literal, short
from core.explorer.state import current_scope, guard, param, set_params
from core.explorer.widgets import ROW_WRAP, TEXT_COLUMNS, add_to_eval_set, date_columns, store_frame, table_height
from core.models import Retrieval

SHOWN, CHARTED = 200, 1000
scope = current_scope()
svc, store = scope.svc, scope.store
st.title("Retrievals")
st.caption(
    "Every search made through memex, as it was: who asked, what came back with its scores, what was just cut, "
    "and how long it took. Open one to replay it against today's memories."
)
SCORE = st.column_config.NumberColumn(format="%.3f", width=70)


def show_entry(entry: Retrieval) -> None:
    """What came back then, the replay beside it, and the expected answer to mark."""
    if entry.store_id != store.id:
        st.info("This search was made in another store of the tenant; pick that store in the sidebar to see its log.")
    st.text(f"Query: {entry.query or '(a query vector)'}")
    facts = st.columns([1.5, 1.5, 1, 1, 1])  # the date and the caller need room: a metric cuts its value short
    facts[0].metric(
        "When", f"{entry.at:%d %b, %H:%M}" if entry.at else "?", help=f"{entry.at:%A %d %B %Y, %H:%M:%S} UTC" if entry.at else None
    )
    facts[1].metric("Caller", rx.caller(entry), help=f"interface {entry.interface}, actor {entry.actor}")
    facts[2].metric("Mode", entry.mode)
    facts[3].metric("Results", entry.result_count)
    facts[4].metric("Latency", f"{entry.latency_ms:.1f} ms")
    with st.expander("Parameters and model"):
        st.json({**entry.params, "model": entry.model}, expanded=True)
    contents = {str(i): c for i, c in svc.contents_at(rx.entry_ids(entry), entry.at or datetime.now(UTC)).items()}
    answer = rx.answer_frame(entry, contents)
    st.caption(f"What came back then ({count(entry.result_count, 'memory')}), then the near misses the limit or the threshold cut")
    st.dataframe(
        answer,
        hide_index=True,
        row_height=ROW_WRAP,
        height=table_height(len(answer), 10),
        placeholder="–",
        column_config={**TEXT_COLUMNS, "rank": st.column_config.TextColumn(width=45), "score": SCORE, "similarity": SCORE},
    )
    st.subheader("Replay against today's memories")
    if st.toggle("Replay", key=f"replay_{entry.id}", help="The same query and settings now: neither logged nor counted as an access."):
        with guard("Could not replay the search"):
            replayed = svc.replay(entry.id)
            contents = {**{str(r.memory.id): r.memory.content for r in replayed.now}, **contents}
            if replayed.same:
                st.success("Today's answer is the same, in the same order.", icon=":material/check_circle:")
            else:
                st.warning(f"{count(len(replayed.differences), 'difference')} since then.", icon=":material/compare_arrows:")
            then, now = rx.side_by_side(replayed, contents)
            left, right = st.columns(2)
            for side, title, frame in ((left, "Then", then), (right, "Now", now)):
                side.caption(title)
                side.dataframe(
                    frame,
                    hide_index=True,
                    row_height=ROW_WRAP,
                    placeholder="–",
                    column_config={
                        **TEXT_COLUMNS,
                        "rank": st.column_config.NumberColumn(width=45),
                        "content": st.column_config.TextColumn("content", width="medium"),
                        "score": SCORE,
                        "since": st.column_config.TextColumn(width=110),
                    },
                )
            if replayed.differences:
                st.caption("Each difference, and why")
                st.dataframe(rx.differences_frame(replayed, contents), hide_index=True, row_height=ROW_WRAP, column_config=TEXT_COLUMNS)
                for d in replayed.differences:
                    if d.changes:
                        st.caption(markdown_literal(f"Edited since: {short(contents.get(str(d.memory_id), rx.GONE), 80)}"))
                        st.text(changes_text(d.changes))
    if entry.query and entry.store_id == store.id and scope.svc.may("write"):
        with st.expander("Mark what it should have returned", icon=":material/playlist_add_check:"), guard("Could not add the case"):
            today = dict(zip(store_frame(scope)["id"].astype(str), store_frame(scope)["content"]))
            first = [i for i in rx.entry_ids(entry) if i in today]  # what it returned or nearly did, then the rest
            options = {i: short(today[i], 100) for i in dict.fromkeys([*first, *today])}
            add_to_eval_set(scope, entry.query, options, f"mark_{entry.id}", picked=[r["id"] for r in entry.results])


if entry_id := param("entry"):
    with guard("Could not open the log entry"):
        entry = svc.retrieval(entry_id)
        st.button("Back to the log", icon=":material/arrow_back:", on_click=set_params, kwargs={"entry": None})
        show_entry(entry)
        st.stop()
    set_params(entry=None)  # a stale link: the error above says why

whole_user = st.toggle(f"All stores of {scope.user.name}", key="all_stores", help="The log of every store of this user, not only this one.")
where: dict[str, Any] = {"user_id": scope.user.id} if whole_user else {"store_id": store.id}
filters = st.columns([1, 2, 1, 1])
since = filters[0].date_input("Since", datetime.now(UTC).date() - timedelta(days=30), key="since")
contains = filters[1].text_input("Query contains", key="contains", placeholder="a word of the query")
callers = {}
with guard("Could not read the callers"):
    callers = dict(svc.retrieval_callers(**where))
who = filters[2].selectbox("Caller", [None, *callers], format_func=lambda c: f"{c} ({callers[c]})" if c else "anyone", key="caller")
empty = filters[3].toggle("Empty answers only", key="empty") or None
asked: dict[str, Any] = {
    **where,
    "since": datetime.combine(since, time.min, tzinfo=UTC) if isinstance(since, date) else None,
    "contains": contains.strip() or None,
    "caller": who,
    "empty": empty,
}
with guard("Could not read the log"):
    page = svc.retrievals(**asked, limit=CHARTED)
    frame = rx.log_frame(page.entries)
    if frame.empty:
        st.info("No logged search matches these filters. Searches made through memex (Python, CLI, API, MCP) appear here.")
        st.stop()
    shown = frame.head(SHOWN)
    st.caption(
        f"{page.total:,} searches match, newest first; the table shows {len(shown):,} and the charts the latest {len(frame):,}. "
        "Select a row to open it."
    )
    event = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="log_table",
        height=table_height(len(shown), 12),
        placeholder="–",
        column_config={
            "at": st.column_config.DatetimeColumn("at", format="D MMM YYYY, HH:mm", width=140),
            "caller": st.column_config.TextColumn(width=100),
            "query": st.column_config.TextColumn("query", width=280),
            "mode": st.column_config.TextColumn(width=70),
            "results": st.column_config.NumberColumn(width=65),
            "top score": SCORE,
            "latency ms": st.column_config.NumberColumn(format="%.1f", width=80),
            "id": None,
        },
    )
    if event and event.selection.rows:
        set_params(entry=shown.iloc[event.selection.rows[0]]["id"])
        st.rerun()

    st.subheader("Over time")
    left, right = st.columns(2)
    left.plotly_chart(rx.queries_per_day_figure(frame), key="per_day")
    right.plotly_chart(rx.empty_share_figure(frame), key="empty_share")
    st.plotly_chart(rx.latency_figure(frame), key="latency")
    if not whole_user:
        st.subheader("Which memories searches return")
        counts = rx.retrieved_counts(page.entries)
        memories = store_frame(scope)
        contents = dict(zip(memories["id"].astype(str), memories["content"]))
        st.plotly_chart(rx.most_retrieved_figure(counts, contents), key="most")
        never = rx.never_retrieved_frame(memories, counts)
        st.caption(f"Never retrieved by these searches: {count(len(never), 'live memory')} of {len(memories):,}")
        st.dataframe(
            never,
            hide_index=True,
            row_height=ROW_WRAP,
            height=table_height(len(never), 6),
            column_config={**TEXT_COLUMNS, **date_columns("created")},
        )
