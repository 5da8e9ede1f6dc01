"""Model.summary's table (Keras's layout): a layer per row, its output shape and parameter
count, a "Connected to" column for a graph, and the totals in parameters and bytes."""

import textwrap

# summary's column widths as fractions of the line: 71 characters by default (33, 26, 12), or
# 100 with the "Connected to" column (33, 26, 12, 29)
_COLUMNS = (33 / 71, 26 / 71, 12 / 71)
_COLUMNS_CONNECTED = (0.33, 0.26, 0.12, 0.29)


def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n:.2f} B"
        n /= 1024.0


def print_summary(model, print_fn=None, line_length=None):
    """See Model.summary."""
    model._ensure_built()
    print_fn = print_fn or print
    inbound = model._inbound_layers()
    fractions = _COLUMNS if inbound is None else _COLUMNS_CONNECTED
    widths = [round(f * (line_length or (71 if inbound is None else 100)))
              for f in fractions]
    total = sum(widths)
    rows = []
    for layer in model.layers:
        shape = "(None, " + ", ".join(map(str, layer.output_shape)) + ")"
        row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
        if inbound is None:
            rows.append([row])
            continue
        sources = [f"{source.name}[0][0]" for source in inbound[layer]] or ["-"]
        rows.append([row + sources[:1]] + [["", "", "", s] for s in sources[1:]])

    def line(cells):
        """A row's printed lines; a cell too long for its column (a long name and type,
        "batch_normalization (BatchNormalization)") wraps at its spaces onto further
        lines, as in Keras's table, so that the columns never run together."""
        parts = [textwrap.wrap(c, w - 1) or [""] for c, w in zip(cells[:3], widths)]
        parts += [[c] for c in cells[3:]]
        texts = []
        for k in range(max(map(len, parts))):
            c = [p[k] if k < len(p) else "" for p in parts]
            text = c[0].ljust(widths[0]) + c[1].ljust(widths[1]) + c[2].rjust(widths[2])
            texts.append(text + "  " + c[3] if len(c) > 3 and c[3] else text)
        return texts

    trainable = sum(w.size for w, t in zip(model.weights, model.weight_trainable) if t)
    total_params = model.count_params()
    nbytes = lambda count: count * model.dtype.itemsize
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * total)
    print_fn(line(["Layer (type)", "Output Shape", "Param #",
                   "Connected to"][:len(widths)])[0])
    print_fn("=" * total)
    for i, lines in enumerate(rows):
        for cells in lines:
            for text in line(cells):
                print_fn(text)
        if i < len(rows) - 1:
            print_fn("")
    print_fn("=" * total)
    print_fn(f"Total params: {total_params:,} ({_human_bytes(nbytes(total_params))})")
    print_fn(f"Trainable params: {trainable:,} ({_human_bytes(nbytes(trainable))})")
    print_fn(f"Non-trainable params: {total_params - trainable:,} "
             f"({_human_bytes(nbytes(total_params - trainable))})")
    print_fn("_" * total)
