"""Setup: the zoo and added models, the probe images, and computing the attribution graphs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from depara_core.probes.probeset import IMAGE_SUFFIXES, ProbeSet
from depara_core.session.config import CustomModel
from depara_core.session.policy import ENABLE_CODE_HINT, ENABLE_PATHS_HINT
from depara_core.session.uploads import probes_from_path, probes_from_upload, stored_upload
from pages import _ui as ui

ui.init_state()  # a no-op when app.py ran first

ss = st.session_state
st.title("Setup")
ui.flash()
st.caption("Choose models and probe images in the sidebar, add your own below, then compute. Everything computed is cached on disk, so a later start is immediate.")

with st.expander("Reopen a saved view", icon=":material/history:"):
    saved = st.file_uploader("An export bundle (.zip) or its settings.json", type=["zip", "json"], key="reopen_file")
    if saved is not None and st.button("Reopen", key="reopen", icon=":material/restore:"):
        with ui.guard("reopening the view"):
            ui.reopen_settings(saved.getvalue())

# ---- models --------------------------------------------------------------------------------
st.header("Models", divider="gray")
z = ui.zoo(ss.zoo)
if z is not None:
    st.markdown(f"**{z.name}** — {z.description}")
    if z.available:
        st.dataframe(
            pd.DataFrame([{"model": s.name, "task": s.task, "input": "x".join(map(str, s.preprocess.size or ())) or "as given", "encoder": s.encoder, "source": s.source} for s in z.specs]),
            hide_index=True,
        )
        ss.controls = [n for n in ss.controls if n in z.names]
        st.multiselect(
            "Untrained controls", list(z.names), **ui.bind("controls"),
            help="Each chosen model's architecture with random weights, compared beside the trained models: how much of a "
            "similarity comes from the architecture alone. A source that ranks no better than its untrained twin has learnt "
            "nothing DEPARA can see.",
        )  # fmt: skip
    else:
        st.warning(f"This zoo is not installed: {z.unavailable_reason}", icon=":material/warning:")

with st.expander("Add a model", expanded=False):
    kinds = ["torchvision", "timm"] + (["torchscript", "callable"] if ui.policy().allow_code else [])
    if not ui.policy().allow_code:
        st.caption(f"TorchScript files and module:function models run code on the server and are off; {ENABLE_CODE_HINT}.")
    kind = st.radio("Kind", kinds, horizontal=True, key="add_kind",
                    format_func={"torchvision": "torchvision architecture", "timm": "timm architecture", "torchscript": "TorchScript file", "callable": "module:function"}.get)  # fmt: skip
    with st.form("add_model", clear_on_submit=False, border=False):
        name = st.text_input("Name", key="add_name", placeholder="e.g. my-resnet")
        target, checkpoint_path, upload, num_classes, encoder = "", "", None, 0, ""
        c1, c2 = st.columns(2)
        input_size = c1.number_input("Input size (0 = the architecture's own)", 0, 2048, 0, key="add_input_size",
                                     help="Side of the square centre crop; torchvision and timm models default to their weights' preprocessing.")  # fmt: skip
        resize = c2.number_input("Resize shorter side to (0 = the architecture's own)", 0, 4096, 0, key="add_resize")
        if kind in ("torchvision", "timm"):
            target = st.text_input("Architecture", key="add_arch", placeholder="resnet18" if kind == "torchvision" else "resnet18.a1_in1k")
            upload = st.file_uploader("Checkpoint (state_dict: .pth, .pt, .safetensors)", type=["pth", "pt", "bin", "safetensors"], key="add_ckpt")
            checkpoint_path = st.text_input("…or its path on the server", key="add_ckpt_path")
            if kind == "torchvision":
                num_classes = st.number_input("Number of classes (0 = the architecture's default)", 0, 100000, 0, key="add_classes")
            encoder = st.text_input("Encoder layer (empty = the model's output)", key="add_encoder")
        elif kind == "torchscript":
            upload = st.file_uploader("TorchScript file (.pt)", type=["pt", "pth", "ts"], key="add_ts")
            target = st.text_input("…or its path on the server", key="add_ts_path")
            st.caption("TorchScript models accept no hooks: only their output is probed.")
        else:
            target = st.text_input("package.module:function (returns an nn.Module)", key="add_callable")
            encoder = st.text_input("Encoder layer (empty = the model's output)", key="add_encoder_c")
            st.caption("Runs Python code importable on the server.")
        submitted = st.form_submit_button("Add model", icon=":material/add:")
    if submitted:
        data, suffix = (upload.getvalue(), Path(upload.name).suffix) if upload is not None else (None, "")
        with ui.guard("adding the model"), stored_upload(data, suffix, ui.cache().root) as saved:
            if saved is not None:  # removed again if the model is refused
                checkpoint_path, target = (str(saved), target) if kind in ("torchvision", "timm") else ("", str(saved))
            elif kind == "torchscript" and target:
                target = str(ui.check_file(target))
            elif checkpoint_path:
                checkpoint_path = str(ui.check_file(checkpoint_path))
            name = name.strip() or (Path(upload.name).stem if upload is not None and kind == "torchscript" else Path(target).stem if kind == "torchscript" else target.split(":")[-1])
            if name in ss.custom_models or (z is not None and name in z.names):
                raise ui.DeparaError(f"a model named {name!r} already exists", "give the new model another name")
            custom = CustomModel(kind, name, target.strip(), checkpoint_path, encoder.strip(), int(num_classes) or None, int(input_size) or None, int(resize) or None)
            loaded = ui.load_custom(custom)  # builds it now, so errors show here
            ss.custom_models[name] = custom
            n_params = sum(p.numel() for p in loaded.module.parameters())
            ui.defer(f"Added {name!r} ({n_params:,} parameters, {len(loaded.layer_names())} layers).", models=[*ss.models, name])

if ss.custom_models:
    st.markdown("**Added models**")
    for n, c in list(ss.custom_models.items()):
        a, b = st.columns([5, 1])
        a.markdown(f"`{n}` — {c.kind}: {Path(c.target).name if c.kind == 'torchscript' else c.target}")
        if b.button("Remove", key=f"remove_{n}"):
            ss.custom_models.pop(n)
            ui.defer(f"Removed {n!r}.", models=[m for m in ss.models if m != n])

# ---- probes --------------------------------------------------------------------------------
st.header("Probes", divider="gray")
st.caption("The same unlabelled images are shown to every model. Built-in sets are chosen in the sidebar; add your own here.")
up_col, path_col = st.columns(2)
with up_col:
    files = st.file_uploader("Images or a .zip of images", type=[s.lstrip(".") for s in IMAGE_SUFFIXES] + ["zip"], accept_multiple_files=True, key="probe_files")
    size = st.number_input("Resize and centre-crop to (px)", 16, 1024, 224, step=16, key="probe_size")
    if st.button("Use uploaded images", disabled=not files, key="use_uploads"):
        with ui.guard("the uploaded probes"):
            ps = probes_from_upload([(f.name, f.getvalue()) for f in files], int(size), name=Path(files[0].name).stem if len(files) == 1 else "uploaded")
            ui.add_probes(ps)
with path_col:
    roots = ui.policy().allowed_roots
    folder = st.text_input("…or a folder or .zip on the server", key="probe_path", placeholder=str(roots[0]) if roots else "/data/probes",
                           help=f"Under {', '.join(map(str, roots))}" if roots else "Off on this server: " + ENABLE_PATHS_HINT)  # fmt: skip
    if st.button("Use this folder", disabled=not folder, key="use_folder"):
        with ui.guard("the probe folder"):
            ui.add_probes(probes_from_path(folder, int(size), ui.policy()))

with ui.guard("probes"):
    ws = ui.workspace(ui.current_config())
    probes: ProbeSet = ws.probes
    st.markdown(f"**Probe set:** {probes.name} — {len(probes)} images of {probes.size[0]}x{probes.size[1]} px")
    if probes.licence:
        st.caption(f"Licences: {probes.licence}")
    shown = list(range(min(16, len(probes))))
    st.image([probes.images[i] for i in shown], caption=[probes.ids[i] for i in shown], width=72)
    for note in probes.notes[:5]:
        st.caption(note)

# ---- compute -------------------------------------------------------------------------------
st.header("Compute", divider="gray")
with ui.guard("computing"):
    ws = ui.workspace(ui.current_config())
    missing = ws.missing()
    n_graphs = sum(len(ws.layers_of(n)) for n in ws.names)
    n_missing = sum(len(v) for v in missing.values())
    st.markdown(f"{len(ws.names)} models × {n_graphs // max(len(ws.names), 1)} layer(s) on {len(ws.probes)} probes with {ws.config.method}: "
                f"**{n_graphs - n_missing} of {n_graphs} graphs cached**.")  # fmt: skip
    for note in ws.notes:
        st.caption(note)
    job = ui.running_job()
    if job is not None and job.key != ui.graphs_job(ws):
        ui.follow(job)  # another computation of this session (e.g. started on another page) ends first
    if ws.complete:
        st.success("Results are ready: open Task transferability, Attribution maps, Edges or Layer selection.", icon=":material/check_circle:")
    elif ui.running_job() is not None or st.button("Compute", type="primary", key="compute_setup", icon=":material/play_arrow:"):
        if ui.compute_encoders(ws):
            st.success("Done. Open Task transferability to see the ranking and the task tree.", icon=":material/check_circle:")
    elif ss.get("stopped"):
        st.info(f"{ui.stopped_text()}. Compute resumes where it stopped.", icon=":material/pause_circle:")
    cols = st.columns(4)
    for col, page, label in zip(cols, ["pages/4_task_transferability.py", "pages/2_attribution_maps.py", "pages/3_edges.py", "pages/5_layer_selection.py"], ["Task transferability", "Attribution maps", "Edges", "Layer selection"]):
        col.page_link(page, label=label, icon=":material/arrow_forward:")
