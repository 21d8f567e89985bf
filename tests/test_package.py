"""The public API surface: every name in __all__ resolves, errors have the documented bases."""

import pytest

import ltvkit
from ltvkit.errors import InputError, LtvError, MissingExtraError, NotFittedError


def test_error_hierarchy():
    assert issubclass(InputError, ValueError) and issubclass(InputError, LtvError)
    assert issubclass(NotFittedError, AttributeError)
    assert issubclass(MissingExtraError, ImportError)


@pytest.mark.parametrize("name", ltvkit.__all__)
def test_every_public_name_resolves(name):
    assert getattr(ltvkit, name) is not None


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        ltvkit.no_such_thing  # noqa: B018
