"""User box files: CSV and JSON layouts, ids, gaps, clipping, scaling and precise error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.boxes import BoxFileError, load_boxes, parse_box_file
from pipeline.tracking import TrackingParams

CLIP = {"num_frames": 10, "width": 640, "height": 480}


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_header_and_ids(tmp_path):
    path = write(tmp_path, "boxes.csv", "frame,x,y,w,h,id\n0,10,20,30,40,7\n1,12,20,30,40,7\n0,300,50,60,120,2\n")
    result = load_boxes(path, **CLIP)
    assert [t.track_id for t in result.tracks] == [2, 7]  # the user's ids are kept
    seven = result.tracks[1]
    assert seven.frames.tolist() == [0, 1]
    np.testing.assert_allclose(seven.boxes, [[10, 20, 30, 40], [12, 20, 30, 40]])
    assert seven.scores.tolist() == [1.0, 1.0]
    assert result.notes == ()


def test_csv_without_header_comments_and_any_column_order(tmp_path):
    plain = write(tmp_path, "plain.csv", "# my boxes\n\n0, 10, 20, 30, 40\n1, 11, 20, 30, 40\n")
    rows = parse_box_file(plain)
    assert [(r.where, r.frame, r.box, r.track_id) for r in rows] == [
        ("line 3", 0, (10.0, 20.0, 30.0, 40.0), None), ("line 4", 1, (11.0, 20.0, 30.0, 40.0), None)]
    reordered = write(tmp_path, "reordered.csv", "id,h,w,y,x,frame\n3,40,30,20,10,5\n")
    (row,) = parse_box_file(reordered)
    assert (row.frame, row.box, row.track_id) == (5, (10.0, 20.0, 30.0, 40.0), 3)


def test_json_layouts(tmp_path):
    objects = [{"frame": 0, "x": 1, "y": 2, "w": 3, "h": 4}, {"frame": 1, "x": 2, "y": 2, "w": 3, "h": 4}]
    for name, payload in [("list.json", objects), ("wrapped.json", {"boxes": objects}),
                          ("rows.json", [[0, 1, 2, 3, 4], [1, 2, 2, 3, 4]])]:
        rows = parse_box_file(write(tmp_path, name, json.dumps(payload)))
        assert [r.frame for r in rows] == [0, 1]
        assert rows[1].box == (2.0, 2.0, 3.0, 4.0)


def test_boxes_without_ids_are_tracked_as_given(tmp_path):
    lines = ["frame,x,y,w,h"]
    for t in range(6):
        lines.append(f"{t},{100 + 5 * t},50,40,100")
        lines.append(f"{t},{400 - 5 * t},60,40,100")
    result = load_boxes(write(tmp_path, "b.csv", "\n".join(lines)), **CLIP)
    assert len(result.tracks) == 2
    first = result.tracks[0]
    assert first.frames.tolist() == list(range(6))
    np.testing.assert_allclose(first.boxes[:, 0], [100 + 5 * t for t in range(6)])  # not smoothed


def test_id_gaps_are_interpolated_or_split(tmp_path):
    rows = [{"frame": f, "x": 10 * f, "y": 0, "w": 20, "h": 50, "id": 1} for f in (0, 1, 4, 9)]
    path = write(tmp_path, "gaps.json", json.dumps(rows))
    result = load_boxes(path, num_frames=12, width=640, height=480, params=TrackingParams(max_missed_frames=3))
    assert [(t.track_id, t.frames.tolist()) for t in result.tracks] == [(1, [0, 1, 2, 3, 4]), (2, [9])]
    np.testing.assert_allclose(result.tracks[0].boxes[2], [20, 0, 20, 50])
    assert result.tracks[0].scores.tolist() == [1, 1, 0, 0, 1]
    assert any("id 1" in note and "track 2" in note for note in result.notes)
    assert any("2 frame(s)" in note and "interpolated" in note for note in result.notes)


def test_clipping_dropping_and_scaling_with_notes(tmp_path):
    text = "0,-10,-10,50,50\n1,700,10,20,20\n12,10,10,20,20\n2,100,100,40,40\n"
    result = load_boxes(write(tmp_path, "edge.csv", text), **CLIP)
    notes = " | ".join(result.notes)
    assert "clipped" in notes and "line 1" in notes
    assert "entirely outside" in notes and "line 2" in notes
    assert "past the clip" in notes and "line 3" in notes
    boxes = {int(t.frames[0]): t.boxes[0] for t in result.tracks}
    np.testing.assert_allclose(boxes[0], [0, 0, 40, 40])

    scaled = load_boxes(write(tmp_path, "big.csv", "0,200,100,80,200\n"), **CLIP, scale=0.5)
    np.testing.assert_allclose(scaled.tracks[0].boxes[0], [100, 50, 40, 100])


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.csv", "frame,x,y,w,h\n0,1,2,3,4\n1,1,abc,3,4\n", r"bad\.csv line 3: field 'y' is 'abc', not a number"),
    ("short.csv", "0,1,2,3\n", r"short\.csv line 1: 4 field\(s\)"),
    ("neg.csv", "0,1,2,-3,4\n", r"line 1: field 'w' is -3; width and height must be > 0"),
    ("frac.csv", "1.5,1,2,3,4\n", r"line 1: field 'frame' is '1.5'; expected a whole number"),
    ("negframe.csv", "-1,1,2,3,4\n", r"line 1: field 'frame' is -1"),
    ("header.csv", "frame,x,y,width,height\n0,1,2,3,4\n", r"line 1: the header lacks column\(s\) w, h"),
    ("nan.csv", "0,1,2,nan,4\n", r"field 'w' is 'nan'; expected a finite number"),
    ("mixed.csv", "0,1,2,3,4,1\n1,1,2,3,4\n", r"line 2: field 'id' is missing; give an id on every row or on none"),
    ("dup.csv", "0,1,2,3,4,1\n0,5,2,3,4,1\n", r"line 2: id 1 already has a box in frame 0 \(line 1\)"),
    ("empty.csv", "# nothing\n", r"holds no boxes"),
    ("missing.json", '[{"frame": 0, "x": 1, "y": 2, "w": 3}]', r"missing\.json item 0: field 'h' is missing"),
    ("wrong.json", '{"detections": []}', r'under "boxes"'),
    ("broken.json", '[{"frame": 0,', r"broken\.json is not valid JSON \(line 1"),
    ("strings.json", '["0,1,2,3,4"]', r"item 0: expected an object"),
    ("boxes.txt", "0,1,2,3,4", r"must be \.json or \.csv"),
])
def test_bad_files_name_line_and_field(tmp_path, name, text, message):
    with pytest.raises(BoxFileError, match=message) as excinfo:
        load_boxes(write(tmp_path, name, text), **CLIP)
    assert "\n" not in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_no_box_inside_the_clip(tmp_path):
    with pytest.raises(BoxFileError, match="none of its 1 box"):
        load_boxes(write(tmp_path, "far.csv", "50,1,2,3,4\n"), **CLIP)
