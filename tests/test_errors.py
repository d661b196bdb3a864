"""Error messages: what is wrong and what to do, and the detail taken from a library's exception."""

from depara_core.errors import DeparaError, GraphError, error_detail


def test_error_names_the_problem_and_the_remedy() -> None:
    err = GraphError("the layer is empty", "choose another layer")
    assert isinstance(err, DeparaError)
    assert "the layer is empty" in str(err) and "choose another layer" in str(err)


def test_error_detail_keeps_the_last_nonempty_line() -> None:
    exc = RuntimeError("Traceback of TorchScript:\n  File 'x', line 3\n\n  mat1 and mat2 shapes cannot be multiplied  \n\n")
    assert error_detail(exc) == "mat1 and mat2 shapes cannot be multiplied"


def test_error_detail_of_an_empty_message_is_empty() -> None:
    assert error_detail(RuntimeError()) == ""
    assert error_detail(RuntimeError("\n  \n")) == ""


def test_error_detail_is_bounded() -> None:
    assert len(error_detail(ValueError("x" * 5000))) == 300
