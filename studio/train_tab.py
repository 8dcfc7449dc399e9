"""The Train tab: start, follow, stop and resume the training phases; use their checkpoints in the other tabs.

Everything is done by :class:`training.launch.launcher.TrainLauncher` (the command line, the process, its log and
metrics) and drawn by :func:`viz.figures.training.training_curves_figure`; this module only wires them to the UI.

Named endpoints: ``/train_start`` (first input: the phase, ``"1"``, ``"2"`` or ``"3"``; every other input has
a default), ``/train_status`` (optional input: a run name), ``/train_stop`` (no input) and ``/train_resume``
(a run name, optionally a new total of epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from int_model.loading import ModelKey
from training.launch.launcher import TrainLauncher
from training.launch.request import SyntheticData, TrainRequest
from training.launch.runs import RunStatus
from training.launch.validation import LaunchError, parse_phase, phase_config_path
from training.phases import load_phase_config
from viz.figures.training import training_curves_figure

from .common import ModelCache, UserError, handler

PHASE_CHOICES = ("1", "2", "3")
DEFAULT_CONFIG_SET = "cpu-demo"
SOURCE_CONFIG = "the config's datasets"
SOURCE_SYNTHETIC = "generate synthetic clips"
SOURCE_FOLDERS = "dataset folders under the data root"
DATA_SOURCES = (SOURCE_CONFIG, SOURCE_SYNTHETIC, SOURCE_FOLDERS)
DEFAULT_CLIPS, DEFAULT_FRAMES = 64, 32
#: Seconds between two refreshes of the log and the curves while a run is running.
REFRESH_SECONDS = 2.0
RUN_COLUMNS = ["run", "phase", "state", "steps", "epochs", "latest val (mm)", "checkpoints"]


# ------------------------------------------------------------------------------------------------ views
def _config_sets(launcher: TrainLauncher) -> list[str]:
    return list(launcher.config_sets())


def describe_config(launcher: TrainLauncher, phase: Any, config_set: str) -> str:
    """One paragraph on the chosen phase file: what it trains, on what, for how long, from what."""
    number = parse_phase(phase)
    path = phase_config_path(config_set, number, launcher.configs_root)
    config = load_phase_config(path)
    data = ", ".join(f"{s.name} ({s.kind}" + (f", {s.clips} clips x {s.frames} frames" if s.clips else "") + ")"
                     for s in config.data.train)
    init = (f"starts from phase {number - 1}'s final.pt" if config.init else "starts from scratch")
    shown = path.relative_to(launcher.configs_root.parent) if path.is_relative_to(launcher.configs_root.parent) \
        else path
    return (f"`{shown}`: {config.description or config.name}. `{config.model.variant}` "
            f"{'video' if config.model.temporal else 'image'} model, {config.train.epochs} epoch(s), batch "
            f"{config.data.batch_size}, {config.optim.name} lr {config.optim.lr:g}; data: {data}; {init}.")


def _status_markdown(status: RunStatus) -> str:
    lines = [f"### {status.state}", status.message]
    if status.run is not None:
        if status.run.checkpoints:
            lines.append("Checkpoints: " + ", ".join(f"`{p}`" for p in status.run.checkpoints.values()))
        lines.append(f"Folder: `{status.run.path}`")
    return "\n\n".join(lines)


def _figure(status: RunStatus):
    title = f"{status.name}: {status.state}" if status.name else "no run yet"
    figure = training_curves_figure(status.metrics.train, status.metrics.val, title=title)
    figure.update_layout(width=None, autosize=True)
    return figure


def _view(status: RunStatus) -> tuple[str, str, Any]:
    return _status_markdown(status), status.log, _figure(status)


def runs_table(launcher: TrainLauncher) -> pd.DataFrame:
    rows = [[info.name, info.phase or "?", info.state, info.step, info.epoch, info.val_summary,
             ", ".join(info.checkpoints)] for info in launcher.runs()]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _run_choices(launcher: TrainLauncher, value: str | None = None):
    names = [info.name for info in launcher.runs()]
    return gr.update(choices=names, value=value if value in names else (names[0] if names else None))


def _checkpoint_choices(launcher: TrainLauncher, value: str | None = None):
    choices = launcher.checkpoints()
    keys = [key for _, key in choices]
    return gr.update(choices=choices, value=value if value in keys else (keys[0] if keys else None))


def _init_choices(launcher: TrainLauncher, phase: Any, config_set: str):
    default = launcher.default_init(phase, config_set)
    return gr.update(choices=launcher.checkpoints(), value=str(ModelKey.checkpoint(default)) if default else None)


# ------------------------------------------------------------------------------------------------ handlers
def _or_config(value: Any) -> Any:
    """A number box's 0 (or nothing) means "the config's value"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return None if float(value) == 0 else value
    except (TypeError, ValueError):
        return value  # the launcher names the bad value


@handler
def start_training(launcher: TrainLauncher, phase: Any = "1", config_set: str = DEFAULT_CONFIG_SET,
                   data_source: str = SOURCE_CONFIG, clips: Any = DEFAULT_CLIPS, frames: Any = DEFAULT_FRAMES,
                   folders: list[str] | None = None, epochs: Any = None, batch_size: Any = None, nproc: Any = 1,
                   init: str | None = None, chain: bool = False, run_name: str | None = None):
    """Start a training phase in the background.

    Args:
        phase: the first input of ``/train_start``: ``"1"``, ``"2"`` or ``"3"`` (the paper's phases).
        config_set: ``paper``, ``cpu-demo`` or ``test`` (``configs/<set>/phase<N>.yaml``).
        data_source: :data:`SOURCE_CONFIG` (the phase file's datasets), :data:`SOURCE_SYNTHETIC` (``clips`` clips of
            ``frames`` frames, generated into the data root and cached) or :data:`SOURCE_FOLDERS` (``folders``:
            datasets under the data root).
        epochs, batch_size: replace the config's (0 or empty: keep them).
        nproc: training processes (more than one: torchrun DDP).
        init: checkpoint to start from (a path or a ``checkpoint:<path>`` key); phases 2 and 3 need one.
        chain: start the next phase from this one's final.pt when it finishes.
        run_name: the run folder's name (empty: made from the config, the time and the phase).

    Returns the status text, the log, the curves, the runs table, the run choice and the run's name.
    """
    epochs, batch_size = _or_config(epochs), _or_config(batch_size)
    if data_source not in DATA_SOURCES:
        raise UserError(f"unknown data source {data_source!r}; choose one of: {', '.join(DATA_SOURCES)}")
    synthetic = None
    if data_source == SOURCE_SYNTHETIC:
        synthetic = SyntheticData(clips=clips, frames=frames)
    chosen = tuple(f for f in (folders or []) if f and str(f).strip())
    if data_source == SOURCE_FOLDERS and not chosen:
        raise UserError("choose at least one dataset folder (or another data source)")
    request = TrainRequest(phase=phase, config_set=config_set, epochs=epochs, batch_size=batch_size, nproc=nproc,
                           init=init or None, synthetic=synthetic,
                           datasets=chosen if data_source == SOURCE_FOLDERS else (), chain=bool(chain),
                           name=run_name or None)
    status = launcher.start(request)
    gr.Info(f"started {status.name}")
    return (*_view(status), runs_table(launcher), _run_choices(launcher, status.name), status.name or "")


@handler
def training_status(launcher: TrainLauncher, run: str | None = None):
    """The status text, log tail and curves of ``run`` (empty: the running run, else the last one started)."""
    return _view(launcher.status(run or None))


@handler
def stop_training(launcher: TrainLauncher):
    """Stop the running run (it finishes its step and saves last.pt); the same outputs as :func:`start_training`."""
    status = launcher.stop()
    return (*_view(status), runs_table(launcher), _run_choices(launcher, status.name), status.name or "")


@handler
def resume_training(launcher: TrainLauncher, run: str | None, epochs: Any = None):
    """Continue ``run`` from its last.pt (``epochs``: a new total, to extend a finished run)."""
    if not run:
        raise UserError("choose the run to resume in the Run list")
    status = launcher.resume(run, epochs=_or_config(epochs))
    gr.Info(f"resumed {status.name}")
    return (*_view(status), runs_table(launcher), _run_choices(launcher, status.name), status.name or "")


@handler
def refresh_lists(launcher: TrainLauncher, run: str | None = None, checkpoint: str | None = None,
                  folders: list[str] | None = None):
    """The runs table, the run choice, the checkpoint choice and the dataset folders, read again from disk."""
    found = launcher.datasets()
    kept = [f for f in (folders or []) if f in found]
    return (runs_table(launcher), _run_choices(launcher, run), _checkpoint_choices(launcher, checkpoint),
            gr.update(choices=found, value=kept))


def _checkpoint_key(key: str | None) -> ModelKey | None:
    """The checkpoint a dropdown value names (None for nothing chosen or another kind of key)."""
    try:
        chosen = ModelKey.parse(key) if key else None
    except ValueError:
        return None
    return chosen if chosen is not None and chosen.kind == "checkpoint" else None


@handler
def use_checkpoint(cache: ModelCache, key: str | None):
    """Make checkpoint ``key`` (``checkpoint:<path>``) the model of the other tabs; returns (key, confirmation)."""
    chosen = _checkpoint_key(key)
    if chosen is None:
        raise UserError("choose a checkpoint of a run first (Refresh lists the newest)")
    key = str(ModelKey.checkpoint(cache.settings.server_checkpoint(chosen.value)))
    _, info = cache.get(key)  # a clear message now if it does not load
    meta = info["meta"]
    trained = ", ".join(f"{k} {meta[k]}" for k in ("phase", "step", "epoch") if k in meta)
    return key, f"The other tabs now use `{info['checkpoint']}`" + (f" ({trained})." if trained else ".")


@handler
def phase_changed(launcher: TrainLauncher, phase: Any, config_set: str):
    """The config's description and the default init checkpoint (the previous phase's newest final.pt)."""
    return describe_config(launcher, phase, config_set), _init_choices(launcher, phase, config_set)


def tick(launcher: TrainLauncher):
    """A refresh while a run is running; the timer stops (and the lists refresh) once nothing runs."""
    try:
        status = launcher.status()
    except (LaunchError, OSError) as exc:  # e.g. the runs folder disappeared: stop following
        return (f"### {exc}", gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip(), gr.skip())
    markdown, log, figure = _view(status)
    if status.active:
        return markdown, log, figure, gr.skip(), gr.skip(), gr.skip()
    return markdown, log, figure, gr.Timer(active=False), runs_table(launcher), _checkpoint_choices(launcher)


# ------------------------------------------------------------------------------------------------ layout
@dataclass
class _StartForm:
    """The left column: what to train, on what and from what, and the Start and Stop buttons."""

    phase: gr.Radio
    config_set: gr.Dropdown
    config_note: gr.Markdown
    data_source: gr.Radio
    synthetic_row: gr.Row
    clips: gr.Number
    frames: gr.Number
    folders: gr.Dropdown
    epochs: gr.Number
    batch_size: gr.Number
    nproc: gr.Number
    init: gr.Dropdown
    chain: gr.Checkbox
    run_name: gr.Textbox
    start: gr.Button
    stop: gr.Button

    @property
    def request(self) -> list[Any]:
        """The inputs of ``/train_start``, in the order of :func:`start_training`'s arguments."""
        return [self.phase, self.config_set, self.data_source, self.clips, self.frames, self.folders, self.epochs,
                self.batch_size, self.nproc, self.init, self.chain, self.run_name]


@dataclass
class _FollowPanel:
    """The right column: the followed run's status, curves and log."""

    status_md: gr.Markdown
    curves: gr.Plot
    log: gr.Textbox

    @property
    def outputs(self) -> list[Any]:
        """The outputs of :func:`training_status` (and the first three of the other handlers)."""
        return [self.status_md, self.log, self.curves]


@dataclass
class _RunsPanel:
    """Below the columns: the run list and table, the checkpoints to use elsewhere, and the hidden parts."""

    run: gr.Dropdown
    resume: gr.Button
    refresh: gr.Button
    table: gr.Dataframe
    checkpoint: gr.Dropdown
    use: gr.Button
    confirmation: gr.Markdown
    timer: gr.Timer
    acted_on: gr.Textbox


def _first_note(launcher: TrainLauncher, config_set: str | None) -> str:
    """The description of phase 1 of ``config_set`` shown when the page opens (a warning if it does not load)."""
    try:
        return describe_config(launcher, 1, config_set) if config_set else "no phase configs found"
    except (ValueError, OSError) as exc:
        return f"⚠ {exc}"


def _start_form(launcher: TrainLauncher, sets: list[str], default_set: str | None) -> _StartForm:
    with gr.Column(scale=1):
        with gr.Row():
            phase = gr.Radio(list(PHASE_CHOICES), value="1", label="Phase")
            config_set = gr.Dropdown(sets, value=default_set, label="Config")
        config_note = gr.Markdown(_first_note(launcher, default_set))
        data_source = gr.Radio(list(DATA_SOURCES), value=SOURCE_CONFIG, label="Data")
        with gr.Row(visible=False) as synthetic_row:
            clips = gr.Number(DEFAULT_CLIPS, precision=0, label="Synthetic clips")
            frames = gr.Number(DEFAULT_FRAMES, precision=0, label="Frames per clip")
        folders = gr.Dropdown(launcher.datasets(), value=[], multiselect=True, allow_custom_value=True,
                              label="Dataset folders (relative to the data root)", visible=False)
        with gr.Row():
            epochs = gr.Number(0, precision=0, label="Epochs (0: the config's)")
            batch_size = gr.Number(0, precision=0, label="Batch size per process (0: the config's)")
            nproc = gr.Number(1, precision=0, label="Processes (> 1: torchrun DDP)")
        init = gr.Dropdown(launcher.checkpoints(), value=None, allow_custom_value=True,
                           label="Init checkpoint (phases 2, 3: the previous phase's final.pt)")
        chain = gr.Checkbox(value=False, label="Chain 1 → 2 → 3: start the next phase from final.pt when "
                                               "one finishes")
        run_name = gr.Textbox("", label="Run name (empty: automatic)", max_lines=1)
        with gr.Row():
            start = gr.Button("Start", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    return _StartForm(phase=phase, config_set=config_set, config_note=config_note, data_source=data_source,
                      synthetic_row=synthetic_row, clips=clips, frames=frames, folders=folders, epochs=epochs,
                      batch_size=batch_size, nproc=nproc, init=init, chain=chain, run_name=run_name, start=start,
                      stop=stop)


def _follow_panel(launcher: TrainLauncher) -> _FollowPanel:
    with gr.Column(scale=2):
        status_md = gr.Markdown(_status_markdown(launcher.status()))
        curves = gr.Plot(label="Loss and validation metrics")
        log = gr.Textbox(label="Log (train.log)", lines=14, max_lines=14, autoscroll=True, interactive=False)
    return _FollowPanel(status_md=status_md, curves=curves, log=log)


def _runs_panel(launcher: TrainLauncher) -> _RunsPanel:
    with gr.Row():
        # Runs are found when asked for, not at start-up: the list is refreshed on page load and by Refresh,
        # and an API client may name any run folder (the launcher checks it is one under the runs root).
        run = gr.Dropdown([i.name for i in launcher.runs()], value=None, label="Run", scale=2,
                          allow_custom_value=True)
        resume = gr.Button("Resume", scale=1)
        refresh = gr.Button("Refresh", scale=1)
    table = gr.Dataframe(runs_table(launcher), headers=RUN_COLUMNS, interactive=False, label="Runs")
    with gr.Row():
        checkpoint = gr.Dropdown(launcher.checkpoints(), value=None, label="Checkpoint", scale=3)
        use = gr.Button("Use in the other tabs", scale=1)
    confirmation = gr.Markdown()
    timer = gr.Timer(REFRESH_SECONDS, active=False)
    # The run a start, stop or resume acted on, as plain text for API clients (the Run list is a choice).
    acted_on = gr.Textbox(visible=False, label="run name")
    return _RunsPanel(run=run, resume=resume, refresh=refresh, table=table, checkpoint=checkpoint, use=use,
                      confirmation=confirmation, timer=timer, acted_on=acted_on)


class _Handlers:
    """Small adapters that bind the launcher and the cache to the handlers above; their default arguments make
    the endpoints' inputs optional for API clients."""

    def __init__(self, cache: ModelCache, launcher: TrainLauncher) -> None:
        self.cache = cache
        self.launcher = launcher

    def on_start(self, phase: str, config_set: str, data_source: str, clips: float, frames: float,
                 folders: list[str] | None = None, epochs: float = 0, batch_size: float = 0,
                 nproc: float = 1, init: str | None = None, chain: bool = False, run_name: str = ""):
        return start_training(self.launcher, phase, config_set, data_source, clips, frames, folders, epochs,
                              batch_size, nproc, init, chain, run_name)

    def on_status(self, run: str | None = None):
        return training_status(self.launcher, run)

    def on_stop(self):
        return stop_training(self.launcher)

    def on_resume(self, run: str | None, epochs: float = 0):
        return resume_training(self.launcher, run, epochs)

    def on_refresh(self, run: str | None, checkpoint: str | None, folders: list[str] | None):
        return refresh_lists(self.launcher, run, checkpoint, folders)

    def on_phase(self, phase: str, config_set: str):
        return phase_changed(self.launcher, phase, config_set)

    def on_use(self, key: str | None):
        return use_checkpoint(self.cache, key)

    def on_source(self, source: str):
        return gr.update(visible=source == SOURCE_SYNTHETIC), gr.update(visible=source == SOURCE_FOLDERS)

    def on_open(self):
        status = self.launcher.status()
        return (*_view(status), gr.Timer(active=status.active))

    def on_page_load(self, run: str | None, checkpoint: str | None, folders: list[str] | None):
        return (*self.on_refresh(run, checkpoint, folders), *self.on_open())


def _wire(tab: gr.Tab, form: _StartForm, follow: _FollowPanel, runs: _RunsPanel, *, model_key: gr.State,
          handlers: _Handlers) -> None:
    """Connect the tab's events: the named endpoints, the timer that follows a running run, the lists."""
    h = handlers
    changed = [*follow.outputs, runs.table, runs.run, runs.acted_on]
    form.start.click(h.on_start, form.request, changed, api_name="train_start") \
        .success(lambda: gr.Timer(active=True), None, runs.timer, api_name=False)
    runs.resume.click(h.on_resume, [runs.run, form.epochs], changed, api_name="train_resume") \
        .success(lambda: gr.Timer(active=True), None, runs.timer, api_name=False)
    form.stop.click(h.on_stop, None, changed, api_name="train_stop")
    runs.run.select(h.on_status, [runs.run], follow.outputs, api_name=False)
    runs.refresh.click(h.on_refresh, [runs.run, runs.checkpoint, form.folders],
                       [runs.table, runs.run, runs.checkpoint, form.folders], api_name=False)
    runs.refresh.click(h.on_status, [runs.run], follow.outputs, api_name="train_status")
    runs.timer.tick(lambda: tick(h.launcher), None, [*follow.outputs, runs.timer, runs.table, runs.checkpoint],
                    api_name=False)
    form.phase.change(h.on_phase, [form.phase, form.config_set], [form.config_note, form.init], api_name=False)
    form.config_set.change(h.on_phase, [form.phase, form.config_set], [form.config_note, form.init], api_name=False)
    form.data_source.change(h.on_source, [form.data_source], [form.synthetic_row, form.folders], api_name=False)
    runs.use.click(h.on_use, [runs.checkpoint], [model_key, runs.confirmation], api_name=False)
    tab.select(h.on_open, None, [*follow.outputs, runs.timer], api_name=False)


def build_train_tab(cache: ModelCache, model_key: gr.State, launcher: TrainLauncher):
    """The tab's layout and wiring (inside an open ``gr.Blocks``); ``model_key`` is the session's model.
    Returns (handler, inputs, outputs) that refresh the runs, the lists and the status, which the app runs
    when a page loads."""
    sets = _config_sets(launcher)
    default_set = DEFAULT_CONFIG_SET if DEFAULT_CONFIG_SET in sets else (sets[0] if sets else None)
    with gr.Tab("Train") as tab:
        gr.Markdown("Train the three phases of the paper (1: image model; 2: video model from phase 1; 3: fine-tuning "
                    f"from phase 2). Runs go to `{launcher.runs_root}`, data is read from `{launcher.data_root}`; a "
                    "run keeps going in the background when the page closes.")
        with gr.Row():
            form = _start_form(launcher, sets, default_set)
            follow = _follow_panel(launcher)
        runs = _runs_panel(launcher)
    handlers = _Handlers(cache, launcher)
    _wire(tab, form, follow, runs, model_key=model_key, handlers=handlers)
    return (handlers.on_page_load, [runs.run, runs.checkpoint, form.folders],
            [runs.table, runs.run, runs.checkpoint, form.folders, *follow.outputs, runs.timer])


__all__ = ["build_train_tab", "describe_config", "phase_changed", "refresh_lists", "resume_training", "runs_table",
           "start_training", "stop_training", "tick", "training_status", "use_checkpoint"]
