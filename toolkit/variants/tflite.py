"""A TFLite twin of the mel graph, written as a flatbuffer with the `tflite` package's schema builders.

No TensorFlow: the blocks explain recognized (toolkit.variants.anatomy) give the weights, read from the ONNX
model (DFT kernels or the STFT op's window, mel filterbank) and the log and top-dB parameters (floor,
multiplier, offset, top), laid out as 9 TFLite ops that LiteRT runs:

  RESHAPE [1, S] -> [1, 1, S, 1]; STRIDED_SLICE to the window's nonzero taps; CONV_2D with the real and
  imaginary kernels of the used bins stacked (one Conv, stride = hop); MUL x*x; BATCH_MATMUL with the mel
  filterbank stacked twice (re^2 @ M + im^2 @ M = |X|^2 @ M); MAXIMUM floor; LOG; MUL by the dB scale;
  REDUCE_MAX over everything, SUB top_db, MAXIMUM (the clamp).

That is the chain it emits: stft -> power spectrum -> mel filterbank -> log [-> top-dB clamp over the whole
tensor], one input and one output [1, 1, frames, bands]; any other chain is NotApplicable with the chain named.

The input is [1, samples] with shape signature [1, -1]: written for 1760 samples (openWakeWord's chunk),
other lengths (e.g. 16000) run after `interpreter.resize_tensor_input(0, [1, n])` + `allocate_tensors()`.
The tensor feeding the floor is named MEL_TENSOR (toolkit.engines) so the accuracy stage can read the mel
energies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from toolkit.engines import MEL_TENSOR, Feed, run_onnx, run_tflite
from toolkit.errors import ToolkitError
from toolkit.files import write_bytes_atomic
from toolkit.load import feed_plan
from toolkit.variants.anatomy import Anatomy, Located, NotApplicable, anatomy, nonzero_range
from toolkit.variants.rewrites import VERIFY_TOLERANCE_DB, verify_inputs

# the package re-exports each table's class under the module's name; the builder functions live in the modules
(
    BatchMatMulOptions,
    Buffer,
    Conv2DOptions,
    Model,
    MulOptions,
    Operator,
    OperatorCode,
    ReducerOptions,
    ReshapeOptions,
    StridedSliceOptions,
    SubGraph,
    SubOptions,
    Tensor,
) = (
    importlib.import_module(f"tflite.{table}")
    for table in (
        "BatchMatMulOptions",
        "Buffer",
        "Conv2DOptions",
        "Model",
        "MulOptions",
        "Operator",
        "OperatorCode",
        "ReducerOptions",
        "ReshapeOptions",
        "StridedSliceOptions",
        "SubGraph",
        "SubOptions",
        "Tensor",
    )
)

NOMINAL_SAMPLES = 1760
SCHEMA_VERSION = 3
_DTYPES = {np.dtype(np.float32): TensorType.FLOAT32, np.dtype(np.int32): TensorType.INT32}

OptionsWriter = Callable[[flatbuffers.Builder], int]


@dataclass
class _Graph:
    """Tensors and ops of one subgraph, in the order they are added; serialized by _serialize."""

    tensors: list[tuple[str, list[int], list[int], np.ndarray | None]] = field(default_factory=list)
    ops: list[tuple[int, list[int], list[int], int, OptionsWriter | None]] = field(default_factory=list)

    def constant(self, name: str, value: np.ndarray) -> int:
        """A tensor with data; returns its index."""
        shape = list(value.shape)
        self.tensors.append((name, shape, shape, np.ascontiguousarray(value)))
        return len(self.tensors) - 1

    def activation(self, name: str, shape: list[int], signature: list[int]) -> int:
        """A float32 tensor computed at run time; `signature` marks the dims that vary (-1)."""
        self.tensors.append((name, shape, signature, None))
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], output: int, options: tuple[int, OptionsWriter | None]) -> int:
        """Append one builtin op; returns its output tensor index for chaining."""
        self.ops.append((code, inputs, [output], options[0], options[1]))
        return output


def _options(start: Callable, adders: Sequence[tuple[Callable, object]], end: Callable) -> OptionsWriter:
    """A writer for one options table: start, each (adder, value), end."""

    def write(builder: flatbuffers.Builder) -> int:
        start(builder)
        for adder, value in adders:
            adder(builder, value)
        return end(builder)

    return write


_NO_OPTIONS = (BuiltinOptions.NONE, None)
_MUL = (
    BuiltinOptions.MulOptions,
    _options(MulOptions.MulOptionsStart, [], MulOptions.MulOptionsEnd),
)
_SUB = (
    BuiltinOptions.SubOptions,
    _options(SubOptions.SubOptionsStart, [], SubOptions.SubOptionsEnd),
)


def _conv_options(hop: int) -> tuple[int, OptionsWriter]:
    """VALID 1 x taps convolution striding `hop` along the samples (width) axis."""
    adders = [
        (Conv2DOptions.Conv2DOptionsAddPadding, Padding.VALID),
        (Conv2DOptions.Conv2DOptionsAddStrideW, hop),
        (Conv2DOptions.Conv2DOptionsAddStrideH, 1),
        (Conv2DOptions.Conv2DOptionsAddDilationWFactor, 1),
        (Conv2DOptions.Conv2DOptionsAddDilationHFactor, 1),
    ]
    return BuiltinOptions.Conv2DOptions, _options(
        Conv2DOptions.Conv2DOptionsStart, adders, Conv2DOptions.Conv2DOptionsEnd
    )


def _slice_options(end_open: bool) -> tuple[int, OptionsWriter]:
    """Masks so only the samples axis (2) is sliced; with `end_open` it runs to the end of the audio."""
    others = 0b1011
    adders = [
        (StridedSliceOptions.StridedSliceOptionsAddBeginMask, others),
        (StridedSliceOptions.StridedSliceOptionsAddEndMask, others | (0b0100 if end_open else 0)),
    ]
    return BuiltinOptions.StridedSliceOptions, _options(
        StridedSliceOptions.StridedSliceOptionsStart, adders, StridedSliceOptions.StridedSliceOptionsEnd
    )


_RESHAPE = (
    BuiltinOptions.ReshapeOptions,
    _options(ReshapeOptions.ReshapeOptionsStart, [], ReshapeOptions.ReshapeOptionsEnd),
)
_BATCH_MATMUL = (
    BuiltinOptions.BatchMatMulOptions,
    _options(BatchMatMulOptions.BatchMatMulOptionsStart, [], BatchMatMulOptions.BatchMatMulOptionsEnd),
)
_REDUCE_ALL = (
    BuiltinOptions.ReducerOptions,
    _options(
        ReducerOptions.ReducerOptionsStart,
        [(ReducerOptions.ReducerOptionsAddKeepDims, False)],
        ReducerOptions.ReducerOptionsEnd,
    ),
)


def _i32(values: Sequence[int]) -> np.ndarray:
    """An int32 1-D tensor value (TFLite's index type)."""
    return np.array(values, dtype=np.int32)


def _f32(value: float) -> np.ndarray:
    """A float32 scalar tensor value."""
    return np.array(value, dtype=np.float32)


# the block kinds the writer emits, in order; the clamp is optional
CHAIN = ("stft", "power spectrum", "mel filterbank", "log")
CLAMP = "top-db clamp"


def _chain(parts: Anatomy) -> tuple[Located, Located | None]:
    """The log block and the clamp (or None), once the chain is the one the writer emits."""
    kinds = [located.kind for located in parts.blocks]
    if kinds not in (list(CHAIN), [*CHAIN, CLAMP]):
        raise NotApplicable(f"the TFLite writer emits {' -> '.join(CHAIN)} [-> {CLAMP}]; explain read: "
                            f"{parts.chain()}")
    log = parts.blocks[len(CHAIN) - 1]
    if log.block.data["floor"] != "max" or log.block.data["upper"] is not None:
        raise NotApplicable("the TFLite writer floors the mel energies by max(x, amin); this log block's floor is "
                            f"{log.block.data['floor'] or 'absent'}")
    clamp = parts.find(CLAMP)
    if clamp is not None and clamp.block.param("scope") != "the whole tensor":
        raise NotApplicable(f"the TFLite writer clamps under one maximum over the whole tensor; this clamp's is "
                            f"over {clamp.block.param('scope')}")
    return log, clamp


def mel_graph(model: onnx.ModelProto) -> _Graph:
    """The TFLite ops computing what `model` computes, from the blocks explain found and `model`'s own weights."""
    parts = anatomy(model)
    log, clamp = _chain(parts)
    dft, mel = parts.require_dft(), parts.require_mel()
    if dft.pads != (0, 0):
        raise NotApplicable(f"the DFT Conv pads the samples by {list(dft.pads)}; the TFLite writer does not")
    taps = dft.n_fft
    tap_lo, tap_hi = nonzero_range(np.concatenate([dft.cos, dft.sin]), axis=1)
    bin_lo, bin_hi = nonzero_range(mel.weight, axis=0)
    kernels = np.concatenate([dft.cos[bin_lo:bin_hi], dft.sin[bin_lo:bin_hi]])
    filters = kernels[:, None, tap_lo:tap_hi, None]  # OHWI [2 bins, 1, taps, 1]
    mel_stacked = np.concatenate([mel.weight[bin_lo:bin_hi]] * 2).astype(np.float32)
    frames = (NOMINAL_SAMPLES - taps) // dft.hop + 1
    channels, n_mels = filters.shape[0], mel.weight.shape[1]

    g = _Graph()
    audio = g.activation("audio", [1, NOMINAL_SAMPLES], [1, -1])
    x = g.op(
        BuiltinOperator.RESHAPE,
        [audio, g.constant("nhwc_shape", _i32([1, 1, -1, 1]))],
        g.activation("audio_nhwc", [1, 1, NOMINAL_SAMPLES, 1], [1, 1, -1, 1]),
        _RESHAPE,
    )
    x = g.op(
        BuiltinOperator.STRIDED_SLICE,
        [
            x,
            g.constant("taps_begin", _i32([0, 0, tap_lo, 0])),
            g.constant("taps_end", _i32([0, 0, tap_hi - taps, 0])),
            g.constant("taps_stride", _i32([1, 1, 1, 1])),
        ],
        g.activation("audio_taps", [1, 1, NOMINAL_SAMPLES - taps + tap_hi - tap_lo, 1], [1, 1, -1, 1]),
        _slice_options(end_open=tap_hi == taps),
    )
    spectrum_shape = ([1, 1, frames, channels], [1, 1, -1, channels])
    x = g.op(
        BuiltinOperator.CONV_2D,
        [
            x,
            g.constant("dft_kernels", filters.astype(np.float32)),
            g.constant("dft_bias", np.zeros(channels, np.float32)),
        ],
        g.activation("dft", *spectrum_shape),
        _conv_options(dft.hop),
    )
    x = g.op(BuiltinOperator.MUL, [x, x], g.activation("dft_squared", *spectrum_shape), _MUL)
    mel_shape = ([1, 1, frames, n_mels], [1, 1, -1, n_mels])
    x = g.op(
        BuiltinOperator.BATCH_MATMUL,
        [x, g.constant("mel_filterbank_twice", mel_stacked)],
        g.activation(MEL_TENSOR, *mel_shape),
        _BATCH_MATMUL,
    )
    top = None if clamp is None else float(clamp.block.param("top"))
    return _db_ops(g, x, log.block.data, top, mel_shape)


def _db_ops(g: _Graph, mel: int, log: dict, top: float | None, shape: tuple[list[int], list[int]]) -> _Graph:
    """Floor, log, multiplier and offset (explain's log block), then the top clamp against one max over the whole
    output."""
    x = g.op(
        BuiltinOperator.MAXIMUM,
        [mel, g.constant("amin", _f32(log["amin"]))],
        g.activation("floored", *shape),
        _NO_OPTIONS,
    )
    x = g.op(BuiltinOperator.LOG, [x], g.activation("ln", *shape), _NO_OPTIONS)
    x = g.op(
        BuiltinOperator.MUL, [x, g.constant("db_scale", _f32(log["multiplier"]))], g.activation("db_scaled", *shape),
        _MUL,
    )
    if log["offset"] != 0.0:
        x = g.op(BuiltinOperator.SUB, [x, g.constant("db_ref", _f32(-log["offset"]))], g.activation("db", *shape),
                 _SUB)
    if top is not None:
        axes = g.constant("all_axes", _i32(range(len(shape[0]))))
        peak = g.op(BuiltinOperator.REDUCE_MAX, [x, axes], g.activation("db_max", [], []), _REDUCE_ALL)
        floor = g.op(
            BuiltinOperator.SUB, [peak, g.constant("top_db", _f32(top))], g.activation("db_floor", [], []), _SUB
        )
        x = g.op(BuiltinOperator.MAXIMUM, [x, floor], g.activation("clamped", *shape), _NO_OPTIONS)
    return g


def _vector(builder: flatbuffers.Builder, start: Callable, values: Sequence[int], prepend: Callable) -> int:
    """A flatbuffer vector of ints or offsets (built back to front, as flatbuffers wants)."""
    start(builder, len(values))
    for value in reversed(values):
        prepend(value)
    return builder.EndVector()


def _serialize(g: _Graph) -> bytes:
    """The graph as a TFLite model flatbuffer: buffer 0 empty, one buffer per constant."""
    builder = flatbuffers.Builder(1 << 20)
    codes = sorted({op[0] for op in g.ops})
    Buffer.BufferStart(builder)
    buffers = [Buffer.BufferEnd(builder)]  # buffer 0: the empty sentinel every tensor without data points at
    tensors = []
    for name, shape, signature, data in g.tensors:
        buffer_index = 0
        if data is not None:
            data_vector = builder.CreateByteVector(data.tobytes())
            Buffer.BufferStart(builder)
            Buffer.BufferAddData(builder, data_vector)
            buffers.append(Buffer.BufferEnd(builder))
            buffer_index = len(buffers) - 1
        name_offset = builder.CreateString(name)
        shape_offset = _vector(builder, Tensor.TensorStartShapeVector, shape, builder.PrependInt32)
        signature_offset = _vector(builder, Tensor.TensorStartShapeSignatureVector, signature, builder.PrependInt32)
        Tensor.TensorStart(builder)
        Tensor.TensorAddShape(builder, shape_offset)
        Tensor.TensorAddShapeSignature(builder, signature_offset)
        Tensor.TensorAddType(builder, _DTYPES[np.dtype(np.float32) if data is None else data.dtype])
        Tensor.TensorAddBuffer(builder, buffer_index)
        Tensor.TensorAddName(builder, name_offset)
        tensors.append(Tensor.TensorEnd(builder))
    operators = []
    for code, inputs, outputs, options_type, write_options in g.ops:
        options = write_options(builder) if write_options else None
        inputs_offset = _vector(builder, Operator.OperatorStartInputsVector, inputs, builder.PrependInt32)
        outputs_offset = _vector(builder, Operator.OperatorStartOutputsVector, outputs, builder.PrependInt32)
        Operator.OperatorStart(builder)
        Operator.OperatorAddOpcodeIndex(builder, codes.index(code))
        Operator.OperatorAddInputs(builder, inputs_offset)
        Operator.OperatorAddOutputs(builder, outputs_offset)
        Operator.OperatorAddBuiltinOptionsType(builder, options_type)
        if options is not None:
            Operator.OperatorAddBuiltinOptions(builder, options)
        operators.append(Operator.OperatorEnd(builder))
    code_offsets = []
    for code in codes:
        OperatorCode.OperatorCodeStart(builder)
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        OperatorCode.OperatorCodeAddBuiltinCode(builder, code)
        OperatorCode.OperatorCodeAddVersion(builder, 1)
        code_offsets.append(OperatorCode.OperatorCodeEnd(builder))
    subgraph_tensors = _vector(builder, SubGraph.SubGraphStartTensorsVector, tensors, builder.PrependUOffsetTRelative)
    subgraph_inputs = _vector(builder, SubGraph.SubGraphStartInputsVector, [0], builder.PrependInt32)
    subgraph_outputs = _vector(builder, SubGraph.SubGraphStartOutputsVector, g.ops[-1][2], builder.PrependInt32)
    subgraph_ops = _vector(builder, SubGraph.SubGraphStartOperatorsVector, operators, builder.PrependUOffsetTRelative)
    subgraph_name = builder.CreateString("main")
    SubGraph.SubGraphStart(builder)
    SubGraph.SubGraphAddTensors(builder, subgraph_tensors)
    SubGraph.SubGraphAddInputs(builder, subgraph_inputs)
    SubGraph.SubGraphAddOutputs(builder, subgraph_outputs)
    SubGraph.SubGraphAddOperators(builder, subgraph_ops)
    SubGraph.SubGraphAddName(builder, subgraph_name)
    subgraph = SubGraph.SubGraphEnd(builder)
    model_codes = _vector(builder, Model.ModelStartOperatorCodesVector, code_offsets, builder.PrependUOffsetTRelative)
    model_subgraphs = _vector(builder, Model.ModelStartSubgraphsVector, [subgraph], builder.PrependUOffsetTRelative)
    model_buffers = _vector(builder, Model.ModelStartBuffersVector, buffers, builder.PrependUOffsetTRelative)
    description = builder.CreateString("meltoolkit log-mel front end")
    Model.ModelStart(builder)
    Model.ModelAddVersion(builder, SCHEMA_VERSION)
    Model.ModelAddOperatorCodes(builder, model_codes)
    Model.ModelAddSubgraphs(builder, model_subgraphs)
    Model.ModelAddBuffers(builder, model_buffers)
    Model.ModelAddDescription(builder, description)
    builder.Finish(Model.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check_one_in_one_out(model: onnx.ModelProto) -> None:
    """The writer emits the audio -> features chain: a graph fed more than the audio, or with other outputs
    (lengths), has no TFLite twin here."""
    fed = [entry.name for entry in feed_plan(model) if entry.role != "initializer"]
    if len(fed) > 1 or len(model.graph.output) > 1:
        raise NotApplicable(f"the TFLite writer emits one input (the audio) and one output; this graph takes "
                            f"{', '.join(fed)} and outputs {', '.join(o.name for o in model.graph.output)}")


def to_tflite(model: onnx.ModelProto) -> bytes:
    """The TFLite flatbuffer for `model`, checked in LiteRT against onnxruntime on random audio."""
    _check_one_in_one_out(model)
    data = _serialize(mel_graph(model))
    for audio in verify_inputs():
        ours, theirs = run_tflite(data, audio)[0], run_onnx(model, audio)[0]
        if ours.shape != theirs.shape:
            raise NotApplicable(f"the TFLite writer outputs [1, 1, frames, bands] {list(ours.shape)}; this graph "
                                f"outputs {list(theirs.shape)}")
        difference = float(np.max(np.abs(ours - theirs)))
        if not difference <= VERIFY_TOLERANCE_DB:
            raise ToolkitError(
                f"the TFLite model differs from the ONNX model by {difference:.3g} dB on random audio "
                f"(limit {VERIFY_TOLERANCE_DB} dB): refused"
            )
    return data


def build_tflite(model: onnx.ModelProto, path: Path, calibration: Sequence[Feed]) -> None:
    """Write the verified TFLite twin of `model` to `path`."""
    del calibration  # float32 throughout: no data needed
    write_bytes_atomic(path, to_tflite(model))
