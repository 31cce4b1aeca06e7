from __future__ import annotations

import pytest

from dynconform.stability._annotations import narrowed, normalize, widened


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Optional[int]", "int | None"),
        ("typing.Optional[int]", "None | int"),
        ("Union[str, int, None]", "int | str | None"),
        ("List[Dict[str, Any]]", "list[dict[str, Any]]"),
        ("'Context'", "Context"),
        ("Optional['Context']", "Context | None"),
        ("t.Tuple[int, ...]", "tuple[int, ...]"),
        ("Optional[Union[int, str]]", "str | int | None"),
        ("Dict[str,  int]", "dict[str, int]"),
    ],
)
def test_equivalent_spellings_normalise_alike(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("int", "str"),
        ("Optional[int]", "int"),
        ("Literal['a']", "Literal['b']"),
        ("list[int]", "list[str]"),
        ("Annotated[int, 'x']", "Annotated[int, 'y']"),
    ],
)
def test_different_types_stay_different(a: str, b: str) -> None:
    assert normalize(a) != normalize(b)


def test_literal_strings_are_not_forward_references() -> None:
    assert normalize("Literal['ttl', 'lru']") == "Literal['ttl', 'lru']"


def test_unparsable_text_is_kept_with_collapsed_whitespace() -> None:
    assert normalize("not  valid [") == "not valid ["
    assert normalize(None) is None


def test_widening_and_narrowing() -> None:
    assert widened("int", "int | None")
    assert widened("int", "Any")
    assert not widened("int | None", "int")
    assert narrowed("int | None", "int")
    assert narrowed("Any", "str")
    assert not narrowed("int", "int | str")
