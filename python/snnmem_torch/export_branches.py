"""The exporter's forks and joins beyond a residual add: a tensor read by several paths that meet
again in one join (a sum of several paths, `torch.cat` along channels, SEW's AND `x * y` and IAND
`x * (1 - y)`) becomes a `branches` block; paths may fork again inside (series-parallel graphs).
A fork whose paths meet outside the block they start in (not series-parallel) is refused naming
the node, as is a join the profile language has not.

Path order is the order the join reads its operands, which must also be the order the paths run in
(the plan runs them in that order): a sum reads a left fold `((p0 + p1) + p2)`, a concatenation its
list, IAND (1 - a) * b reads a then b; AND's operands commute: a is `x * y`'s y unless the paths run the other way round.
"""

from __future__ import annotations

import operator

import torch


def _is_one(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == 1.0


def is_product(reader, node) -> bool:
    if node.op == "call_function" and node.target in (operator.mul, torch.mul):
        return len(reader._tensor_args(node)) == 2
    return node.op == "call_method" and node.target in ("mul", "__mul__") and len(reader._tensor_args(node)) == 2


def one_minus(reader, node):
    """y when node is `1 - y` (operator.sub(1.0, y), torch.rsub(y, 1.0), torch.sub(1.0, y)), else None."""
    args = list(node.args)
    if node.op == "call_function" and node.target in (operator.sub, torch.sub) and len(args) == 2 \
            and _is_one(args[0]) and reader._is_tensor(args[1]) and not node.kwargs:
        return args[1]
    if node.op == "call_function" and node.target is torch.rsub and len(args) == 2 \
            and reader._is_tensor(args[0]) and _is_one(args[1]) and not node.kwargs:
        return args[0]
    return None


def cat_operands(node) -> list:
    """The tensors of `torch.cat([...], dim)` in list order."""
    listed = node.args[0] if node.args else node.kwargs.get("tensors")
    return list(listed) if isinstance(listed, (list, tuple)) else []


def cat_dim(node):
    if len(node.args) > 1:
        return node.args[1]
    return node.kwargs.get("dim", 0)


def join_structure(reader, join, fork) -> tuple:
    """(join kind, operand nodes in path order, the structure's own nodes) of the join a fork meets in."""
    from .export import _node_what, _shape

    where = f"'{reader.where(fork)}'"
    if reader._is_add(join):
        operands, internal, node = [], {join}, join
        while True:
            left, right = reader._tensor_args(node)
            operands.insert(0, right)
            if reader._is_add(left) and left is not fork and list(left.users) == [node]:
                node = left
                internal.add(left)
                continue
            operands.insert(0, left)
            return "add", operands, internal
    if reader._is_cat(join):
        if join.op == "call_function" and join.target is torch.stack:
            raise reader._refuse(join, f"stacks paths from {where} along a new dimension; a profile's concat joins "
                                 "channels", "concatenate along channels (torch.cat(..., dim=2) on [T, B, C, H, W])")
        dim, rank = cat_dim(join), len(_shape(join))
        if not isinstance(dim, int) or dim % rank != rank - 3:
            raise reader._refuse(join, f"concatenates paths from {where} along dimension {dim} of a {rank}-dimensional "
                                 "tensor; a profile's concat joins channels ([T, B, C, H, W]: dimension 2)",
                                 "concatenate along channels (dim=2 or dim=-3)")
        operands = cat_operands(join)
        if not operands or not all(reader._is_tensor(o) for o in operands):
            raise reader._refuse(join, "concatenates values that are not traced tensors", "concatenate tensors only")
        return "concat", operands, {join}
    if is_product(reader, join):
        left, right = reader._tensor_args(join)
        for negated, other in ((right, left), (left, right)):
            y = one_minus(reader, negated)
            if y is not None and list(negated.users) == [join]:
                return "iand", [y, other], {join, negated}
        # The builder computes b * a (SEW's `x * y`, x the identity): a is the right operand.
        return "and", [right, left], {join}
    what = _node_what(join)
    if join.op == "output":
        problem = f"the model returns more than one tensor computed from {where}; a profile's network gives one"
    else:
        problem = (f"joins paths from {where} with {what}; the profile language joins paths by add, concat (channels), "
                   "and (a * b) or iand ((1 - a) * b)")
    raise reader._refuse(join, problem, "join the paths with a sum, torch.cat along channels, or SEW's AND / IAND")


def _first_join(reader, user):
    """The first node with several tensor inputs on the single-reader chain from `user`, or None where
    the chain forks first (a nested fork, read as part of its path)."""
    node = user
    while True:
        if len(reader._tensor_args(node)) > 1 or reader._is_cat(node):
            return node
        readers = list(node.users)
        if len(readers) != 1:
            return None
        node = readers[0]


def read_branches(reader, fork, users, join, stops) -> tuple:
    """The `branches` entry for a fork whose paths meet in `join`; returns it and the join node."""
    from .export import Entry, _module_path, _relative_names, _shape

    kind, operands, internal = join_structure(reader, join, fork)
    if len(set(operands)) != len(operands):
        raise reader._refuse(join, f"reads the same tensor twice in one {kind} join", "compute the repeated operand once")
    slots: dict = {}
    for index, operand in enumerate(operands):
        if operand is fork:
            slots[index] = ([], None)
    # Paths that meet in a join of their own before this one (several readers of the fork summed,
    # concatenated or multiplied first) are one path here: a nested block on the same input.
    nested: dict = {}
    for user in users:
        inner = _first_join(reader, user) if user not in internal else None
        if inner is not None and inner not in internal:
            nested.setdefault(inner, []).append(user)
    nested = {inner: readers for inner, readers in nested.items() if len(readers) >= 2}
    grouped = {user for readers in nested.values() for user in readers}
    starts = [(user, None) for user in users if user not in internal and user not in grouped]
    starts += [(min(readers, key=reader.order.get), inner) for inner, readers in nested.items()]
    for user, inner in sorted(starts, key=lambda s: reader.order[s[0]]):
        if inner is None:
            entries = reader.layer(user)
            more, last = reader.chain(user, frozenset(internal))
        else:
            block, _ = read_branches(reader, fork, nested[inner], inner, frozenset(internal))
            entries = [block]
            more, last = reader.chain(inner, frozenset(internal))
        if last not in operands or operands.index(last) in slots:
            raise reader._refuse(user, f"starts a path from '{reader.where(fork)}' that does not end in one operand of "
                                 f"its {kind} join '{reader.where(join)}' (the graph is not series-parallel there)",
                                 "let every path from a fork end in the join that closes it")
        slots[operands.index(last)] = (entries + more, user)
    if len(slots) != len(operands):
        missing = [o for i, o in enumerate(operands) if i not in slots]
        raise reader._refuse(join, f"joins tensors that do not all come from '{reader.where(fork)}' "
                             f"({', '.join(repr(reader.where(m)) for m in missing)} does not)",
                             "join only paths that start from the same tensor")
    order = [i for i in range(len(operands)) if slots[i][1] is not None]
    if kind == "and" and len(order) == 2 and reader.order[slots[0][1]] > reader.order[slots[1][1]]:
        slots = {0: slots[1], 1: slots[0]}  # a * b commutes: the paths take the order they run in
    elif [reader.order[slots[i][1]] for i in order] != sorted(reader.order[slots[i][1]] for i in order):
        raise reader._refuse(join, f"runs the paths from '{reader.where(fork)}' in another order than its {kind} join "
                             "reads them; a profile runs a block's paths in the order the join reads them",
                             "compute the join's operands in the order it reads them")
    path = _module_path(join)
    entry = Entry("branches", path or join.name, shape=_shape(join)[2:], join=kind,
                  paths=[slots[i][0] for i in range(len(operands))])
    _relative_names(entry, path)
    return entry, join
