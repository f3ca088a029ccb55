"""Loading a model safely: the user's file or the built-in default, every failure a one-line error.

A model file comes from someone else, so nothing in it is trusted. In order, before any weight is read:

1. the path is a regular file, not empty, at most `Limits.file_bytes` (protobuf cannot parse more than 2 GiB);
2. its top-level protobuf fields are walked by hand, so a truncated copy ("the file ends inside field 'graph'")
   and a file of another format (TFLite, zip, HDF5, pickle, text) are told apart and named;
3. the IR version and every opset are ones the installed onnx knows (a newer opset is refused, not guessed);
4. the graph is complete and acyclic (the analyzer's own checks, `toolkit.graphs`, are reused);
5. THE AUDIO INPUT RULE (it lives here): the first graph input that is not an initializer is the audio, a float
   tensor (float32, float16, bfloat16 or double) of rank 2, [batch, samples]; a declared fixed dim is >= 1.
   The stages that feed audio apply it (variants, the accuracy signals, the profiling runner feed [1, N]);
   `analyze` and `explain` take any graph (`Limits.audio_input` off) and bind dims by name. `feed_plan` builds on
   the same choice what every other input is fed (lengths, initializers, zeros, --input values), once;
6. every tensor's data matches its declared shape; external data stays inside the model's folder (absolute
   paths, `..` and symlinks out of it are refused), its file exists and holds the bytes the shape needs.

Only then are external weights read, through this module's confined reader (never onnx's, whose base folder
defaults to the working directory). `Limits.weights_in_memory` bounds what is read; initializers larger than
`Limits.shape_only_over` can be left on disk: the analyzer then counts from their shapes alone (dense counts
need no values; effective counts of their readers become upper bounds, and say so); `unread_weights` names them.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import uses_external_data

from toolkit.errors import ToolkitError
from toolkit.graphs import check_inputs_provided, graph_order
from toolkit.melgraph import default_model

PROTOBUF_LIMIT = 2**31 - 1  # bytes: protobuf refuses to parse a bigger message
AUDIO_DTYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
AUDIO_DIMS = ("batch", "samples")  # the audio's two dims, by the rule
SUB_BYTE_BITS: dict[int, int] = {TensorProto.INT4: 4, TensorProto.UINT4: 4, TensorProto.FLOAT4E2M1: 4,
                                  TensorProto.INT2: 2, TensorProto.UINT2: 2}
STANDARD_DOMAIN_ALIASES = {"ai.onnx": ""}
COPY_AGAIN = "copy or export the file again"

# Magic bytes of files people mistake for ONNX models: (offset, bytes, what the file is).
OTHER_FORMATS: list[tuple[int, bytes, str]] = [
    (4, b"TFL3", "a TFLite flatbuffer (run it with LiteRT)"),
    (0, b"PK\x03\x04", "a zip archive (a PyTorch .pt checkpoint? export it with torch.onnx.export)"),
    (0, b"\x89HDF", "an HDF5 file (a Keras .h5 model? convert it with tf2onnx)"),
    (0, b"\x80", "a Python pickle (a PyTorch or scikit-learn object? export it to ONNX)"),
    (0, b"{", "a JSON text"),
    (0, b"<", "an XML or HTML text"),
]


@dataclass(frozen=True)
class Limits:
    """How much of a model file is read: the file itself, external weights in memory, weights left on disk."""

    file_bytes: int = PROTOBUF_LIMIT
    weights_in_memory: int = 1 << 30
    shape_only_over: int | None = None  # initializers with more external bytes than this stay on disk
    audio_input: bool = True  # apply the audio input rule (point 5); off for commands that take any graph


DEFAULT_LIMITS = Limits()
# The analyzer needs the values of small tensors (shapes, exponents, 0/1 weights for the effective counts) but
# only the shapes of big ones: the mel graph's largest weight is 526 KB, so 16 MiB leaves every real one in.
ANALYSIS_LIMITS = Limits(shape_only_over=16 << 20, audio_input=False)
ANY_GRAPH = Limits(audio_input=False)


def load_model(path: str | os.PathLike[str] | None = None, *, limits: Limits = DEFAULT_LIMITS) -> onnx.ModelProto:
    """The checked model at `path`, or the built-in openWakeWord-style mel graph when no path is given."""
    if path is None:
        return default_model()
    file = Path(path)
    data = _read_model_bytes(file, limits)
    model = _parse(file, data)
    check_versions(model, file)
    check_graph(model, file)
    if limits.audio_input:
        check_audio_input(model, file)
    external = check_tensors(model, file)
    _read_external(external, file, limits)
    return model


# ---------------------------------------------------------------- the file and its bytes


def _read_model_bytes(file: Path, limits: Limits) -> bytes:
    """The file's bytes, after refusing what is not a readable regular file of an acceptable size."""
    try:
        exists, regular = file.exists(), file.is_file()
        size = file.stat().st_size if regular else 0
    except (OSError, ValueError) as error:  # a name the OS refuses (too long, a NUL byte, no permission)
        raise ToolkitError(f"cannot inspect the model path '{file}': {error}") from None
    if not exists:
        raise ToolkitError(f"model file '{file}' does not exist; give the path of an .onnx file")
    if not regular:
        raise ToolkitError(f"'{file}' is not a regular file (a folder, device or pipe); give an .onnx file")
    if size == 0:
        raise ToolkitError(f"'{file}' is empty (0 bytes); the model was not written completely, copy it again")
    if size > limits.file_bytes:
        raise ToolkitError(f"'{file}' is {size:,} bytes, over the {limits.file_bytes:,}-byte limit for one ONNX "
                           "file; save the weights as external data (onnx.save(..., save_as_external_data=True))")
    try:
        return file.read_bytes()
    except OSError as error:
        raise ToolkitError(f"cannot read '{file}': {error.strerror or error}") from None


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """A protobuf varint at `pos`: (value, position after it), or None when the data ends inside it."""
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _wire_type(field: FieldDescriptor) -> int:
    """The wire type a ModelProto field must have: 0 for its int64 fields, 2 for strings and messages."""
    return 0 if field.type == field.TYPE_INT64 else 2


def _other_format(data: bytes) -> str | None:
    return next((what for offset, magic, what in OTHER_FORMATS if data[offset:offset + len(magic)] == magic), None)


def _wire_problem(data: bytes) -> str | None:
    """Why `data` is not a whole ModelProto at the top level, or None: walks the fields without decoding them."""
    fields = onnx.ModelProto.DESCRIPTOR.fields_by_number
    pos = 0
    while pos < len(data):
        start = pos
        tag = _varint(data, pos)
        field = fields.get(tag[0] >> 3) if tag else None
        if (tag is None or field is None or tag[0] & 7 != _wire_type(field)
                or (start == 0 and field.name != "ir_version")):
            if start == 0:
                what = _other_format(data) or "not a protobuf ModelProto"
                return f"not an ONNX model: it is {what}; give an .onnx file"
            return f"not an ONNX model: byte {start:,} holds no ModelProto field (corrupt, or another format); " \
                "give an .onnx file"
        pos = tag[1]
        if field.type == field.TYPE_INT64:
            read = _varint(data, pos)
            if read is None:
                return f"truncated: the file ends inside field '{field.name}'; {COPY_AGAIN}"
            pos = read[1]
            continue
        length = _varint(data, pos)
        if length is None or length[1] + length[0] > len(data):
            need = f" needs {length[0]:,} bytes, {len(data) - length[1]:,} are left" if length else " is cut"
            return f"truncated: field '{field.name}' at byte {start:,}{need}; {COPY_AGAIN}"
        pos = length[1] + length[0]
    return None


def _parse(file: Path, data: bytes) -> onnx.ModelProto:
    """The ModelProto in `data`, external data not loaded; a bad file is named for what is wrong with it."""
    problem = _wire_problem(data)
    if problem:
        raise ToolkitError(f"'{file}' is {problem}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or a RecursionError from absurd nesting
        raise ToolkitError(f"'{file}' is a corrupt ONNX model: its protobuf does not parse "
                           f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                           "export it again") from None
    return model


# ---------------------------------------------------------------- versions, graph, the audio input


def known_opsets() -> dict[str, int]:
    """The newest opset of each domain the installed onnx has schemas for."""
    newest: dict[str, int] = defaultdict(int)
    for schema in onnx.defs.get_all_schemas_with_history():
        newest[schema.domain] = max(newest[schema.domain], schema.since_version)
    newest[""] = onnx.defs.onnx_opset_version()
    return dict(newest)


def check_versions(model: onnx.ModelProto, file: Path) -> None:
    """An IR version and opsets the installed onnx knows; custom domains pass (their ops are not counted)."""
    if not model.ir_version or model.ir_version > onnx.IR_VERSION:
        raise ToolkitError(f"'{file}' declares IR version {model.ir_version}; the installed onnx "
                           f"{onnx.__version__} reads 1 to {onnx.IR_VERSION}: export with an older IR version")
    if not model.opset_import:
        raise ToolkitError(f"'{file}' declares no opset (truncated or incomplete); export it again")
    known = known_opsets()
    for opset in model.opset_import:
        domain = STANDARD_DOMAIN_ALIASES.get(opset.domain, opset.domain)
        if domain in known and not 1 <= opset.version <= known[domain]:
            raise ToolkitError(f"'{file}' uses opset {opset.version} of domain '{opset.domain or 'ai.onnx'}'; the "
                               f"installed onnx {onnx.__version__} knows 1 to {known[domain]}: export with "
                               f"opset_version={known[domain]} or lower, or upgrade onnx")


def check_graph(model: onnx.ModelProto, file: Path) -> None:
    """Nodes, an input and an output; every node input provided; no cycle (the analyzer's own checks)."""
    graph = model.graph
    for part, present in (("nodes", graph.node), ("inputs", graph.input), ("outputs", graph.output)):
        if not present:
            raise ToolkitError(f"'{file}' has a graph with no {part}; check that it is a complete ONNX model")
    available = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer} \
        | {v.name for v in graph.input}
    try:
        check_inputs_provided(graph, available)
        graph_order(graph, available)
    except ToolkitError as error:
        raise ToolkitError(f"'{file}': {error}") from None


def audio_input(model: onnx.ModelProto) -> onnx.ValueInfoProto | None:
    """THE choice of the audio input (module docstring, point 5): the first graph input not an initializer."""
    initialized = {t.name for t in model.graph.initializer}
    return next((v for v in model.graph.input if v.name not in initialized), None)


def check_audio_input(model: onnx.ModelProto, file: Path | str = "the model") -> None:
    """The audio input rule (module docstring, point 5): float [batch, samples]."""
    audio = audio_input(model)
    if audio is None:
        raise ToolkitError(f"'{file}' has no graph input that is not an initializer; the audio input is missing")
    kind = audio.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ToolkitError(f"'{file}': input '{audio.name}' is a {kind or 'typeless value'}, not a tensor; the "
                           "audio input must be a float tensor [batch, samples]")
    tensor_type = audio.type.tensor_type
    if tensor_type.elem_type not in AUDIO_DTYPES:
        raise ToolkitError(f"'{file}': input '{audio.name}' is {_type_name(tensor_type.elem_type)}; the audio "
                           "input must be float (float32, float16, bfloat16 or double) [batch, samples]: cast int16 "
                           "audio inside or before the model")
    rank = len(tensor_type.shape.dim) if tensor_type.HasField("shape") else None
    if rank != 2:
        raise ToolkitError(f"'{file}': input '{audio.name}' has rank {'unknown' if rank is None else rank}; the "
                           "audio input must have rank 2, [batch, samples] (add a Reshape/Unsqueeze in front; a "
                           "model after the front end, such as an embedding or a wake-word classifier, is profiled "
                           "as a stage: profile --pipeline openwakeword --stage NAME=FILE)")
    for position, dim in zip(AUDIO_DIMS, tensor_type.shape.dim, strict=True):
        if dim.HasField("dim_value") and dim.dim_value < 1:
            raise ToolkitError(f"'{file}': input '{audio.name}' declares {position} = {dim.dim_value}; a fixed "
                               "dim must be at least 1 (or leave it symbolic)")


def _type_name(elem_type: int) -> str:
    """TensorProto's name of an element type, or its number when onnx does not know it."""
    known = elem_type in TensorProto.DataType.values()
    return TensorProto.DataType.Name(elem_type) if known else str(elem_type)


# ---------------------------------------------------------------- what every input is fed


@dataclass(frozen=True)
class InputFeed:
    """What one graph input is fed on every run, and why: every stage and the bench runner read this plan.

    `shape` holds ints and the names "batch" and "samples", the audio's dims at run time; `value` is the
    constant fed (broadcast to the shape) for roles "zeros" and "given", None for the others.
    """

    name: str
    role: str  # "audio" | "lengths" | "rate" | "initializer" (not fed: the engine uses it) | "zeros" | "given"
    dtype: str  # numpy's name for the element type
    shape: tuple[int | str, ...]
    value: float | list[float] | None
    why: str

    def to_json(self) -> dict[str, object]:
        """Plain JSON-ready fields: bundle.json's "inputs" entries (runner.feed_arrays reads them)."""
        return {**asdict(self), "shape": list(self.shape)}


FeedPlan = tuple[InputFeed, ...]
# an input holding the sample rate, by its name (Silero VAD's `sr`): analyze and the feed plan both use it
RATE_NAME = re.compile(r"(^|_)(sr|sample_?rate|rate)($|_)", re.IGNORECASE)
SIGNAL_RATE = 16000  # the rate the signal set and the workloads are made at
FULL_SCALE = 32768.0  # int16 full scale: the signals are int16 samples, fed at the graph's full scale
# what full scale is in the units a graph takes (--audio-scale): openWakeWord's graphs take int16 values as
# floats, most ASR front ends (onnx-asr, torchaudio and librosa exports) take [-1, 1]
AUDIO_SCALES = {"int16": FULL_SCALE, "unit": 1.0}


def int16_clip(samples: np.ndarray, full_scale: float = FULL_SCALE) -> np.ndarray:
    """Samples at int16 scale rounded and clipped to int16 values, then fed at `full_scale` (AUDIO_SCALES), as
    float32 [1, samples]: the same samples for every graph, in the units the graph takes."""
    int16 = np.clip(np.round(samples), -32768, 32767)
    return (int16 * (full_scale / FULL_SCALE)).astype(np.float32)[None, :]
FEED_EXAMPLE = "give a number or comma-separated numbers, e.g. --input mask=0 or --input gains=1,0.5"


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    """Declared dims: a number, a symbolic name, or None when neither is given."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in shape.dim]


def _element_dtype(value: onnx.ValueInfoProto) -> np.dtype:
    """numpy's dtype of a tensor input; an input that is not a numeric or bool tensor cannot be fed."""
    kind = value.type.WhichOneof("value")
    elem_type = value.type.tensor_type.elem_type if kind == "tensor_type" else None
    dtype = helper.tensor_dtype_to_np_dtype(elem_type) if elem_type else None
    if dtype is None or dtype.kind not in "biuf":
        what = _type_name(elem_type) if elem_type else kind or "typeless value"
        raise ToolkitError(f"graph input '{value.name}' is a {what}; the toolkit feeds numeric tensors only: "
                           "give the model a numeric input (or make it an initializer)")
    return dtype


def _resolve(dims: list[int | str | None], audio_dims: dict[str, str]) -> tuple[int | str, ...]:
    """Dims named like the audio's become "batch" / "samples"; other unknown ones are 1."""
    return tuple(dim if isinstance(dim, int) else audio_dims.get(dim or "", 1) for dim in dims)


def _is_lengths(value: onnx.ValueInfoProto, dtype: np.dtype, shape: tuple[int | str, ...], batch: int | str) -> bool:
    """An integer input of shape [batch] or [batch, 1], or any numeric input named like *len*."""
    return (dtype.kind in "iu" and shape in ((batch,), (batch, 1))) or "len" in value.name.lower()


def _given_value(name: str, text: str, dtype: np.dtype, shape: tuple[int | str, ...]) -> float | list[float]:
    """`--input NAME=VALUE`'s value as a number or a list, checked against the input's type and shape."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise ToolkitError(f"--input {name}={text}: {text!r} is not a number; {FEED_EXAMPLE}") from None
    if dtype.kind in "biu" and not all(n.is_integer() for n in numbers):
        raise ToolkitError(f"--input {name}={text}: input '{name}' is {dtype.name}, so its values must be whole "
                           "numbers")
    nominal = tuple(1 if isinstance(d, str) else d for d in shape)
    try:
        np.broadcast_to(np.asarray(numbers if len(numbers) > 1 else numbers[0]), nominal)
    except ValueError:
        raise ToolkitError(f"--input {name}={text}: {len(numbers)} values do not fit the input's shape "
                           f"{list(shape)}; give one value (fed to every element) or one per element of the "
                           "last dim") from None
    return numbers if len(numbers) > 1 else numbers[0]


def _feed(value: onnx.ValueInfoProto, audio: onnx.ValueInfoProto, given: dict[str, str],
          initialized: set[str]) -> InputFeed:
    """The plan entry of one input that is not the audio: given, its initializer, lengths, or zeros."""
    if value.name in initialized and value.name not in given:
        return InputFeed(value.name, "initializer", "", (), None,
                         "an initializer of the same name: the engine uses its value when the input is not fed")
    dtype = _element_dtype(value)
    audio_dims = dict(zip(_dims(audio), AUDIO_DIMS, strict=True))
    shape = _resolve(_dims(value), {dim: role for dim, role in audio_dims.items() if isinstance(dim, str)})
    if value.name in given:
        text = given[value.name]
        return InputFeed(value.name, "given", dtype.name, shape, _given_value(value.name, text, dtype, shape),
                         f"--input {value.name}={text}")
    batch = _dims(audio)[0]
    if _is_lengths(value, dtype, shape, batch if isinstance(batch, int) else "batch"):
        return InputFeed(value.name, "lengths", dtype.name, shape, None,
                         "the number of samples fed: an integer input of shape [batch] or [batch, 1], or named "
                         "like *len*")
    if dtype.kind in "iu" and RATE_NAME.search(value.name):
        return InputFeed(value.name, "rate", dtype.name, shape, float(SIGNAL_RATE),
                         f"a sample rate (an integer input named like sr / sample_rate): {SIGNAL_RATE}, the rate of "
                         "the signals and workloads; set it with --input NAME=VALUE")
    return InputFeed(value.name, "zeros", dtype.name, shape, 0.0,
                     "no value known: zeros of its declared shape (dims of the audio's names follow the audio, "
                     "other unknown dims are 1); set it with --input NAME=VALUE")


def parse_inputs(pairs: Sequence[str]) -> dict[str, str]:
    """`--input NAME=VALUE` arguments as {NAME: VALUE}; the values are checked by feed_plan."""
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name or not text:
            raise ToolkitError(f"--input {pair}: expected NAME=VALUE; {FEED_EXAMPLE}")
        given[name] = text
    return given


def feed_plan(model: onnx.ModelProto, given: Mapping[str, str] | None = None) -> FeedPlan:
    """What every graph input is fed, decided once: the audio (the rule above) from the signals, a lengths input
    the number of samples, others their initializer, `given` (--input NAME=VALUE) or zeros."""
    audio = audio_input(model)
    if audio is None:
        raise ToolkitError("the model has no graph input that is not an initializer; the audio input is missing")
    if len(_dims(audio)) != len(AUDIO_DIMS):
        raise ToolkitError(f"the audio input '{audio.name}' has rank {len(_dims(audio))}; the toolkit feeds audio as "
                           "[batch, samples]: give the model a 2-D audio input")
    given = dict(given or {})
    names = [value.name for value in model.graph.input]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ToolkitError(f"--input {unknown[0]}=...: the graph has no input {unknown[0]!r}; its inputs are "
                           f"{', '.join(names)}")
    if audio.name in given:
        raise ToolkitError(f"--input {audio.name}=...: {audio.name!r} is the audio input, fed from the signal set "
                           "and the workloads; give values for the other inputs only")
    initialized = {t.name for t in model.graph.initializer}
    dtype = helper.tensor_dtype_to_np_dtype(audio.type.tensor_type.elem_type).name
    plan = [InputFeed(audio.name, "audio", dtype, AUDIO_DIMS, None,
                      "the audio: the first graph input that is not an initializer, fed each signal and workload "
                      "as [batch, samples]")]
    plan += [_feed(value, audio, given, initialized) for value in model.graph.input if value.name != audio.name]
    return tuple(plan)


def lengths_inputs(model: onnx.ModelProto) -> set[str]:
    """The inputs the feed plan treats as the audio's lengths, so that analyze gives them the samples too; none
    where the graph cannot be fed (its plan refuses it)."""
    try:
        return {feed.name for feed in feed_plan(model) if feed.role == "lengths"}
    except ToolkitError:
        return set()


# ---------------------------------------------------------------- tensors and external data


def _attribute_tensors(attr: onnx.AttributeProto) -> Iterator[TensorProto]:
    if attr.HasField("t"):
        yield attr.t
    yield from attr.tensors
    sparse = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
    for tensor in [*sparse, *attr.sparse_tensors]:
        yield from (tensor.values, tensor.indices)
    for graph in [attr.g] if attr.HasField("g") else []:
        yield from graph_tensors(graph)
    for graph in attr.graphs:
        yield from graph_tensors(graph)


def graph_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    """Every tensor a graph holds: initializers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            yield from _attribute_tensors(attr)


def model_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every tensor of the main graph and of the model's local functions."""
    yield from graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            for attr in node.attribute:
                yield from _attribute_tensors(attr)


def tensor_bytes(tensor: TensorProto) -> int:
    """Bytes the tensor's declared shape needs in raw form (sub-byte types packed)."""
    bits = SUB_BYTE_BITS.get(tensor.data_type)
    if bits is None:
        try:
            bits = 8 * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            raise ToolkitError(f"tensor '{tensor.name}' has data type {tensor.data_type}, which the toolkit "
                               "cannot size; use a standard ONNX type") from None
    return math.ceil(math.prod(tensor.dims) * bits / 8)


@dataclass(frozen=True)
class ExternalTensor:
    """One tensor whose data lies in another file, checked: the file is inside the model's folder."""

    tensor: TensorProto
    file: Path  # resolved, inside the model's folder
    offset: int
    length: int
    initializer: bool  # a top-level initializer: the only kind the limits may leave on disk


def _external_entry(tensor: TensorProto, key: str, default: str | None = None) -> str | None:
    return next((entry.value for entry in tensor.external_data if entry.key == key), default)


def _confined(tensor: TensorProto, folder: Path, model_file: Path) -> Path:
    """The resolved data file of `tensor`, refused when it lies outside `folder` (checked before any read)."""
    location = _external_entry(tensor, "location") or ""
    escape = f"tensor '{tensor.name}' of '{model_file}' keeps its data at '{location}', "
    if not location:
        raise ToolkitError(escape + "an empty location; export the model again")
    if Path(location).is_absolute() or ".." in Path(location).parts:
        raise ToolkitError(escape + f"outside the model's folder {folder}; refused: external data must be a "
                           "relative path inside the model's folder")
    resolved = (folder / location).resolve()
    if not resolved.is_relative_to(folder):
        raise ToolkitError(escape + f"which resolves to {resolved}, outside the model's folder {folder} (a "
                           "symlink?); refused: external data must be inside the model's folder")
    if not resolved.is_file():
        raise ToolkitError(escape + "which is not a file beside the model; copy the data file with the model")
    return resolved


def _external(tensor: TensorProto, folder: Path, model_file: Path, initializer: bool) -> ExternalTensor:
    """The checked location, offset and length of one external tensor."""
    data_file = _confined(tensor, folder, model_file)
    try:
        offset = int(_external_entry(tensor, "offset", "0") or "")
        length_text = _external_entry(tensor, "length")
        length = data_file.stat().st_size - offset if length_text is None else int(length_text)
    except ValueError:
        raise ToolkitError(f"tensor '{tensor.name}' of '{model_file}' has a non-integer external data offset "
                           "or length; export the model again") from None
    need = tensor_bytes(tensor)
    size = data_file.stat().st_size
    if offset < 0 or length != need or offset + length > size:
        raise ToolkitError(f"tensor '{tensor.name}' of '{model_file}' needs {need:,} bytes of external data at "
                           f"offset {offset:,} for {list(tensor.dims)}; '{data_file.name}' has {size:,} bytes and "
                           f"the model says {length:,}: the data file is truncated or belongs to another model")
    return ExternalTensor(tensor, data_file, offset, length, initializer)


def check_tensors(model: onnx.ModelProto, file: Path) -> list[ExternalTensor]:
    """Every in-file tensor's data matches its shape; every external one is confined and sized. Reads nothing."""
    folder = file.parent.resolve()
    external = []
    initializers = len(model.graph.initializer)
    for index, tensor in enumerate(model_tensors(model)):  # the top-level initializers come first
        if uses_external_data(tensor):
            external.append(_external(tensor, folder, file, index < initializers))
            continue
        try:
            numpy_helper.to_array(tensor)
        except Exception as error:  # numpy or onnx: a data length that does not fit the dims, an unknown type
            raise ToolkitError(f"tensor '{tensor.name}' of '{file}' does not hold the data its shape "
                               f"{list(tensor.dims)} needs ({type(error).__name__}); export the model again") \
                from None
    return external


def _read_external(external: list[ExternalTensor], file: Path, limits: Limits) -> None:
    """Read the external data into the tensors, except big initializers the limits leave on disk."""
    over = limits.shape_only_over
    to_read = [e for e in external if over is None or e.length <= over or not e.initializer]
    total = sum(e.length for e in to_read)
    if total > limits.weights_in_memory:
        raise ToolkitError(f"'{file}' has {total:,} bytes of external weights, over the {limits.weights_in_memory:,}"
                           "-byte limit this command loads into memory; `analyze` counts such a model from shapes")
    for entry in to_read:
        fd = os.open(entry.file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as stream:
            stream.seek(entry.offset)
            data = stream.read(entry.length)
        if len(data) != entry.length:
            raise ToolkitError(f"'{entry.file}' changed while being read; copy the model again")
        entry.tensor.raw_data = data
        entry.tensor.data_location = TensorProto.DEFAULT
        del entry.tensor.external_data[:]


# ---------------------------------------------------------------- what was left on disk


def unread_weights(model: onnx.ModelProto) -> dict[str, int]:
    """Initializers whose data the loader left on disk (name -> bytes): the analysis knows only their shapes."""
    return {t.name: tensor_bytes(t) for t in model.graph.initializer if uses_external_data(t)}
