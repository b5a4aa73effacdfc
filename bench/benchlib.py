"""Formatting shared by the benchmark drivers (bench.py, kafka/kbench.py,
groups/gbench.py): numbers, ratios against targets, and text tables."""


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_mb(x):
    return f"{x:,.1f}"


def fmt_ratio(x, target=None):
    """x.xx, or x.xxx when two decimals would hide which side of target it is"""
    if target is not None and round(x, 2) == round(target, 2) and x != target:
        return f"{x:.3f}x"
    return f"{x:.2f}x"


def verdict(ok):
    return "met" if ok else "MISSED"


def table(headers, rows, align=None):
    """Render rows as a fixed-width text table; align is a string of l/r per column."""
    cols = len(headers)
    align = align or ("l" + "r" * (cols - 1))
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(cols)]

    def line(r):
        out = []
        for i, c in enumerate(r):
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "  " + "  ".join(out).rstrip()

    sep = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])
