"""Media io: image formats, folders, video containers, timestamps, damaged input and limits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.media import (
    ALPHA_BACKGROUND,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaError,
    MediaLimits,
    natural_sort_key,
    open_media,
)
from pipeline.types import MediaInfo

# Lossy codecs change pixel values; frames must still match their source on average within this (0..255).
LOSSY_MEAN_ABS_ERROR = 16.0


def gradient_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1).astype(np.uint8)


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp"])
def test_image_formats_read_as_rgb_uint8(tmp_path, ext):
    source = gradient_rgb()
    path = tmp_path / f"photo{ext}"
    Image.fromarray(source).save(path)
    reader = open_media(path)
    info = reader.info
    assert isinstance(info, MediaInfo)
    assert (info.kind, info.num_frames, info.width, info.height) == ("image", 1, 64, 48)
    assert info.fps == 1.0 and info.timestamps.tolist() == [0.0]
    frames = reader.read_all()
    assert frames.shape == (1, 48, 64, 3) and frames.dtype == np.uint8
    lossless = ext in (".png", ".bmp")
    assert mean_abs_error(frames[0], source) <= (0 if lossless else LOSSY_MEAN_ABS_ERROR)


def test_grayscale_and_sixteen_bit_images_become_rgb(tmp_path):
    gray = gradient_rgb()[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    frame = open_media(tmp_path / "gray.png").read_all()[0]
    assert frame.shape == (48, 64, 3)
    assert np.array_equal(frame[..., 0], gray) and np.array_equal(frame[..., 1], gray)

    deep = (gray.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    frame16 = open_media(tmp_path / "deep.png").read_all()[0]
    assert frame16.dtype == np.uint8 and frame16.shape == (48, 64, 3)
    assert mean_abs_error(frame16[..., 0], gray) < 1.5


def test_rgba_composited_over_background(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, 15:, 3] = 255  # right half opaque, left half fully transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cutout.png")
    frame = open_media(tmp_path / "cutout.png").read_all()[0]
    assert frame.shape == (20, 30, 3)
    assert tuple(frame[5, 2]) == ALPHA_BACKGROUND
    assert tuple(frame[5, 25]) == (10, 200, 30)


def test_exif_orientation_turns_photo_upright(tmp_path):
    source = np.zeros((40, 60, 3), np.uint8)
    source[:10, :10] = 255  # white top-left corner as stored
    image = Image.fromarray(source)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    reader = open_media(tmp_path / "phone.jpg")
    assert (reader.info.width, reader.info.height) == (40, 60)
    frame = reader.read_all()[0].mean(-1)
    assert frame[:8, -8:].mean() > 200  # the stored top-left is now top-right
    assert frame[:8, :8].mean() < 50


def test_text_file_with_image_extension_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n")
    with pytest.raises(MediaError, match=r"notes\.png is a text file"):
        open_media(path)


def test_unsupported_extension_lists_supported_ones(tmp_path):
    path = tmp_path / "scan.tiff"
    path.write_bytes(b"II*\x00")
    with pytest.raises(MediaError) as excinfo:
        open_media(path)
    message = str(excinfo.value)
    assert "unsupported file type (.tiff)" in message
    for ext in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        assert ext.lstrip(".") in message
    assert "\n" not in message


def test_missing_path_and_empty_file(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        open_media(tmp_path / "nowhere.mp4")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        open_media(tmp_path / "empty.jpg")


def test_huge_image_is_read_downscaled_with_note(tmp_path):
    big = np.zeros((6000, 8000, 3), np.uint8)
    big[1000:5000, 3000:4000] = 200  # a bright block to find again after downscaling
    Image.fromarray(big).save(tmp_path / "huge.jpg", quality=80)
    reader = open_media(tmp_path / "huge.jpg", limits=MediaLimits(max_side=1600))
    info = reader.info
    assert (info.width, info.height) == (1600, 1200)
    assert reader.source_size == (8000, 6000) and reader.scale == pytest.approx(0.2)
    assert any("8000x6000" in note and "1600x1200" in note for note in info.notes)
    frame = reader.read_all()[0]
    assert frame.shape == (1200, 1600, 3)
    assert frame[200:1000, 600:800].mean() > 180 and frame[:, :500].mean() < 20

    with pytest.raises(MediaError, match="max_image_pixels"):
        open_media(tmp_path / "huge.jpg", limits=MediaLimits(max_image_pixels=10_000_000))


# ----------------------------------------------------------------------------------------------
# Folders
# ----------------------------------------------------------------------------------------------


def test_folder_natural_order_skips_non_images(tmp_path):
    for index in (10, 2, 1):
        Image.fromarray(np.full((16, 24, 3), index * 10, np.uint8)).save(tmp_path / f"frame{index}.png")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    reader = open_media(tmp_path, fps=12)
    info = reader.info
    assert (info.kind, info.num_frames, info.fps) == ("folder", 3, 12.0)
    np.testing.assert_allclose(info.timestamps, [0, 1 / 12, 2 / 12])
    assert any("readme.txt" in note for note in info.notes)
    values = [int(frame[0, 0, 0]) for _, frame in reader]
    assert values == [10, 20, 100]  # frame1, frame2, frame10


def test_natural_sort_key():
    names = ["img10.png", "img2.png", "IMG1.png", "img1b.png"]
    assert sorted(names, key=natural_sort_key) == ["IMG1.png", "img1b.png", "img2.png", "img10.png"]


def test_folder_with_mixed_sizes_and_unreadable_image(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a1.png")
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a2.png")
    (tmp_path / "a3.jpg").write_text("broken")
    reader = open_media(tmp_path)
    assert reader.info.num_frames == 2 and reader.info.fps == 30.0
    assert any("resized" in note for note in reader.info.notes)
    assert any("a3.jpg" in note for note in reader.info.notes)
    assert reader.read_all().shape == (2, 20, 30, 3)


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(MediaError, match="holds no images"):
        open_media(tmp_path)


def test_folder_frame_limit_truncates_with_note(tmp_path):
    for index in range(5):
        Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(tmp_path / f"{index}.png")
    reader = open_media(tmp_path, limits=MediaLimits(max_frames=3))
    assert reader.info.num_frames == 3
    assert any("only the first 3" in note for note in reader.info.notes)
    assert len(reader.read_all()) == 3


# ----------------------------------------------------------------------------------------------
# Videos
# ----------------------------------------------------------------------------------------------


VIDEO_CASES = [
    ("clip.mp4", "h264"),
    ("clip.mov", "h264"),
    ("clip.mkv", "h264"),
    ("clip.webm", "libvpx-vp9"),
    ("clip.avi", "mjpeg"),
]


@pytest.mark.parametrize(("name", "codec"), VIDEO_CASES)
def test_video_containers_frames_fps_and_timestamps(tmp_path, name, codec, clips):
    codec = clips.h264_codec() if codec == "h264" else codec
    if not clips.encoder_available(codec):
        pytest.skip(f"no {codec} encoder in this FFmpeg build")
    source = clips.moving_frames(12)
    path = clips.write_video(tmp_path / name, source, codec=codec, fps=24)
    reader = open_media(path)
    info = reader.info
    assert (info.kind, info.num_frames, info.width, info.height) == ("video", 12, 160, 120)
    assert info.fps == pytest.approx(24.0)
    np.testing.assert_allclose(info.timestamps, np.arange(12) / 24, atol=1e-3)
    assert not any("variable frame rate" in note for note in info.notes)
    frames = reader.read_all()
    assert frames.shape == (12, 120, 160, 3) and frames.dtype == np.uint8
    for decoded, original in zip(frames, source):
        assert mean_abs_error(decoded, original) < LOSSY_MEAN_ABS_ERROR


def test_gif_keeps_its_frame_durations(tmp_path, clips):
    source = clips.moving_frames(4, width=40, height=30)
    path = clips.write_gif(tmp_path / "anim.gif", source, durations_ms=[100, 100, 200, 100])
    reader = open_media(path)
    np.testing.assert_allclose(reader.info.timestamps, [0.0, 0.1, 0.2, 0.4], atol=1e-6)
    assert any("variable frame rate" in note for note in reader.info.notes)
    assert reader.read_all().shape == (4, 30, 40, 3)


def test_variable_frame_rate_keeps_true_times(tmp_path, clips):
    times_ms = [0, 33, 66, 150, 183, 400, 433, 466]
    path = clips.write_video(tmp_path / "vfr.mkv", clips.moving_frames(len(times_ms)), codec=clips.h264_codec(),
                             fps=30, pts_ms=times_ms)
    reader = open_media(path)
    np.testing.assert_allclose(reader.info.timestamps, np.asarray(times_ms) / 1000, atol=1e-6)
    note = next(note for note in reader.info.notes if "variable frame rate" in note)
    assert "33.0 to 217.0 ms" in note
    assert len(reader.read_all()) == len(times_ms)


def test_display_rotation_is_applied(tmp_path, clips):
    import av

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(clips.h264_codec(), rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.set_display_rotation(90)  # counterclockwise, as a phone held sideways records
        image = np.zeros((120, 160, 3), np.uint8)
        image[:20, :20] = 255
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    reader = open_media(path)
    assert (reader.info.width, reader.info.height) == (120, 160)
    frame = reader.read_all()[0].mean(-1)
    assert frame[-15:, :15].mean() > 200 and frame[:15, :15].mean() < 50  # top-left went to bottom-left


def test_iteration_is_lazy_and_matches_read_all(tmp_path, clips):
    path = clips.write_video(tmp_path / "clip.mkv", clips.moving_frames(10), codec=clips.h264_codec())
    reader = open_media(path)
    iterator = iter(reader)
    index, first = next(iterator)
    assert index == 0 and first.shape == (120, 160, 3)
    iterator.close()  # stopping early is fine and changes nothing
    assert reader.info.num_frames == 10
    indices = [i for i, _ in reader]
    assert indices == list(range(10))
    all_frames = reader.read_all()
    assert np.array_equal(all_frames[0], first)
    with pytest.raises(MediaError, match="iterate"):
        reader.read_all(max_bytes=1000)


def test_one_frame_video_is_valid(tmp_path, clips):
    path = clips.write_video(tmp_path / "single.mp4", clips.moving_frames(1), codec=clips.h264_codec())
    reader = open_media(path)
    assert reader.info.num_frames == 1
    assert reader.read_all().shape == (1, 120, 160, 3)


def test_zero_frame_video_is_refused(tmp_path, clips):
    path = clips.write_video(tmp_path / "nothing.mkv", clips.moving_frames(0), codec=clips.h264_codec())
    with pytest.raises(MediaError, match="zero"):
        open_media(path)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "movie.mp4"
    path.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(MediaError) as excinfo:
        open_media(path)
    assert "movie.mp4 is a text file" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_random_bytes_named_webm(tmp_path):
    path = tmp_path / "noise.webm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="not a video FFmpeg can read"):
        open_media(path)


@pytest.mark.parametrize(("name", "codec"), [("cut.mkv", "h264"), ("cut.webm", "libvpx-vp9"), ("cut.avi", "mjpeg")])
def test_truncated_video_keeps_frames_before_the_cut(tmp_path, name, codec, clips):
    codec = clips.h264_codec() if codec == "h264" else codec
    if not clips.encoder_available(codec):
        pytest.skip(f"no {codec} encoder in this FFmpeg build")
    full = clips.write_video(tmp_path / f"full_{name}", clips.moving_frames(30), codec=codec)
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    reader = open_media(cut)
    kept = reader.info.num_frames
    assert 3 <= kept < 30
    note = next(note for note in reader.info.notes if "truncated or corrupt" in note)
    assert f"{kept} frame(s)" in note
    frames = reader.read_all()
    assert len(frames) == kept == reader.info.num_frames
    source = clips.moving_frames(30)
    assert mean_abs_error(frames[kept // 2], source[kept // 2]) < LOSSY_MEAN_ABS_ERROR


def test_truncated_mp4_without_index_says_so(tmp_path, clips):
    # Written without faststart: the index (moov atom) is at the end of the file, so the cut loses it.
    full = clips.write_video(tmp_path / "full.mp4", clips.moving_frames(30), codec=clips.h264_codec())
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="moov"):
        open_media(cut)


def test_truncated_faststart_mp4_keeps_frames_before_the_cut(tmp_path, clips):
    full = clips.write_video(tmp_path / "full.mp4", clips.moving_frames(30), codec=clips.h264_codec(),
                       container_options={"movflags": "+faststart"})  # index at the start
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    reader = open_media(cut)
    assert 1 <= reader.info.num_frames < 30
    assert any("declares 30 frames" in note for note in reader.info.notes)
    assert len(reader.read_all()) == reader.info.num_frames


# ----------------------------------------------------------------------------------------------
# Limits
# ----------------------------------------------------------------------------------------------


def test_video_frame_and_duration_limits_truncate_with_notes(tmp_path, clips):
    path = clips.write_video(tmp_path / "long.mkv", clips.moving_frames(40), codec=clips.h264_codec(), fps=20)
    by_frames = open_media(path, limits=MediaLimits(max_frames=10))
    assert by_frames.info.num_frames == 10 and len(by_frames.read_all()) == 10
    assert any("only the first 10" in note and "max_frames=10" in note for note in by_frames.info.notes)

    by_time = open_media(path, limits=MediaLimits(max_duration_s=0.5))
    assert by_time.info.num_frames == 11  # t = 0.00 .. 0.50 s at 20 fps
    assert by_time.info.timestamps[-1] == pytest.approx(0.5, abs=1e-3)
    assert any("max_duration_s=0.5" in note for note in by_time.info.notes)


def test_video_resolution_limit_downscales(tmp_path, clips):
    frames = clips.moving_frames(3, width=320, height=240)
    path = clips.write_video(tmp_path / "wide.mkv", frames, codec=clips.h264_codec())
    reader = open_media(path, limits=MediaLimits(max_side=160))
    assert (reader.info.width, reader.info.height) == (160, 120)
    assert reader.scale == pytest.approx(0.5) and reader.source_size == (320, 240)
    assert reader.read_all().shape == (3, 120, 160, 3)
    assert any("downscaled" in note for note in reader.info.notes)


def test_file_size_limit_refuses(tmp_path, clips):
    path = clips.write_video(tmp_path / "clip.mkv", clips.moving_frames(5), codec=clips.h264_codec())
    with pytest.raises(MediaError, match="max_file_bytes"):
        open_media(path, limits=MediaLimits(max_file_bytes=100))


def test_limits_validate_their_values():
    with pytest.raises(ValueError, match="max_frames"):
        MediaLimits(max_frames=0)
    with pytest.raises(ValueError, match="max_duration_s"):
        MediaLimits(max_duration_s=-1.0)
    assert MediaLimits(max_frames=None, max_side=None).max_frames is None
