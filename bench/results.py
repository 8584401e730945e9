"""bench/RESULTS.md is shared by the benchmarks: each owns the section
between its `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers."""


def write_section(results, name, section):
    """Replaces (or appends) the section `name` of the results file."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    with open(results) as f:
        text = f.read()
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(results, "w") as f:
        f.write(text)
