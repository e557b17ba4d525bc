"""The one loader: refusals, external-data containment, size cap and cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import TensorProto, numpy_helper

from sphinxext_qdq.analysis import loader
from sphinxext_qdq.analysis.loader import (
    DEFAULT_MAX_BYTES,
    QdqModelError,
    clear_cache,
    load_qdq_model,
    parse_count,
)
from sphinxext_qdq.onnxio import proto as onnx_proto


@pytest.fixture(autouse=True)
def _empty_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return factories.save(factories.qdq_pair_model(0.05, 128), tmp_path / "pair.onnx")


def refusal(path: os.PathLike[str] | str, **kwargs) -> QdqModelError:
    with pytest.raises(QdqModelError) as caught:
        load_qdq_model(path, **kwargs)
    error = caught.value
    assert str(error) == f"{os.fspath(path)}: {error.reason}"  # the path as the caller gave it
    assert error.reason and error.reason in str(error)
    assert "Traceback" not in str(error) and "google.protobuf" not in str(error)
    assert error.__cause__ is None  # no protobuf traceback chained to it
    assert error.__context__ is None or error.__suppress_context__
    return error


# -- refusals ----------------------------------------------------------------------------------
def test_missing_path(tmp_path: Path) -> None:
    assert "no such file" in refusal(tmp_path / "absent.onnx").reason


def test_directory(tmp_path: Path) -> None:
    assert "directory" in refusal(tmp_path).reason


def test_unusable_paths(tmp_path: Path) -> None:
    with pytest.raises(QdqModelError):
        load_qdq_model(str(tmp_path / "nul\0byte.onnx"))
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop)
    with pytest.raises(QdqModelError):
        load_qdq_model(loop)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert "empty" in refusal(empty).reason


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    data = factories.tiny_resnet_qdq().SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: int(len(data) * fraction)])
    assert "not an ONNX model" in refusal(truncated).reason


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(seed).bytes(4096))
    assert "not an ONNX model" in refusal(noise).reason


@pytest.mark.parametrize("content", [
    b"hello, this is text and not a model\n",
    b"\x89PNG\r\n\x1a\n" + bytes(64),
    b'{"graph": {"node": []}}',
    b"\x08\x07",  # a valid protobuf (ir_version = 7) without a graph
])
def test_files_that_are_not_onnx(tmp_path: Path, content: bytes) -> None:
    other = tmp_path / "other.onnx"
    other.write_bytes(content)
    assert "not an ONNX model" in refusal(other).reason


def test_a_tensor_proto_is_not_a_model(tmp_path: Path) -> None:
    tensor = numpy_helper.from_array(np.arange(100, dtype=np.float32), "t")
    path = tmp_path / "tensor.onnx"
    path.write_bytes(tensor.SerializeToString())
    assert "not an ONNX model" in refusal(path).reason


def test_size_cap(model_file: Path) -> None:
    assert DEFAULT_MAX_BYTES == 512 * 1024 * 1024
    size = model_file.stat().st_size
    error = refusal(model_file, max_bytes=size - 1)
    assert f"{size} bytes" in error.reason and f"{size - 1}" in error.reason
    assert load_qdq_model(model_file, max_bytes=size).param("scale").values == (
        float(np.float32(0.05)),)


# -- the cache ---------------------------------------------------------------------------------
def test_one_parse_for_many_callers(model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = parse_count()
    first = load_qdq_model(model_file)
    monkeypatch.chdir(model_file.parent)
    for same in (str(model_file), model_file.name, Path(".") / model_file.name):
        assert load_qdq_model(same) is first
    assert parse_count() == before + 1
    assert loader.stats()["hits"] >= 3


def test_symlinked_path_shares_the_cache(model_file: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.onnx"
    link.symlink_to(model_file)
    before = parse_count()
    assert load_qdq_model(link) is load_qdq_model(model_file)
    assert parse_count() == before + 1


def test_clear_cache_parses_again(model_file: Path) -> None:
    before = parse_count()
    first = load_qdq_model(model_file)
    clear_cache()
    second = load_qdq_model(model_file)
    assert second == first and second is not first
    assert parse_count() == before + 2


def test_changed_content_with_same_size_and_mtime_is_parsed_again(model_file: Path) -> None:
    first = load_qdq_model(model_file)
    stat = model_file.stat()
    changed = factories.qdq_pair_model(0.25, 128)  # same structure, same byte count
    data = changed.SerializeToString()
    assert len(data) == stat.st_size
    model_file.write_bytes(data)
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_file.stat().st_mtime_ns == stat.st_mtime_ns
    before = parse_count()
    second = load_qdq_model(model_file)
    assert parse_count() == before + 1
    assert second.param("scale").values == (0.25,)
    assert first.param("scale").values == (float(np.float32(0.05)),)
    assert second.content_hash != first.content_hash


def test_a_settled_file_is_known_by_its_status_and_never_hashed(
        model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file last changed before the settling time is cached by its status alone: no
    SHA-256 when it is loaded, none for a cache hit, none when its status changes."""
    monkeypatch.setattr(loader, "_SETTLED_NS", 0)  # as if written long ago
    hashes, parses = loader.hash_count(), parse_count()
    first = load_qdq_model(model_file)
    assert load_qdq_model(model_file) is first
    assert (loader.hash_count(), parse_count()) == (hashes, parses + 1)
    assert first.content_hash == ""
    assert first.file_status[:2] == (model_file.stat().st_size, model_file.stat().st_mtime_ns)
    model_file.write_bytes(model_file.read_bytes())  # a new status: parsed again, unhashed
    second = load_qdq_model(model_file)
    assert second is not first and second == first
    assert (loader.hash_count(), parse_count()) == (hashes, parses + 2)


def test_a_file_changed_a_moment_ago_is_hashed_and_kept_while_its_content_is(
        model_file: Path) -> None:
    """Within the settling time a coarse clock could hide a rewrite: the content is hashed,
    and a cache entry is kept (not parsed again) while the hash is the same."""
    hashes, parses = loader.hash_count(), parse_count()
    first = load_qdq_model(model_file)
    assert loader.hash_count() == hashes + 1
    model_file.write_bytes(model_file.read_bytes())  # same content, new status
    assert load_qdq_model(model_file) is first
    assert (loader.hash_count(), parse_count()) == (hashes + 2, parses + 1)


def test_large_files_are_hashed_while_parsing(tmp_path: Path) -> None:
    weight = np.random.default_rng(0).integers(-128, 127, (2048, 2048), dtype=np.int8)
    proto = factories.weight_dq_model(weight=weight.reshape(2048, 2048, 1, 1),
                                      bias=np.zeros(2048, np.int32))
    path = factories.save(proto, tmp_path / "large.onnx")
    assert path.stat().st_size > loader._THREADED_HASH_BYTES
    before = parse_count()
    first = load_qdq_model(path)
    assert load_qdq_model(path) is first and parse_count() == before + 1
    import hashlib

    assert first.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.param_bytes == sum(numpy_helper.to_array(t).nbytes
                                    for t in proto.graph.initializer)


def _parsed_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the buffers protobuf is given from now on."""
    sizes: list[int] = []
    real = onnx_proto.parse_model_bytes
    monkeypatch.setattr(onnx_proto, "parse_model_bytes",
                        lambda data, path="<bytes>": sizes.append(len(data)) or real(data, path))
    return sizes


def test_large_files_are_parsed_without_their_weights(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Above LEAN_PARSE_BYTES the weights never reach protobuf; a scale too large to stay
    inline is read back from the file itself; the analysis is the same as a full parse's."""
    weight = np.random.default_rng(0).integers(-128, 127, (512, 512, 1, 1), dtype=np.int8)
    proto = factories.weight_dq_model(weight=weight, bias=np.zeros(512, np.int32))
    blocked = factories.blocked_int4_model(rows=128, cols=4096, block_size=16)  # 128 KiB scale
    path = factories.save(proto, tmp_path / "large.onnx")
    blocked_path = factories.save(blocked, tmp_path / "blocked.onnx")
    whole = {p: load_qdq_model(p) for p in (path, blocked_path)}
    clear_cache()
    monkeypatch.setattr(onnx_proto, "LEAN_PARSE_BYTES", 0)
    sizes = _parsed_sizes(monkeypatch)
    lean = {p: load_qdq_model(p) for p in (path, blocked_path)}
    assert sizes[0] < path.stat().st_size - weight.nbytes
    assert sizes[1] < blocked_path.stat().st_size - 128 * 256 * 4
    assert lean == whole
    scale = lean[blocked_path].param("w_scale")
    assert scale.shape == (128, 256) and scale.values[:3] == (1 / 64, 2 / 64, 3 / 64)
    assert lean[blocked_path].data_files == ()  # the model's own file is no extra dependency


def test_small_files_are_parsed_whole(model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _parsed_sizes(monkeypatch)
    load_qdq_model(model_file)
    assert model_file.stat().st_size < onnx_proto.LEAN_PARSE_BYTES
    assert sizes == [model_file.stat().st_size]


def test_ten_thousand_node_chain_through_the_loader(tmp_path: Path) -> None:
    path = factories.save(factories.chain_model(10_000), tmp_path / "chain.onnx")
    model = load_qdq_model(path)
    assert len(model.nodes) == 10_000
    assert model.nodes[-1].key == "relu9999"


# -- external data -----------------------------------------------------------------------------
SCALES = (0.5, 0.25, 0.125, 2.0)


def test_external_scale_inside_the_folder_is_read(tmp_path: Path) -> None:
    path = factories.external_scale_model(tmp_path, "data/scale.bin", offset=12)
    model = load_qdq_model(path)
    scale = model.param("scale")
    stored = np.frombuffer((tmp_path / "data/scale.bin").read_bytes()[12:], np.float32)
    assert scale.values == tuple(stored.tolist()) == SCALES
    assert scale.shape == (4,) and model.diagnostics == ()


def test_external_data_never_reaches_numpy_helper_unvalidated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = numpy_helper.to_array

    def guarded(tensor: onnx.TensorProto, base_dir: str = "") -> np.ndarray:
        assert tensor.data_location != TensorProto.EXTERNAL, "external tensor not inlined"
        return real(tensor, base_dir)

    monkeypatch.setattr(numpy_helper, "to_array", guarded)
    path = factories.external_scale_model(tmp_path, "scale.bin")
    assert load_qdq_model(path).param("scale").values == SCALES


def external_refusal(path: Path) -> str:
    model = load_qdq_model(path)
    assert model.param("scale").values is None
    [diagnostic] = model.diagnostics
    assert (diagnostic.subtype, diagnostic.node) == ("external_data", "q")
    return diagnostic.message


def test_dotdot_location_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    path = factories.external_scale_model(folder, "../secret.bin")
    assert (tmp_path / "secret.bin").exists()  # the data is there, but outside
    assert "'..'" in external_refusal(path)


def test_nested_dotdot_location_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    path = factories.external_scale_model(folder, "sub/../../secret.bin")
    assert "'..'" in external_refusal(path)


def test_absolute_location_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "scale.bin"
    path = factories.external_scale_model(tmp_path / "model", str(outside))
    assert outside.exists()
    assert "absolute" in external_refusal(path)


def test_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    np.asarray(SCALES, np.float32).tofile(outside / "scale.bin")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "data").symlink_to(outside, target_is_directory=True)
    path = factories.external_scale_model(folder, "data/scale.bin", write_data=False)
    assert "leaves the model's folder" in external_refusal(path)


def test_symlinked_file_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "scale.bin"
    np.asarray(SCALES, np.float32).tofile(outside)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "scale.bin").symlink_to(outside)
    path = factories.external_scale_model(folder, "scale.bin", write_data=False)
    assert "leaves the model's folder" in external_refusal(path)


def test_symlink_staying_inside_the_folder_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    path = factories.external_scale_model(folder, "real/scale.bin")
    (folder / "alias").symlink_to(folder / "real", target_is_directory=True)
    model = onnx.load(str(path), load_external_data=False)
    entry = next(e for e in model.graph.initializer[0].external_data if e.key == "location")
    entry.value = "alias/scale.bin"
    factories.save(model, path)
    assert load_qdq_model(path).param("scale").values == SCALES


def test_missing_external_file(tmp_path: Path) -> None:
    path = factories.external_scale_model(tmp_path, "absent.bin", write_data=False)
    assert "does not exist" in external_refusal(path)


def test_external_range_beyond_the_file(tmp_path: Path) -> None:
    path = factories.external_scale_model(tmp_path, "scale.bin")
    (tmp_path / "scale.bin").write_bytes(b"\0" * 8)  # shorter than 4 floats
    assert "beyond the end" in external_refusal(path)


def test_external_length_that_does_not_match_the_shape(tmp_path: Path) -> None:
    path = factories.external_scale_model(tmp_path, "scale.bin")
    model = onnx.load(str(path), load_external_data=False)
    entry = next(e for e in model.graph.initializer[0].external_data if e.key == "length")
    entry.value = "8"
    factories.save(model, path)
    assert "does not match" in external_refusal(path)


def with_external_entry(path: Path, key: str, value: str) -> Path:
    """The model at *path* with its scale's external-data entry *key* set to *value*."""
    model = onnx.load(str(path), load_external_data=False)
    entry = next(e for e in model.graph.initializer[0].external_data if e.key == key)
    entry.value = value
    return factories.save(model, path)


@pytest.mark.parametrize("location", ["C:", "C:scale.bin", "c:/scale.bin", "C:\\scale.bin",
                                      "z:scale.b1n", "\\\\server\\share\\scale.bin",
                                      "\\scale.bin"])
def test_windows_drive_and_backslash_locations_are_absolute(tmp_path: Path,
                                                            location: str) -> None:
    """Refused as absolute on any system, before anything is looked up on the disk."""
    path = factories.external_scale_model(tmp_path / "model", "scale.bin")
    with_external_entry(path, "location", location)
    assert "is an absolute path" in external_refusal(path)


@pytest.mark.parametrize("location", ["s", "1:scale.bin", "ab:scale.bin", "-:scale.bin"])
def test_names_that_only_look_like_drives_are_read(tmp_path: Path, location: str) -> None:
    path = factories.external_scale_model(tmp_path / "model", location)
    assert load_qdq_model(path).param("scale").values == SCALES


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("offset", "-1", "external data offset -1 is negative"),
    ("length", "-16", "external data length -16 is negative"),
    ("offset", "-x", "external data offset '-x' is not an integer"),
    ("offset", "1.5", "external data offset '1.5' is not an integer"),
])
def test_offset_and_length_must_be_non_negative_integers(tmp_path: Path, key: str, value: str,
                                                         reason: str) -> None:
    path = with_external_entry(factories.external_scale_model(tmp_path, "scale.bin"), key,
                               value)
    assert reason in external_refusal(path)


def test_offset_zero_reads_from_the_start(tmp_path: Path) -> None:
    path = with_external_entry(factories.external_scale_model(tmp_path, "scale.bin"), "offset",
                               "0")
    assert load_qdq_model(path).param("scale").values == SCALES


def test_the_data_files_read_are_recorded_and_refused_ones_are_not(tmp_path: Path) -> None:
    """What a page depends on: the external file a scale was read from, by its location
    entry (wherever that entry sits among offset and length)."""
    inside = factories.external_scale_model(tmp_path / "a", "data/scale.bin")
    model = onnx.load(str(inside), load_external_data=False)
    scale = model.graph.initializer[0]
    entries = [(e.key, e.value) for e in scale.external_data]
    del scale.external_data[:]
    for key, value in sorted(entries, key=lambda entry: entry[0] != "offset"):  # offset first
        entry = scale.external_data.add()
        entry.key, entry.value = key, value
    factories.save(model, inside)
    assert load_qdq_model(inside).data_files == (str((tmp_path / "a/data/scale.bin").resolve()),)
    outside = factories.external_scale_model(tmp_path / "b", "../a/data/scale.bin")
    assert load_qdq_model(outside).data_files == ()


def test_external_weights_we_do_not_need_are_never_read(tmp_path: Path) -> None:
    """A weight pointing outside the folder is not a scale: it is neither read nor refused."""
    proto = factories.weight_dq_model()
    weight = next(t for t in proto.graph.initializer if t.name == "w_int8")
    size = len(weight.raw_data) or numpy_helper.to_array(weight).nbytes
    weight.ClearField("raw_data")
    weight.ClearField("int32_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "/nonexistent/weights.bin"), ("length", str(size))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    path = factories.save(proto, tmp_path / "model.onnx")
    model = load_qdq_model(path)
    assert model.diagnostics == ()
    assert model.qdq("w_dq").quant_dtype == "INT8"
    assert model.param_bytes == sum(numpy_helper.to_array(t).nbytes
                                    for t in proto.graph.initializer if t.name != "w_int8") + size


def test_read_tensor_array_without_a_folder_refuses_external_data() -> None:
    tensor = onnx.TensorProto(name="s", data_type=TensorProto.FLOAT, dims=[1],
                              data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "scale.bin"
    with pytest.raises(QdqModelError, match="no model folder"):
        onnx_proto.read_tensor_array(tensor, None)


# -- garbage collection ------------------------------------------------------------------


@pytest.mark.parametrize("collecting", [True, False])
def test_analysis_leaves_no_cyclic_garbage_and_the_collector_as_it_was(
        tmp_path: Path, collecting: bool) -> None:
    import gc

    path = factories.save(factories.tiny_resnet_qdq(), tmp_path / "tiny.onnx")
    loader.load_qdq_model(path)  # imports and first-use caches of onnx and numpy
    loader.clear_cache()
    gc.collect()
    gc.disable()
    try:
        if collecting:
            gc.enable()
        model = loader.load_qdq_model(path)
        assert gc.isenabled() is collecting  # paused during the analysis only
        gc.disable()
        assert model.nodes
        loader.clear_cache()
        del model
        assert gc.collect() == 0  # the working state went with reference counting
    finally:
        gc.enable()
