"""Embedding map: the store's memories placed by meaning (a UMAP projection of their embeddings)."""

import numpy as np
import streamlit as st

from core.explorer import projection as proj
from core.explorer.labels import count
from core.explorer.state import current_scope, guard, param, set_params, url_number
from core.explorer.widgets import store_frame, store_type_colours


@st.cache_resource
def projections() -> proj.ProjectionCache:
    """One cache for the server process: every session reopening a store reuses its fitted map."""
    return proj.ProjectionCache()


scope = current_scope()
st.title("Embedding map")
st.caption(
    "Each point is a memory, placed by UMAP so that memories with similar meaning tend to sit together: clusters are "
    "topics, lone points are outliers. The placement is approximate: squeezing hundreds of dimensions into two (or three) "
    "keeps neighbourhoods roughly, not distances, so a point near the query may not be near it in meaning. The list beside "
    "the map gives the memories truly nearest the query, measured on the embeddings themselves."
)

with guard("Could not build the map"):
    frame = store_frame(scope)
    if len(frame) < proj.MIN_MEMORIES:
        st.info(
            f"A map needs at least {proj.MIN_MEMORIES} memories; this store has {len(frame)}. "
            "Add more on the Memories page or import a JSONL file.",
            icon=":material/scatter_plot:",
        )
        st.stop()

    cols = st.columns([1.2, 2, 2, 2, 1.3], vertical_alignment="bottom")
    dims = cols[0].segmented_control("View", ["2D", "3D"], default="3D" if param("dims") == "3D" else "2D", key="map-dims", required=True)
    n_neighbors = cols[1].slider(
        "Neighbours (n_neighbors)",
        2,
        100,
        int(url_number("nn", 15, 2, 100)),
        key="map-nn",
        help="Small values show fine local structure, large values the overall layout.",
    )
    min_dist = cols[2].slider(
        "Minimum distance (min_dist)",
        0.0,
        0.99,
        url_number("md", 0.1, 0.0, 0.99),
        0.01,
        key="map-md",
        help="How tightly points may pack together.",
    )
    colour_names = list(proj.COLOUR_BY)
    wanted = param("colour")
    colour = cols[3].selectbox(
        "Colour by", colour_names, key="map-colour", index=colour_names.index(wanted) if wanted in colour_names else 0
    )
    recompute = cols[4].button("Recompute", icon=":material/refresh:", help="Fit the projection again, ignoring the cache.")
    set_params(dims=dims, nn=n_neighbors, md=min_dist, colour=colour)

    params = proj.ProjectionParams(n_neighbors=n_neighbors, min_dist=min_dist, dims=3 if dims == "3D" else 2)
    key = proj.projection_key(scope.tenant.id, scope.store, frame, params)
    cache = projections()
    if recompute:
        cache.drop(key)
    projection = cache.get(key)
    if projection is None:
        with st.status(f"Projecting {min(len(frame), proj.SAMPLE_CAP):,} memories with UMAP…", expanded=True) as status:

            def load() -> tuple[list[str], np.ndarray]:
                status.write("Reading the embeddings from the database…")
                memories, vectors = scope.svc.store_embeddings(scope.store.id)
                status.write(
                    f"Fitting UMAP to {min(len(memories), proj.SAMPLE_CAP):,} vectors "
                    f"(n_neighbors {n_neighbors}, min_dist {min_dist:.2f}, {params.dims}D). The first map after "
                    "a server start also compiles UMAP's code: up to a minute more."
                )
                return [str(m.id) for m in memories], vectors

            projection, cached = cache.get_or_fit(key, load, cap=proj.SAMPLE_CAP)
            status.update(
                label=f"Projected {len(projection.ids):,} memories in {max(projection.seconds, 0.1):.1f} s",
                state="complete",
                expanded=False,
            )
    else:
        cached = True
    if cached:
        st.caption(
            f":material/bolt: Showing a cached projection, computed at {projection.computed_at:%H:%M:%S} UTC "
            f"(the fit took {max(projection.seconds, 0.1):.1f} s). It is refitted when memories change; "
            "press Recompute to fit it again now."
        )
    if projection.sampled:
        st.warning(
            f"Showing {len(projection.ids):,} of {projection.total:,} memories, sampled at random (the same sample every time) so the map stays fast.",
            icon=":material/filter_alt:",
        )

    left, right = st.columns([4, 1], vertical_alignment="bottom")
    query = left.text_input(
        "Place a query on the map", value=param("q") or "", key="map-q", placeholder="e.g. where does the user like to sit?"
    )
    k = right.number_input("Top results", 1, 50, int(url_number("k", 5, 1, 50)), key="map-k")
    set_params(q=query.strip() or None, k=k)
    overlay, results = None, []
    if query.strip():
        with st.spinner("Embedding the query and placing it on the map…"):
            vector = scope.svc.embed_query(scope.store, query)
            results = scope.svc.search_memories(
                scope.store.id, query, limit=int(k), min_similarity=-1, record_access=False, query_embedding=vector
            )
            overlay = (query, projection.place(vector), [str(r.memory.id) for r in results])

    points = proj.points_frame(frame, projection)
    title = (
        f"{count(len(points), 'memory')} · UMAP {params.dims}D, n_neighbors {projection.n_neighbors}, "
        f"min_dist {min_dist:.2f} · colour: {colour.lower()}"
    )
    figure = proj.map_figure(points, proj.COLOUR_BY[colour], title=title, query=overlay, type_colour=store_type_colours(scope))
    if results:
        on_map, beside = st.columns([2, 1])
        on_map.plotly_chart(figure, key="map-chart")
        with beside:
            st.markdown("**Nearest by meaning**")
            st.caption(
                "The query's true nearest memories: cosine similarity of the embeddings, no projection. "
                "Ringed and numbered on the map where UMAP placed them (searched without counting an access)."
            )
            mapped = set(points["id"])
            for rank, r in enumerate(results, start=1):
                with st.container(border=True):
                    st.caption(
                        f"{rank} · similarity {r.similarity:.2f}"
                        + ("" if str(r.memory.id) in mapped else " · not on the map (sampled out)")
                    )
                    st.text(r.memory.content)
    else:
        st.plotly_chart(figure, key="map-chart")
    if projection.n_neighbors < n_neighbors:
        st.caption(f"n_neighbors lowered to {projection.n_neighbors}: it must be below the number of memories mapped.")
