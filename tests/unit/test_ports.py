"""clusters.local.ports on real loopback sockets: every endpoint gets its own free port, the user's fixed ports
are checked, and bad input is one UserError naming the port and the component."""

from __future__ import annotations

import fcntl
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.local import ports as ports_mod
from clusters.local.ports import PORT_NAMES, allocate, allocation_lock
from foundation.errors import UserError
from foundation.ports import ephemeral_port, port_is_free


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something listens on for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_every_endpoint_gets_a_distinct_port() -> None:
    ports = allocate({}, [])
    assert list(ports) == list(PORT_NAMES)
    assert len(set(ports.values())) == len(PORT_NAMES)
    assert all(1 <= p <= 65535 for p in ports.values())


def test_port_names_are_unique() -> None:
    assert len(set(PORT_NAMES)) == len(PORT_NAMES)


def test_a_free_fixed_port_is_used_as_given() -> None:
    port = ephemeral_port()
    ports = allocate({"kube-apiserver": port}, [])
    assert ports["kube-apiserver"] == port
    assert list(ports.values()).count(port) == 1


def test_allocation_avoids_reserved_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    reserved = [ephemeral_port() for _ in range(3)]
    spare = iter(range(40000, 40100))
    handed_out: list[int] = []

    def kernel_port(host: str = "127.0.0.1") -> int:
        # The kernel hands out the reserved ports first (they are free: their clusters have not bound them yet).
        port = reserved[len(handed_out)] if len(handed_out) < len(reserved) else next(spare)
        handed_out.append(port)
        return port

    monkeypatch.setattr(ports_mod, "ephemeral_port", kernel_port)
    ports = allocate({}, reserved)
    assert set(reserved).isdisjoint(ports.values())
    assert set(reserved) <= set(handed_out)
    assert len(set(ports.values())) == len(PORT_NAMES)


@settings(max_examples=20, deadline=None)
@given(reserved=st.sets(st.integers(1024, 65535), max_size=50))
def test_allocated_ports_are_never_reserved(reserved: set[int]) -> None:
    ports = allocate({}, reserved)
    assert reserved.isdisjoint(ports.values())
    assert len(set(ports.values())) == len(PORT_NAMES)


@pytest.mark.process
def test_a_busy_fixed_port_names_port_and_component(listener: int) -> None:
    with pytest.raises(UserError) as info:
        allocate({"gitserver": listener}, [])
    message = str(info.value)
    assert f"port {listener} for gitserver is already in use" in message
    assert "choose another port" in message and "\n" not in message


def test_a_fixed_port_reserved_by_another_cluster_is_refused() -> None:
    port = ephemeral_port()
    with pytest.raises(UserError, match=f"port {port} for kube-apiserver is already in use"):
        allocate({"kube-apiserver": port}, [port])


def test_two_names_fixed_to_the_same_port_are_refused() -> None:
    port = ephemeral_port()
    with pytest.raises(UserError, match=f"port {port} for (kwok|gitserver) is already in use"):
        allocate({"kwok": port, "gitserver": port}, [])


@pytest.mark.parametrize("port", [0, -1, 65536, 100000])
def test_out_of_range_ports_are_refused(port: int) -> None:
    with pytest.raises(UserError) as info:
        allocate({"etcd-client": port}, [])
    assert str(info.value) == f"port {port} for etcd-client is out of range: use 1-65535"


def test_unknown_port_names_are_refused_listing_the_known_ones() -> None:
    with pytest.raises(UserError) as info:
        allocate({"apiserver": 6443, "etcd": 2379, "kwok": 1}, [])
    message = str(info.value)
    assert message.startswith("unknown port name(s) apiserver, etcd; known: ")
    assert all(name in message for name in PORT_NAMES)


@pytest.mark.process
def test_port_is_free_tells_a_listening_port_from_a_free_one(listener: int) -> None:
    assert not port_is_free(listener)
    assert port_is_free(ephemeral_port())


def test_allocation_lock_is_exclusive_and_lives_in_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    lock = tmp_path / "state" / "ports.lock"
    with allocation_lock():
        assert lock.exists()
        with lock.open("w") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with lock.open("w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
