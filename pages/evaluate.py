"""Evaluate: measure retrieval on labelled cases and compare search configurations side by side."""

from functools import partial

import pandas as pd
import plotly.express as px
import streamlit as st

from core.evaluation import DEFAULT_KS, NDCG_DEPTH, ModeConfig, failed_cases, load_cases
from core.explorer import debugger as dx
from core.explorer.colours import configuration_colours
from core.explorer.labels import count, markdown_literal, plot_text
from core.explorer.state import current_scope, guard, param, set_params
from core.explorer.widgets import ROW_WRAP, TEXT_COLUMNS, ask, confirm_pending, data_version, done, show_flash
from core.ranking import MODES
from core.supersede import POLICIES, POLICY_LABELS

scope = current_scope()
svc, store = scope.svc, scope.store
DEPTH = max(max(DEFAULT_KS), NDCG_DEPTH)
CHARTED = [*(f"recall@{k}" for k in DEFAULT_KS), "mrr", f"ndcg@{NDCG_DEPTH}"]
st.title("Evaluate")
st.caption(
    "How well does search find what it should? Run a set of questions, each with the memories a good answer needs, "
    "through up to four search configurations and compare how often each finds them. Evaluation never counts accesses."
)
show_flash()


def delete_set(set_id: str) -> str:
    svc.delete_eval_set(set_id)
    set_params(set=None)
    return "Evaluation set deleted"


sets = {}
with guard("Could not read the evaluation sets"):
    sets = {str(s.id): s for s in svc.list_eval_sets(store.id)}
writable = svc.may("write")  # a viewer runs sets, and neither saves nor deletes one
pick, upload = st.columns([3, 2])
if writable:
    with upload.expander("Upload questions (a JSONL file)", expanded=not sets):
        st.caption('One question a line: {"query": "...", "expected_ids": ["<memory id>", ...], "kind": "optional label"}')
        file = st.file_uploader("File of questions", type=["jsonl", "json", "txt"], key="cases_file")
        name = st.text_input("Name of the set", key="new_set_name", placeholder="e.g. paraphrases")
        if st.button("Save as an evaluation set", disabled=file is None, key="save_set") and file is not None:
            with guard("Could not save the set"):
                saved = svc.save_eval_set(store.id, name, load_cases(file.getvalue()))
                st.session_state.pop("set", None)  # the selector starts again from the URL: the new set
                set_params(set=saved.id)
                done(f"Saved {count(len(saved.cases), 'question')}")
if not sets:
    with pick.container(border=True):
        st.markdown("**This store has no evaluation set yet.**")
        st.markdown(
            "An evaluation set is a list of questions an agent might ask, each with the memories that should come back "
            "for it. Running the set shows, for each search configuration, how often those memories are found and how "
            "high they rank, so you can tell which settings work on your own data before changing them."
        )
        st.markdown(
            "To make one:\n"
            "1. On the **Search** page, type a question, then under “Add this query to an evaluation set” mark the "
            "memories that should come back and add them to a new set. Repeat for a few questions.\n"
            "2. Or upload a file of questions (right): one JSON object a line, with the question and the ids of the expected memories."
        )
        st.page_link("pages/search.py", label="Open the Search page", icon=":material/manage_search:")
    st.stop()
ids = list(sets)
if st.session_state.get("set") not in ids:
    st.session_state.pop("set", None)  # a deleted set: fall back to the URL or the first one
wanted = param("set")
chosen = pick.selectbox(
    "Evaluation set",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: f"{sets[i].name} ({count(len(sets[i].cases), 'question')})",
    key="set",
)
set_params(set=chosen)
cases = sets[chosen].cases
if writable and pick.button("Delete this set", icon=":material/delete:", key="delete_set"):
    ask(
        "Delete the set",
        f"Delete this evaluation set and its {count(len(cases), 'question')}? This cannot be undone; the memories are not touched.",
        partial(delete_set, chosen),
        subject=sets[chosen].name,
    )
confirm_pending()
with pick.expander(f"The {count(len(cases), 'question')}"):
    st.dataframe(
        pd.DataFrame(
            {
                "question": [c.query for c in cases],
                "kind": [c.kind or "" for c in cases],
                "expected memories": [len(c.expected_ids) for c in cases],
            }
        ),
        hide_index=True,
    )

st.subheader("Configurations")
how_many = st.slider("How many configurations", 1, 4, 3, key="n_configs")
configs = []
for i, col in enumerate(st.columns(how_many)):
    with col.container(border=True):
        mode = st.selectbox("Mode", MODES, index=i % len(MODES), key=f"mode_{i}")
        threshold = st.slider(
            "Similarity threshold",
            0.0,
            1.0,
            0.0,
            0.05,
            key=f"threshold_{i}",
            help="The vector side must reach it (0: rank everything, as recall measurement wants).",
        )
        lam = st.slider("MMR lambda", 0.0, 1.0, 0.5, key=f"mmr_{i}") if st.toggle("Diversify (MMR)", key=f"use_mmr_{i}") else None
        policy = st.selectbox(
            "Superseded memories",
            POLICIES,
            format_func=lambda p: POLICY_LABELS[p],
            key=f"superseded_{i}",
            help="Memories that a newer one updates or contradicts: keep them where they rank, move them down, or leave them out.",
        )
        auto = f"{mode} ≥{threshold:.2f}" + (f" mmr {lam:.2f}" if lam is not None else "") + ("" if policy == "keep" else f" {policy}")
        label = st.text_input("Name (optional)", key=f"name_{i}", placeholder=auto)
        configs.append(ModeConfig(name=label.strip() or auto, mode=mode, mmr_lambda=lam, min_similarity=threshold, superseded=policy))
names = [c.name for c in configs]
if len(set(names)) < len(names):
    st.warning("Two configurations have the same name: rename one so the charts can tell them apart.")
    st.stop()

with st.expander("Kept runs of this set over time", expanded=True), guard("Could not read the kept runs"):
    runs = svc.eval_runs(chosen)
    if not runs:
        st.caption("No run kept yet: each run of the evaluation below is kept and charted here.")
    else:
        shown = st.selectbox("Measure", CHARTED, index=len(CHARTED) - 1, format_func=dx.metric_label, key="runs_metric")
        kept_colours = configuration_colours([*names, *(r.config.get("name", "?") for r in runs)])
        st.plotly_chart(dx.runs_figure(runs, shown, kept_colours), key="runs_chart")
        st.caption(f"{count(len(runs), 'configuration run')} kept; a drop after a change of settings, model or memories shows here.")

signature = (chosen, tuple(configs), data_version())
if st.button("Run the evaluation", type="primary", icon=":material/play_arrow:", key="run"):
    bar = st.progress(0.0, text="Embedding the queries…")
    with guard("The evaluation failed"):
        reports = svc.evaluate(
            store.id,
            cases,
            configs,
            DEFAULT_KS,
            progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} searches"),
            keep_as=chosen if writable else None,  # a viewer's run is shown, not kept
        )
        st.session_state["eval_run"] = (signature, reports)
        st.rerun()  # the kept runs' chart above shows this one
    bar.empty()
run = st.session_state.get("eval_run")
if not run or run[0] != signature:
    st.info(f"Press “Run the evaluation” to search the {count(len(cases), 'question')} with each configuration (top {DEPTH} each).")
    st.stop()
reports = run[1]

st.subheader("Results")
for r in reports:
    st.markdown(f"**{markdown_literal(r.name)}** {dx.headline(r)}.")
table = dx.metrics_table(reports)
st.dataframe(
    table,
    hide_index=True,
    row_height=ROW_WRAP,
    column_config={
        "measure": st.column_config.TextColumn(width=170),
        "what it measures": st.column_config.TextColumn(width="large"),
        **{n: st.column_config.NumberColumn(width=100, format="%.3f") for n in names},
    },
)
st.caption(f"Each figure is a mean over the {count(len(cases), 'question')}, from 0 (never) to 1 (always).")
metrics = dx.metrics_frame(reports)
charted = metrics[metrics["metric"].isin(CHARTED)].assign(
    configuration=lambda f: f["configuration"].map(plot_text),
    explained=lambda f: f["metric"].map(dx.metric_help).map(lambda t: plot_text(t, 50)),
    metric=lambda f: f["metric"].map(dx.metric_label).map(plot_text),
)
fig = px.bar(
    charted,
    x="metric",
    y="value",
    color="configuration",
    barmode="group",
    range_y=[0, 1],
    color_discrete_map={plot_text(n): c for n, c in configuration_colours(names).items()},  # as in the kept runs' chart
    custom_data=["explained"],
    category_orders={"metric": [plot_text(dx.metric_label(m)) for m in CHARTED], "configuration": [plot_text(n) for n in names]},
    title=f"Retrieval quality over {count(len(cases), 'question')}",
    labels={"value": "mean over questions (higher is better)", "metric": ""},
)
fig.update_traces(hovertemplate="<b>%{x}</b> %{y:.3f}<br>%{customdata[0]}<extra>%{fullData.name}</extra>")
st.plotly_chart(fig)
kinds = [r.by_kind() for r in reports]
if any(len(k) > 1 for k in kinds):
    st.caption(f"Order of all right answers (nDCG@{NDCG_DEPTH}) by kind of question: where a configuration wins or loses")
    by_kind = pd.DataFrame({r.name: {kind: m[f"ndcg@{NDCG_DEPTH}"] for kind, m in k.items()} for r, k in zip(reports, kinds)})
    st.dataframe(by_kind, column_config={n: st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f") for n in names})

st.subheader("Questions that missed")
worst = min(range(len(reports)), key=lambda i: reports[i].metrics[f"ndcg@{NDCG_DEPTH}"])
which = st.selectbox("Configuration", range(len(reports)), index=worst, format_func=lambda i: reports[i].name, key="drill_config")
report = reports[which]
failed = failed_cases(report, DEPTH)
st.caption(
    f"{len(failed)} of {count(len(cases), 'question')} missed at least one expected memory in the top {DEPTH}, worst first. "
    "Select one to see where each expected memory came, or why it was not retrieved, and what came back instead."
)
if not failed:
    st.success(f"Every expected memory came back in the top {DEPTH}.")
    st.stop()
overview = pd.DataFrame(
    {
        "question": [c.case.query for c in failed],
        "kind": [c.case.kind or "" for c in failed],
        "where the expected memories came": [dx.expected_places(c, DEPTH) for c in failed],
        f"found in the top {DEPTH}": [c.metrics[f"recall@{DEPTH}"] for c in failed],
    }
)
event = st.dataframe(
    overview,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="failed_table",
    column_config={
        "question": st.column_config.TextColumn(width="large"),
        f"found in the top {DEPTH}": st.column_config.ProgressColumn(
            min_value=0, max_value=1, format="percent", help=dx.metric_help(f"recall@{DEPTH}")
        ),
    },
)
rows = event.selection.rows if event else []
if rows:
    case = failed[rows[0]]
    st.text(f"Question: {case.case.query}")
    with guard("Could not explain the case"):
        expected, returned = dx.explain_case(svc, store.id, case, report.config, DEPTH)
        st.caption("Expected memories: where each came, or why it was not retrieved")
        st.dataframe(
            expected,
            hide_index=True,
            column_order=["content", "where it came", "why", "similarity"],
            row_height=ROW_WRAP,
            column_config={**TEXT_COLUMNS, "why": st.column_config.TextColumn(width="large")},
        )
        st.caption(f"What {markdown_literal(report.name)} returned (✓ = expected)")
        st.dataframe(
            returned,
            hide_index=True,
            column_order=[c for c in returned.columns if c not in ("id", "superseded") and returned[c].notna().any()],
            row_height=ROW_WRAP,
            column_config=TEXT_COLUMNS,
        )
