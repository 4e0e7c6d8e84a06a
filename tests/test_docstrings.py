"""Every ``>>>`` example in the library's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import keras_vit


def _modules():
    import keras_vit.tflite
    import keras_vit.training

    names = ["keras_vit"]
    # training/ and tflite/ live beside keras_vit/ in the repository, so they are walked on their own paths.
    for package in (keras_vit, keras_vit.training, keras_vit.tflite):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={**vars(module)}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
