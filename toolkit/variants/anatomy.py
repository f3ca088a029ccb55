"""The anatomy of a front end: explain's blocks located in the model, with the weights each one reads.

explain recognizes the chain once (toolkit.explain.recognize: framing, STFT op / Conv DFT, power, mel, log,
top-dB clamp... each block with the nodes it spans and its parameters); anatomy() puts those blocks back on the
model's own nodes and reads the weights from the model itself (DFT kernels or the STFT window, the mel
filterbank, the floor and dB scale), so rewrites, the TFLite writer, fp16, the accuracy stage and the report all
read one description. A variant that needs a block the chain lacks raises NotApplicable with one sentence
naming the chain as explain read it (its variant is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from toolkit.errors import ToolkitError
from toolkit.explain import recognize
from toolkit.explain.block import Block
from toolkit.explain.graph import GraphView, attribute
from toolkit.explain.stft import _basis as dft_basis  # the one basis explain fits kernels against


class NotApplicable(ToolkitError):
    """The graph lacks what a variant transforms (a block, an op, a single input): the variant is skipped."""


@dataclass(frozen=True)
class Located:
    """One of explain's blocks with its nodes in the model (graph order) and the tensors it hands on."""

    block: Block
    nodes: list[onnx.NodeProto]
    outputs: tuple[str, ...]  # values of the block read after it (or graph outputs), in node order

    @property
    def kind(self) -> str:
        return self.block.kind

    @property
    def label(self) -> str:
        """The kind, or for an unrecognized span its ops: "unrecognized[Slice -> Concat]"."""
        ops = " -> ".join(self.block.data.get("ops", []))
        return f"unrecognized[{ops}]" if self.kind == "unrecognized" else self.kind


@dataclass(frozen=True)
class Dft:
    """The transform block: a Conv pair ("pair"), one Conv of cos then sin rows ("stacked"), or the STFT op
    ("op"). `cos` / `sin` are the [bins, n_fft] kernels as the graph computes them (for the op: built from its
    window, the sine part signed as the op's imaginary output); `transform` are the nodes a rewrite replaces (the
    Conv(s) or STFT and the layout after them inside the block, `after`), keeping the path to `source`."""

    located: Located
    form: str
    source: str
    transform: list[onnx.NodeProto]
    after: list[onnx.NodeProto]
    convs: list[tuple[onnx.NodeProto, np.ndarray]]
    cos: np.ndarray
    sin: np.ndarray
    window: np.ndarray
    hop: int
    pads: tuple[int, int]
    gain: float
    shapes: dict[str, np.ndarray]  # output of each Reshape in `after` -> its constant target shape

    @property
    def bins(self) -> int:
        return self.cos.shape[0]

    @property
    def n_fft(self) -> int:
        return self.cos.shape[1]


@dataclass(frozen=True)
class Mel:
    """The mel block's MatMul: `weight` [bins, bands] as stored, read as input `operand` of `node`
    (1: x @ weight; 0: weight.T @ x); `output` is where the mel energies leave the block."""

    located: Located
    node: onnx.NodeProto
    operand: int
    weight: np.ndarray

    @property
    def output(self) -> str:
        return self.located.outputs[0]


@dataclass(frozen=True)
class Anatomy:
    """The chain of located blocks, with the transform, mel and log blocks read out (None when absent)."""

    blocks: list[Located]
    dft: Dft | None
    mel: Mel | None

    def find(self, kind: str) -> Located | None:
        """The first block of `kind`, if the chain has one."""
        return next((located for located in self.blocks if located.kind == kind), None)

    def chain(self) -> str:
        """The chain as explain read it, e.g. "padding -> stft -> power spectrum -> unrecognized[Scan]"."""
        return " -> ".join(located.label for located in self.blocks) or "no blocks"

    def require_dft(self) -> Dft:
        """The transform block, or NotApplicable naming the chain explain found instead (or the gain a rescaled
        DFT carries, as fp16-dft writes: such a transform is left as it is)."""
        if self.dft is None:
            raise NotApplicable(f"no STFT block (Conv DFT or STFT op) on the signal path; explain read: {self.chain()}")
        if self.dft.gain != 1.0:
            raise NotApplicable(f"the DFT carries an output gain of {self.dft.gain:g} (a rescaled DFT): left as it is")
        return self.dft

    def require_mel(self) -> Mel:
        """The mel block, or NotApplicable naming the chain."""
        if self.mel is None:
            raise NotApplicable(f"no mel filterbank block on the signal path; explain read: {self.chain()}")
        return self.mel


def _locate(model: onnx.ModelProto, view: GraphView, block: Block) -> Located:
    """The block on the model's own nodes (the view's are shape-inferred copies, in the same order)."""
    names = set(block.nodes)
    nodes = [node for seen, node in zip(view.nodes, model.graph.node, strict=True) if view.name(seen) in names]
    inside = {id(node) for node in nodes}
    graph_outputs = {output.name for output in model.graph.output}
    read_after = {name for node in model.graph.node if id(node) not in inside for name in node.input}
    outputs = tuple(name for node in nodes for name in node.output if name in read_after | graph_outputs)
    return Located(block, nodes, outputs)


def _conv_dft(located: Located, view: GraphView) -> Dft:
    """The Conv form: the kernels of the pair (cos first: its row 0 is the window) or of the one stacked Conv."""
    convs = [(node, view.constants[node.input[1]]) for node in located.nodes if node.op_type == "Conv"]
    first = convs[0][0]
    after = located.nodes[located.nodes.index(first) + 1:]
    after = [node for node in after if node.op_type != "Conv"]
    if len(convs) == 2:
        convs.sort(key=lambda pair: not np.any(pair[1][0]))
        cos, sin, form = convs[0][1][:, 0, :], convs[1][1][:, 0, :], "pair"
    else:
        kernel = convs[0][1][:, 0, :]
        bins = kernel.shape[0] // 2
        cos, sin, form = kernel[:bins], kernel[bins:], "stacked"
    pads = [int(p) for p in attribute(first, "pads") or [0, 0]]
    gain = next((float(p.value) for p in located.block.params if p.name == "output gain"), 1.0)
    shapes = {node.output[0]: view.constants[node.input[1]] for node in after if node.op_type == "Reshape"}
    return Dft(located, form, first.input[0], [node for node, _ in convs] + after, after if form == "stacked" else [],
               convs, cos, sin, np.asarray(cos[0], dtype=np.float64), int((attribute(first, "strides") or [1])[0]),
               (pads[0], pads[-1]), gain, shapes)


def _op_dft(located: Located, view: GraphView) -> Dft:
    """The STFT op: kernels built from its window (all ones when it has none) as the op's real and imaginary
    parts, window x cos and -window x sin."""
    node = next(node for node in located.nodes if node.op_type == "STFT")
    block = located.block
    n, bins = int(block.param("n_fft")), int(block.param("bins"))
    stored = view.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    window = np.ones(n) if stored is None else np.asarray(stored, dtype=np.float64).reshape(-1)
    cos_basis, sin_basis = dft_basis(bins, n)
    cos, sin = (window * cos_basis).astype(np.float32), (-window * sin_basis).astype(np.float32)
    return Dft(located, "op", node.input[0], [node], [], [], cos, sin, window, int(block.param("hop")), (0, 0), 1.0,
               {})


def _mel(located: Located, view: GraphView) -> Mel:
    """The MatMul of the mel block and its constant operand as [bins, bands]."""
    node = next(node for node in located.nodes if node.op_type == "MatMul")
    operand = 1 if view.const(node.input[1]) is not None else 0
    value = view.constants[node.input[operand]]
    return Mel(located, node, operand, value if operand == 1 else value.T)


# explain's stft block "form" -> how its kernels are read from the model
DFT_FORMS = {"conv": _conv_dft, "op": _op_dft}


def anatomy(model: onnx.ModelProto) -> Anatomy:
    """explain's blocks of `model` located on its nodes, with the transform and mel blocks' weights read out."""
    view, blocks, _ = recognize(model)
    located = [_locate(model, view, block) for block in blocks]
    stft = next((b for b in located if b.kind == "stft"), None)
    mel = next((b for b in located if b.kind == "mel filterbank"), None)
    reader = None if stft is None else DFT_FORMS.get(stft.block.data.get("form", ""))
    # a form no reader knows: no transform to rewrite
    dft = None if stft is None or reader is None else reader(stft, view)
    return Anatomy(located, dft, None if mel is None else _mel(mel, view))


def nonzero_range(weight: np.ndarray, axis: int) -> tuple[int, int]:
    """[lo, hi): the smallest index range along `axis` outside which `weight` is exactly zero."""
    other_axes = tuple(i for i in range(weight.ndim) if i != axis % weight.ndim)
    used = np.flatnonzero(np.any(weight != 0, axis=other_axes))
    if used.size == 0:
        raise NotApplicable("the weight is all zeros: there is no nonzero range to keep")
    return int(used[0]), int(used[-1]) + 1


def prune(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes and initializers no graph output depends on, and stale value_info shapes."""
    graph = model.graph
    needed = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
    del graph.value_info[:]
    return model
