"""Graph order and completeness, shared by the loader's checks and the analyzer's walk: both refuse the same
incomplete or cyclic graph with the same words."""

from __future__ import annotations

import heapq

import onnx

from toolkit.errors import ToolkitError


def check_inputs_provided(graph: onnx.GraphProto, available: set[str]) -> None:
    """Every node input is a graph input, an initializer or a node output: else the model is incomplete."""
    produced = {name for node in graph.node for name in node.output}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in available and name not in produced:
                raise ToolkitError(f"node '{node.name or index}' ({node.op_type}) reads '{name}', which no input, "
                                   "initializer or node provides; the model is incomplete")


def body_reads(node: onnx.NodeProto) -> set[str]:
    """Every name the node's bodies (If branches, Loop and Scan bodies, nested ones too) read: a body may read
    the enclosing graph's tensors, which must then be computed before the node runs."""
    names: set[str] = set()
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
        for graph in graphs:
            for inner in graph.node:
                names.update(name for name in inner.input if name)
                names |= body_reads(inner)
    return names


def graph_order(graph: onnx.GraphProto, available: set[str]) -> list[int]:
    """Node indices in an order where every input, a body's reads included, is produced first (ONNX asks for
    it; some tools skip it).

    Stable: of the nodes ready, the first in the file goes first, so a sorted graph keeps its order. A cycle is
    an error naming a node on it.
    """
    producers = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    waiting = {i: {producers[name] for name in {*node.input, *body_reads(node)}
                   if name and name not in available and name in producers and producers[name] != i}
               for i, node in enumerate(graph.node)}
    users: dict[int, list[int]] = {}
    for i, needs in waiting.items():
        for j in needs:
            users.setdefault(j, []).append(i)
    ready = [i for i, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for user in users.get(i, []):
            waiting[user].discard(i)
            if not waiting[user]:
                heapq.heappush(ready, user)
    if len(order) < len(graph.node):
        stuck = graph.node[min(set(range(len(graph.node))) - set(order))]
        raise ToolkitError(f"the graph has a cycle through node '{stuck.name or stuck.op_type}'; "
                           "an ONNX graph must be acyclic")
    return order
