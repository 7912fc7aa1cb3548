"""Overview: the selected store in figures."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.explorer.frames import creation_timeline
from core.explorer.labels import markdown_literal, plot_text
from core.explorer.state import current_scope, guard
from core.explorer.widgets import store_frame

scope = current_scope()
st.title("Overview")
st.caption(markdown_literal(f"{scope.tenant.name} / {scope.user.name} / {scope.store.store_name}"))

with guard("Could not read the store"):
    stats = scope.svc.store_stats(scope.store.id)
    frame = store_frame(scope)
    cols = st.columns(6)
    cols[0].metric("Memories", stats.total)
    cols[1].metric("Live", stats.live)
    cols[2].metric("Expired", stats.expired)
    cols[3].metric("Archived", stats.archived)
    cols[4].metric("Relationships", sum(stats.relationships_by_type.values()))
    cols[5].metric("Mean importance", f"{stats.mean_importance:.2f}" if stats.mean_importance is not None else "–")
    if frame.empty:
        st.info("This store holds no memories yet. Add some on the Memories page or import a JSONL file.")
        st.stop()

    # types, sources and relationship types are user text: escaped before plotly reads them as HTML
    frame = frame.assign(memory_type=frame["memory_type"].map(plot_text), source=frame["source"].fillna("(none)").map(plot_text))
    left, right = st.columns(2)
    with left:
        by_type = frame.groupby(["memory_type", "status"]).size().reset_index(name="memories")
        st.plotly_chart(
            px.bar(
                by_type,
                x="memory_type",
                y="memories",
                color="status",
                title="By type",
                color_discrete_map={"live": "#4f46e5", "expired": "#f59e0b", "archived": "#9ca3af"},
            )
        )
        st.plotly_chart(px.histogram(frame, x="importance", nbins=20, title="Importance", range_x=[0, 1]))
        rels = pd.DataFrame([(plot_text(k), v) for k, v in stats.relationships_by_type.items()], columns=["type", "relationships"])
        if not rels.empty:
            st.plotly_chart(px.bar(rels, x="type", y="relationships", title="Relationships by type"))
    with right:
        by_source = frame.groupby("source").size().reset_index(name="memories").sort_values("memories", ascending=False)
        st.plotly_chart(px.bar(by_source, x="source", y="memories", title="By source"))
        st.plotly_chart(px.histogram(frame, x="access_count", nbins=30, title="Access count", labels={"access_count": "times retrieved"}))
        timeline = creation_timeline(frame, "memory_type", "W")
        st.plotly_chart(px.bar(timeline, x="period", y="memories", color="memory_type", title="Created per week"))

    st.subheader("Most accessed")
    top = frame.sort_values("access_count", ascending=False).head(10)
    st.dataframe(
        top[["content", "memory_type", "access_count", "last_accessed", "importance"]],
        hide_index=True,
        column_config={"content": st.column_config.TextColumn(width="large")},
    )
