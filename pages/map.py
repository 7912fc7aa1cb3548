"""Embedding map: the store's memories placed by meaning (a UMAP projection of their embeddings)."""

import time

import streamlit as st

from core.explorer import projection as proj
from core.explorer.labels import count
from core.explorer.state import current_scope, guard, param, set_params, url_number
from core.explorer.widgets import store_frame, store_type_colours


@st.cache_resource
def projections() -> proj.ProjectionCache:
    """One cache for the server process: every session reopening a store reuses its map."""
    return proj.ProjectionCache()


@st.cache_resource
def fit_jobs() -> proj.FitJobs:
    """Maps being fitted in the background, for every session of the process."""
    return proj.FitJobs()


@st.fragment(run_every=1.0)
def follow(job: proj.FitJob) -> None:
    """The background fit's progress, every second; the page draws the map once it is done."""
    if job.running:
        st.progress(job.fraction, text=f"Fitting UMAP in the background: {job.phase}, {time.monotonic() - job.started:.0f} s")
    elif job.result is not None:
        st.rerun()


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
    cache, jobs, cap, fit_later = projections(), fit_jobs(), proj.SAMPLE_CAP, False
    if recompute:
        cache.drop(key)
        jobs.forget(key)
    projection, stored = cache.get(key), None
    if projection is None and not recompute:
        projection, stored = proj.kept(scope.svc, key, cap)  # a map kept in the database: drawn without UMAP
    job = jobs.get(key)
    if projection is None and job is not None and job.result is not None:
        projection = job.result
    if projection is not None:
        cache.put(key, projection)
        st.caption(
            f":material/bolt: Showing the map computed at {projection.computed_at:%H:%M:%S} UTC "
            f"(the fit took {max(projection.seconds, 0.1):.1f} s), kept until memories change; press Recompute to fit it again now."
        )
    elif len(frame) <= proj.INLINE_MAX and proj.umap_ready() and job is None:
        with st.status(f"Projecting {len(frame):,} memories with UMAP…", expanded=False) as status:
            projection = proj.fit_and_keep(scope.svc, key, cap)
            cache.put(key, projection)
            status.update(label=f"Projected {len(projection.ids):,} memories in {max(projection.seconds, 0.1):.1f} s", state="complete")
    else:  # a big store, or UMAP still loading: fitted in the background (started once this run has drawn), something to look at meanwhile
        fit_later = True
        projection = proj.meanwhile(scope.svc, key, stored, cap)
        if projection.method == "stale":
            st.info(
                f"The store changed since this map was computed at {projection.computed_at:%H:%M:%S} UTC: memories deleted since "
                "are left out, new ones are placed among their nearest neighbours, while the map is fitted again.",
                icon=":material/update:",
            )
        else:
            st.info(
                "A quick linear preview (PCA): broad directions only, clusters may overlap. The UMAP map replaces it when its fit "
                "is done"
                + (" (UMAP's code is loading; the first start after an install also compiles it)." if not proj.umap_ready() else "."),
                icon=":material/hourglass_top:",
            )
        progress = st.container()
        if job is not None and job.error:
            st.error(f"The fit failed: {job.error}")
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
            nearest = scope.svc.search_memories(
                scope.store.id, query, limit=max(int(k), 15), min_similarity=-1, record_access=False, query_embedding=vector, log=False
            )
            results = nearest[: int(k)]
            at = projection.place([(str(r.memory.id), r.similarity or 0.0) for r in nearest])  # among its 15 nearest memories
            if at is not None:
                overlay = (query, at, [str(r.memory.id) for r in results])

    points = proj.points_frame(frame, projection)
    # a preview has no UMAP settings to show (it said "n_neighbors 0")
    method = (
        f"PCA preview {params.dims}D"
        if projection.method == "pca"
        else f"UMAP {params.dims}D, cosine, n_neighbors {projection.n_neighbors}, min_dist {min_dist:.2f}"
    )
    title = f"{count(len(points), 'memory')} · {method} · colour: {colour.lower()}"
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
    if projection.method != "pca" and projection.n_neighbors < n_neighbors:
        st.caption(f"n_neighbors lowered to {projection.n_neighbors}: it must be below the number of memories mapped.")
    if fit_later:  # started once this run has drawn the rest: the fit would slow the drawing down
        job = jobs.start(key, lambda job: proj.fit_and_keep(scope.svc, key, cap, job.tell))
        with progress:
            follow(job)
