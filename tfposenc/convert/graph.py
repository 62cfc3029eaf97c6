"""The graph of a functional Keras model: its nodes in topological order, with edges.

Generic: nothing here knows about padding or downsampling. `convert_model` walks this
graph to rebuild a model node by node (see `converter.py`).
"""

import keras


class Graph:
    """The nodes of a functional model in topological order, with their edges."""

    def __init__(self, roots):
        self.nodes, self.order, self.consumers = [], {}, {}
        self.roots = {id(t) for t in roots}
        for tensor in roots:
            self._visit(self.producer(tensor))
        for node in self.nodes:
            for tensor in node.arguments.keras_tensors:
                self.consumers.setdefault(id(tensor), []).append(node)

    @staticmethod
    def producer(tensor):
        """The node that computed `tensor`, or None for a model input."""
        history = getattr(tensor, "_keras_history", None)
        if history is None or history.operation is None:
            return None
        operation = history.operation
        if isinstance(operation, keras.layers.InputLayer):
            return None
        return operation._inbound_nodes[history.node_index]

    def _visit(self, root):
        if root is None or id(root) in self.order:
            return
        stack = [(root, iter(root.arguments.keras_tensors))]
        on_stack = {id(root)}
        while stack:
            node, inputs = stack[-1]
            for tensor in inputs:
                parent = self.producer(tensor)
                if parent is not None and id(parent) not in self.order:
                    if id(parent) not in on_stack:
                        on_stack.add(id(parent))
                        stack.append((parent, iter(parent.arguments.keras_tensors)))
                        break
            else:
                stack.pop()
                self.order[id(node)] = len(self.nodes)
                self.nodes.append(node)

    def only_consumer(self, node):
        """The one node that uses `node`'s single output, if that is all that does."""
        if len(node.outputs) != 1 or id(node.outputs[0]) in self.roots:
            return None
        users = self.consumers.get(id(node.outputs[0]), [])
        return users[0] if len(users) == 1 else None

    def users(self, node):
        return [user for tensor in node.outputs for user in self.consumers.get(id(tensor), [])]


def structure(model):
    """`(inputs, outputs)` of a functional model or a built `Sequential` one, as the
    nested structures of symbolic tensors it was built from; None for a model with no
    graph (a subclassed model, or a `Sequential` never built on an input)."""
    if isinstance(model, keras.Sequential):
        model = model._functional
    inputs = getattr(model, "_inputs_struct", None)
    outputs = getattr(model, "_outputs_struct", None)
    if inputs is None or outputs is None:
        return None
    return inputs, outputs
