import pytest

from tests.serving.savedmodels import Server, write_version


@pytest.fixture(scope="session")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports") / "tiny"
    write_version(str(base), 0)
    return str(base)


@pytest.fixture(scope="session")
def server(base_path):
    """One server for the tests that do not change its models: REST and gRPC."""
    server = Server(
        "--model_name", "tiny", "--model_base_path", base_path, "--max_request_bytes", "200000"
    )
    yield server
    code, output = server.stop()
    assert code == 0 and "server stopped" in output
