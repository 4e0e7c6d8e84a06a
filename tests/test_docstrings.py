"""Every ``>>>`` example in the library's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import keras_vit


def _modules():
    names = ["keras_vit"]
    for info in pkgutil.walk_packages(keras_vit.__path__, prefix="keras_vit."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={**vars(module)}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
