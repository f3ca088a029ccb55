"""How much of ONNX the analyzer's shape rules get right, measured on onnx's own node test cases.

For every test case whose nodes all have a rule, the inferred output shapes must equal the shapes of the
expected outputs that onnx ships with the case. `python -m toolkit.analysis.coverage` prints the tally.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases
from onnx.backend.test.case.test_case import TestCase

from toolkit.analysis.ops import RULES
from toolkit.analysis.propagate import propagate
from toolkit.errors import ToolkitError


@dataclass
class Coverage:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # case -> why
    unsupported: Counter[str] = field(default_factory=Counter)  # op type without a rule -> cases

    @property
    def tried(self) -> int:
        return len(self.passed) + len(self.failed)


def as_array(value: object) -> np.ndarray | None:
    """Test data comes as numpy arrays or as TensorProtos; sequences and optionals are left out."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value if isinstance(value, np.ndarray) else None


def shape_carrying(model: onnx.ModelProto, inputs: list[object]) -> dict[str, np.ndarray]:
    """Integer inputs, whose values may decide output shapes (Reshape targets, Slice starts...)."""
    names = [v.name for v in model.graph.input]
    arrays = {name: as_array(value) for name, value in zip(names, inputs, strict=False)}
    return {name: a for name, a in arrays.items() if a is not None and a.dtype.kind in "iu"}


def check_case(model: onnx.ModelProto, inputs: list[object], outputs: list[object]) -> str | None:
    """None when every inferred output shape equals the expected one, else what differed."""
    try:
        propagation = propagate(model, shape_carrying(model, inputs))
    except ToolkitError as error:
        return str(error)
    for outcome in propagation.nodes:
        if outcome.result is None:
            return outcome.problem
    for declared, tensor, expected in zip(model.graph.output, propagation.outputs, outputs, strict=False):
        array = as_array(expected)
        if array is None:
            continue  # a sequence or optional output: no tensor shape to compare
        want = list(array.shape)
        got = None if tensor is None or tensor.shape is None else [str(d) for d in tensor.shape]
        if got != [str(d) for d in want]:
            return f"output {declared.name}: inferred {got}, expected {want}"
    return None


def measure() -> Coverage:
    coverage = Coverage()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tally(collect_testcases(""), coverage)


def tally(cases: list[TestCase], coverage: Coverage) -> Coverage:
    for case in cases:
        model = case.model
        if model is None:
            continue
        ops = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
        missing = [op for op in ops if op not in RULES] + \
            [n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx")]
        if missing:
            coverage.unsupported[sorted(missing)[0]] += 1
            continue
        inputs, outputs = case.data_sets[0] if case.data_sets else ([], [])
        problem = check_case(model, list(inputs), list(outputs))
        if problem is None:
            coverage.passed.append(case.name)
        else:
            coverage.failed[case.name] = problem
    return coverage


def main() -> int:
    coverage = measure()
    print(f"{len(coverage.passed)} of {coverage.tried} node test cases of supported ops pass "
          f"(onnx {onnx.__version__}); {sum(coverage.unsupported.values())} cases use ops without a rule")
    for name, why in sorted(coverage.failed.items()):
        print(f"  FAIL {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
