"""``python -m cli.reconstruct``: outputs, exit codes, one-line reasons for bad input, the untrained warning, and
the int_model -> viz boundary (viz is loaded only when an overlay, meshes or BVH are asked for)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from cli import reconstruct as cli
from pipeline.results import UNTRAINED_CHECKPOINT, load_results

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT, FRAMES, FPS = 240, 180, 12, 25.0
FAST = ["--variant", "tiny", "--window", "8", "--quiet"]


def render_clip_frames(body_model) -> np.ndarray:
    """(T, H, W, 3) two people walking on the spot (training.synthetic)."""
    from training.synthetic.camera import Camera
    from training.synthetic.motions import periodic_motion
    from training.synthetic.scene import PersonSpec, render_clip
    from viz.renderer import Renderer

    rng = np.random.default_rng(1)
    people = [PersonSpec(motion=periodic_motion("walk", rng=rng), betas=np.zeros(10, np.float32), position=(x, 0.0))
              for x in (-0.8, 0.8)]
    camera = Camera.look_at(target=np.array([0.0, 0.9, 0.0]), distance=4.5, elevation_deg=5.0, roll_deg=0.0,
                            focal_length=0.9 * WIDTH, width=WIDTH, height=HEIGHT)
    background = np.full((HEIGHT, WIDTH, 3), (90, 120, 100), np.uint8)
    with Renderer() as renderer:
        return render_clip(people=people, camera=camera, background=background, num_frames=FRAMES, fps=FPS,
                           body_model=body_model, renderer=renderer).frames


def write_video(path: Path, frames: np.ndarray, *, faststart: bool = True) -> Path:
    from viz.overlay import VideoCodec, VideoWriter

    codec = VideoCodec("libx264", ".mp4", "yuv420p", {"preset": "veryfast"},
                       {"movflags": "+faststart"} if faststart else {})
    with VideoWriter(path, fps=FPS, codec=codec) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


@pytest.fixture(scope="module")
def clip(body_model, tmp_path_factory, renderer) -> Path:
    return write_video(tmp_path_factory.mktemp("cli") / "two.mp4", render_clip_frames(body_model))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.reconstruct", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)


def test_success_writes_every_output(clip, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.run([str(clip), "--out", str(out), *FAST, "--meshes", "glb", "--bvh", "--side-view"])
    captured = capsys.readouterr()
    assert status == cli.EXIT_OK, captured.err
    assert "FRESHLY INITIALISED" in captured.err and "MEANINGLESS" in captured.err
    assert captured.out.splitlines()[0].startswith("ok: 2 track(s)")
    results = load_results(out)
    assert results.status == "ok" and results.checkpoint == UNTRAINED_CHECKPOINT
    with av.open(str(out / "overlay.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == FRAMES
        assert stream.width > WIDTH  # the side view panel
    assert len(list((out / "meshes").glob("frame_*.glb"))) == FRAMES
    assert sorted(p.name for p in (out / "bvh").iterdir()) == ["track_000.bvh", "track_001.bvh"]


def test_no_person_exits_3_with_a_results_file(tmp_path, capsys):
    frames = np.full((6, HEIGHT, WIDTH, 3), 128, np.uint8)
    frames[:, :, : WIDTH // 2] = 60
    video = write_video(tmp_path / "empty.mp4", frames)
    status = cli.run([str(video), "--out", str(tmp_path / "out"), *FAST])
    captured = capsys.readouterr()
    assert status == cli.EXIT_NO_PERSON
    assert captured.out.startswith("no_person: no person found")
    assert load_results(tmp_path / "out").status == "no_person"
    assert not (tmp_path / "out" / "overlay.mp4").exists()


def test_bad_inputs_give_one_line_and_no_traceback(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("these are my notes, not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    data = write_video(tmp_path / "whole.mp4", np.full((10, 64, 64, 3), 100, np.uint8), faststart=False).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the index (moov atom) at the end is lost
    (tmp_path / "table.xyz").write_text("1,2,3")
    cases = {
        truncated: "truncated.mp4",  # the wording is media.py's (today: "has no video stream")
        tmp_path / "missing.mp4": "does not exist",
        tmp_path / "table.xyz": "unsupported file type",
    }
    for path, reason in cases.items():
        status = cli.run([str(path), "--out", str(tmp_path / "out"), *FAST])
        lines = capsys.readouterr().err.strip().splitlines()
        assert status == cli.EXIT_BAD_INPUT, (path, lines)
        assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], (path, lines)
    # The real process: exit status 2, one line, no traceback.
    result = run_cli(str(text), "--out", str(tmp_path / "out"), *FAST)
    assert result.returncode == cli.EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: notes.mp4") and "text file" in lines[0]


def test_bad_arguments_are_refused_in_one_line(clip, tmp_path, capsys):
    out = str(tmp_path / "out")
    for args, reason in (
        (["--window", "1"], "--window"),
        (["--checkpoint", str(tmp_path / "nope.pt")], "checkpoint not found"),
        (["--boxes", str(tmp_path / "nope.csv")], "--boxes"),
        (["--max-frames", "0"], "--max-frames"),
        (["--device", "tpu:7"], "--device"),
        (["--detect-every", "50"], "detect_every"),
    ):
        status = cli.run([str(clip), "--out", out, "--quiet", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == cli.EXIT_BAD_INPUT, args
        assert err[-1].startswith("error: ") and reason in err[-1], (args, err)
    for args in ([str(clip)], [str(clip), "--out", out, "--precision", "fp16"]):  # usage errors: one line too
        with pytest.raises(SystemExit) as exit_info:
            cli.run(args)
        assert exit_info.value.code == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "usage" not in err[0]
    bad_boxes = tmp_path / "boxes.csv"
    bad_boxes.write_text("frame,x,y,w,h\n0,10,10,abc,20\n")
    assert cli.run([str(clip), "--out", out, *FAST, "--boxes", str(bad_boxes)]) == cli.EXIT_BAD_INPUT
    assert "boxes.csv" in capsys.readouterr().err


def test_reconstruct_does_not_load_viz_unless_asked(clip, tmp_path):
    """``import cli.reconstruct`` and a run without overlay, meshes or BVH never import viz; asking for an
    overlay loads it at run time."""
    script = (
        "import sys\n"
        "from cli import reconstruct as cli\n"
        "assert not [m for m in sys.modules if m == 'viz' or m.startswith('viz.')]\n"
        f"status = cli.run([{str(clip)!r}, '--out', {str(tmp_path / 'a')!r}, '--no-overlay', '--variant', 'tiny',"
        " '--window', '8', '--quiet'])\n"
        "assert status == 0, status\n"
        "assert 'viz' not in sys.modules and 'pyrender' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "results.npz").exists() and not (tmp_path / "a" / "overlay.mp4").exists()


def test_without_checkpoint_or_variant_the_bundled_demo_model_runs(clip, tmp_path, capsys, monkeypatch, body_model):
    import int_model.checkpoint as checkpoint_module
    from int_model import build_model, save_checkpoint

    demo = save_checkpoint(tmp_path / "demo.pt", build_model("tiny", body_model=body_model), meta={"phase": "demo"})
    monkeypatch.setattr(checkpoint_module, "DEMO_CHECKPOINT", demo)
    out = tmp_path / "run"
    assert cli.run([str(clip), "--out", str(out), "--window", "8", "--no-overlay"]) == cli.EXIT_OK
    err = capsys.readouterr().err
    assert "bundled demo model demo.pt" in err and "SYNTHETIC" in err and "FRESHLY" not in err
    assert load_results(out).checkpoint == str(demo)
    # Without a bundled model the untrained one runs, and says so.
    monkeypatch.setattr(checkpoint_module, "DEMO_CHECKPOINT", tmp_path / "missing.pt")
    assert cli.run([str(clip), "--out", str(tmp_path / "b"), "--window", "8", "--no-overlay", "--quiet",
                    "--max-frames", "4"]) in (cli.EXIT_OK, cli.EXIT_NO_PERSON)
    assert "FRESHLY INITIALISED 'small'" in capsys.readouterr().err
