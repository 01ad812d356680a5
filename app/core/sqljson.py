"""JSON made in Python with a few values only the statement that writes it knows (an order's price, its ledger
entry): the JSON as a template for PostgreSQL's ``format()``, filled in by that statement."""

from collections.abc import Sequence


def later(name: str) -> str:
    """A value the statement fills in: put it where the value goes, then make the JSON a :func:`template`."""
    return "\x00" + name


def template(text: str, names: Sequence[str]) -> str:
    """``text``, JSON holding :func:`later` values (also inside a JSON string, as the audit log's canonical
    text travels), as a ``format()`` template: each later value, its quotes included, becomes ``%n$s`` (``n``:
    its name's place in ``names``, from 1), where the statement puts the value's JSON; every other ``%`` is
    doubled. A name that does not appear is a caller's slip."""
    text = text.replace("%", "%%")
    for n, name in enumerate(names, start=1):
        # JSON writes the NUL as \u0000, never raw; JSON inside a JSON string escapes that and the quotes again
        forms = ('"\\u0000' + name + '"', '\\"\\\\u0000' + name + '\\"')
        assert any(form in text for form in forms), f"{name} is not in the JSON"
        for form in forms:
            text = text.replace(form, f"%{n}$s")
    return text
