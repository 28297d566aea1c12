"""``hieralloc.data_fetch.fetch`` against a local HTTP server serving the real scenario files."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hieralloc import data
from hieralloc.data_fetch import URL_ENV_VAR, fetch, origin_pattern, resolve_names
from hieralloc.errors import DataError

PRESENT = ("chicago", "nyc_brooklyn", "nyc_man_south", "san_francisco", "shenzhen_baoan", "shenzhen_downtown_west")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _Truncating(_Quiet):
    """Announces the full length, sends 1000 bytes and closes: a broken connection."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:1000])
        self.wfile.flush()
        self.close_connection = True


@contextlib.contextmanager
def serve(folder: Path, handler: type[http.server.SimpleHTTPRequestHandler] = _Quiet) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``folder``; yields the URL pattern with ``{file}``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{file}}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def origin(data_root: Path) -> Iterator[str]:
    with serve(data_root / "amod") as url:
        yield url


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_fetch_downloads_verifies_then_skips(tmp_path: Path, origin: str) -> None:
    got = fetch(["nyc_brooklyn", "amod/san_francisco"], root=tmp_path, base_url=origin)
    assert [(r.name, r.status) for r in got] == [("amod/nyc_brooklyn", "downloaded"),
                                                 ("amod/san_francisco", "downloaded")]
    for r in got:
        ds = data.get_dataset(r.name)
        assert r.path == tmp_path / ds.relpath and data.sha256_file(r.path) == ds.sha256
        assert data.status(ds, tmp_path).verified is True
        assert r.bytes == r.path.stat().st_size
    assert _leftovers(tmp_path) == ["scenario_nyc_brooklyn.json", "scenario_san_francisco.json"]
    seen: list[str] = []
    again = fetch(["nyc_brooklyn"], root=tmp_path, base_url=origin, report=lambda r: seen.append(r.status))
    assert [r.status for r in again] == ["present"] and seen == ["present"]
    # data.require now finds it in this data directory
    assert data.require("nyc_brooklyn", tmp_path) == tmp_path / "amod" / "scenario_nyc_brooklyn.json"


def test_url_from_environment_variable_folder_form(tmp_path: Path, origin: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV_VAR, origin.removesuffix("/{file}"))
    assert origin_pattern() == origin
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))  # default root = the data directory setting
    (res,) = fetch(["shenzhen_downtown_west"])
    assert res.status == "downloaded" and res.path == tmp_path / "amod" / "scenario_shenzhen_downtown_west.json"


def test_default_origin_is_the_pinned_public_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV_VAR, raising=False)
    assert origin_pattern() == data.AMOD_ORIGIN
    assert data.AMOD_ORIGIN.format(file="x.json").startswith(
        "https://raw.githubusercontent.com/DanieleGammelli/graph-meta-rl-for-amod/"
        "bd6fe8cd561ab70e85d360966715a53a0a56386c/data/")
    assert len(resolve_names(["all"])) == 13


def test_damaged_existing_file_is_replaced(tmp_path: Path, origin: str) -> None:
    dest = tmp_path / "amod" / "scenario_nyc_brooklyn.json"
    dest.parent.mkdir(parents=True)
    dest.write_text("{}")
    (res,) = fetch(["nyc_brooklyn"], root=tmp_path, base_url=origin)
    assert res.status == "downloaded" and data.status(data.get_dataset("nyc_brooklyn"), tmp_path).verified


def test_checksum_mismatch_leaves_no_file(tmp_path: Path, data_root: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    body = bytearray((data_root / "amod" / "scenario_nyc_brooklyn.json").read_bytes())
    body[100] ^= 1  # one flipped bit
    (mirror / "scenario_nyc_brooklyn.json").write_bytes(bytes(body))
    root = tmp_path / "root"
    with serve(mirror) as url, pytest.raises(DataError) as e:
        fetch(["nyc_brooklyn"], root=root, base_url=url)
    msg = str(e.value)
    assert "amod/nyc_brooklyn" in msg and "SHA-256" in msg and "not saved" in msg and "\n" not in msg
    assert _leftovers(root) == []


def test_http_404_leaves_no_file(tmp_path: Path, origin: str) -> None:
    with pytest.raises(DataError) as e:
        fetch(["porto"], root=tmp_path, base_url=origin)  # not served by the local mirror
    assert "HTTP 404" in str(e.value) and "scenario_porto.json" in str(e.value)
    assert _leftovers(tmp_path) == []


def test_broken_connection_leaves_no_partial_file(tmp_path: Path, data_root: Path) -> None:
    with serve(data_root / "amod", _Truncating) as url, pytest.raises(DataError) as e:
        fetch(["san_francisco"], root=tmp_path, base_url=url, timeout=10)
    assert "failed after" in str(e.value) and "san_francisco" in str(e.value)
    assert _leftovers(tmp_path) == []


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as e:
        fetch(["nyc_brooklyn"], root=tmp_path, base_url=f"http://127.0.0.1:{port}/{{file}}", timeout=5)
    assert "check the network connection" in str(e.value)
    assert _leftovers(tmp_path) == []


def test_all_fetches_what_exists_and_reports_the_rest(tmp_path: Path, data_root: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for city in ("san_francisco", "nyc_brooklyn"):  # a small mirror keeps the test fast
        shutil.copy(data_root / "amod" / f"scenario_{city}.json", mirror)
    root = tmp_path / "root"
    done: list[str] = []
    with serve(mirror) as url, pytest.raises(DataError) as e:
        fetch(["all"], root=root, base_url=url, report=lambda r: done.append(r.name))
    assert sorted(done) == ["amod/nyc_brooklyn", "amod/san_francisco"]
    assert str(e.value).startswith("11 of 13 datasets failed")
    assert _leftovers(root) == ["scenario_nyc_brooklyn.json", "scenario_san_francisco.json"]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="must start with http"):
        fetch(["nyc_brooklyn"], root=tmp_path, base_url="ftp://example.org/{file}")
    with pytest.raises(DataError, match="at least one dataset"):
        fetch([], root=tmp_path)
    from hieralloc.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        fetch(["atlantis"], root=tmp_path)


def test_shared_data_has_the_six_cities(data_root: Path) -> None:
    for city in PRESENT:
        assert data.status(data.get_dataset(city), data_root).verified, city


def test_cli_data_fetch_then_verify(cli, tmp_path: Path, origin: str) -> None:
    r = cli("data", "fetch", "nyc_brooklyn", "san_francisco", "--url", origin, "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "2 dataset(s) verified" in r.stdout
    r = cli("data", "verify", "--data-dir", str(tmp_path))
    assert r.returncode == 0 and "2 passed, 0 failed" in r.stdout
    r = cli("data", "fetch", "rome", "--url", origin, "--data-dir", str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert not (tmp_path / "amod" / "scenario_rome.json").exists()
    assert not [p for p in (tmp_path / "amod").iterdir() if p.name.startswith(".")]
