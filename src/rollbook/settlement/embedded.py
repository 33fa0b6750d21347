"""The embedded EVM in a child process: py-evm off the caller's GIL, reached over a pipe.

``start_embedded_chain()`` starts ``python -m rollbook.settlement.embedded`` (a fresh
interpreter, never a ``fork`` of a threaded node), which builds an eth-tester ``PyEVMBackend``
and answers requests on its stdin/stdout; it returns the caller's end, ``ChildChainProvider``
(a web3 provider and ``Chain``'s ``RemoteExecution``), and the dev accounts' keys, which
``Chain.embedded_child()`` wraps. Deployments, transactions, calls, logs, reverts and their
reasons behave as with ``Chain.embedded()``; what moves out of the caller is the EVM's
execution (8 to 60 ms per published 64 KiB batch, executed twice before: estimate and send),
which ran on the node's GIL and stalled every ack behind it.

Two kinds of requests. Raw JSON-RPC (``("rpc", method, params)``): what the caller's web3 asks
for (blocks, logs, the dev clock, ...). Contract work (``attach``, ``deploy``, ``call``,
``transact``; ``Chain``'s ``RemoteExecution``): the child runs it whole with its own ``Chain``
over its in-process tester (the very code of ``Chain.embedded()``: estimate unless a gas limit
is given, revert reasons, decoded receipts, and its direct path to py-evm for transactions,
which cut the child's CPU per published 55 KB batch by 38 %), because web3's client side
alone (ABI encoding of 64 KiB of calldata, typed-transaction checks, signing, formatting) cost
the node about 5 ms of CPU per batch submission, and 2 ms per view, on its GIL. The sender's
key crosses the pipe (the dev chain's funded accounts, or any key a test made): a private pipe
to our own child.

Protocol (a private pipe between a parent and the child it started, so ``pickle`` is safe):
frames of ``FRAME_HEADER`` (payload length, u32 little endian) + a pickled payload. The child
first sends ``("ready", dev_keys)``; then answers each request with ``("ok", value)`` or
``("error", exception)`` (the exception itself: eth-tester's ``TransactionFailed`` from a raw
request, ``RevertError`` from contract work, so the caller sees what it would in process). One
request at a time: the provider holds a lock around each round trip.

Dev-chain clock: the child answers ``evm_setNextBlockTimestamp`` and ``evm_mine`` (anvil's
names, which ``Chain`` uses for any provider but the in-process tester) with eth-tester's
``time_travel`` and ``mine_blocks``.

Lifetime: the child lives until ``close()`` (``Chain.close``) or until its stdin reaches end of
file, which is also what happens when the parent dies, however it dies: no orphan keeps running.
It ignores SIGINT, so that Ctrl-C on ``rollbook node`` stops the node, which then closes the chain.
It runs in Linux's SCHED_IDLE class (elsewhere at a lower priority): settlement is background
work, and the node's threads preempt it (``rollbook.runtime.lower_to_background``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from types import MappingProxyType
from typing import IO, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3.providers import BaseProvider
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from rollbook.runtime import lower_to_background
from rollbook.settlement._compile import CompiledContract
from rollbook.settlement.chain import Chain, ChainError, ContractHandle, Receipt

__all__ = ["CHILD_START_TIMEOUT_S", "ChildChainProvider", "EmbeddedChainError",
           "start_embedded_chain"]

FRAME_HEADER = struct.Struct("<I")
FRAME_BYTES_MAX = 1 << 30  # a request or answer larger than this is a bug, not a transaction
CHILD_START_TIMEOUT_S = 60.0  # importing py-evm and building the genesis state: about 1-2 s
CHILD_STOP_TIMEOUT_S = 5.0
# answers that never change over the child's life, kept after the first round trip: web3's
# middlewares ask for them around every call and transaction (the chain id to validate, the
# accounts to fill in a default sender), which tripled the round trips of a contract call
CONSTANT_METHODS = frozenset({"eth_chainId", "eth_accounts"})
# The child's scheduling class: the EVM is background work (a batch is acknowledged, durable and
# queryable before it is settled), so on a machine with few cores the node's threads, and its
# clients, must run first. Linux's SCHED_IDLE runs the child on CPU time nobody else wants, and
# a waking node thread preempts it at once: measured against nice +10 on 2 shared cores, ack p90
# at 1,000 orders/s 1.6-2.0 ms against 4.3-5.5 ms, p99 at 5,000/s 21-72 ms against 56-265 ms,
# the chain getting the same CPU (about 0.2 core) since the node leaves the rest idle. Under
# full saturation it starves and publication falls behind (caught up when the load drops).
# Elsewhere: a nice increment. Both: ``rollbook.runtime.lower_to_background``.


class EmbeddedChainError(ChainError):
    """The child process is gone (closed, or died) or broke the protocol."""


def _write_frame(stream: IO[bytes], payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: IO[bytes]) -> Any:
    """The next payload; ``EOFError`` at a clean end of stream."""
    header = _read_exact(stream, FRAME_HEADER.size)
    if header is None:
        raise EOFError
    (size,) = FRAME_HEADER.unpack(header)
    if size > FRAME_BYTES_MAX:
        raise EmbeddedChainError(f"frame of {size} bytes exceeds {FRAME_BYTES_MAX}")
    data = _read_exact(stream, size)
    if data is None:
        raise EmbeddedChainError("the stream ended inside a frame")
    return pickle.loads(data)


class ChildChainProvider(BaseProvider):
    """A web3 provider that forwards raw requests to the child; see the module docstring."""

    # the in-process tester's middlewares (request and result formatting) run here, unchanged
    _middleware = EthereumTesterProvider._middleware
    request_func = EthereumTesterProvider.request_func

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__()
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._requests = process.stdin
        self._answers = process.stdout
        self._lock = threading.Lock()
        self._closed = False  # no more requests: closed, or the stream broke mid-request
        self._stopped = False  # the child was told to stop and reaped
        self._constants: dict[str, RPCResponse] = {}  # CONSTANT_METHODS' first answers

    @property
    def pid(self) -> int:
        return self._process.pid

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if not params:
            constant = self._constants.get(method)
            if constant is not None:
                return constant
        response: RPCResponse = self._request(("rpc", method, params))
        if method in CONSTANT_METHODS and not params:
            self._constants[method] = response
        return response

    # ``RemoteExecution`` (see ``Chain``)

    def attach(self, compiled: CompiledContract, address: ChecksumAddress) -> None:
        self._request(("attach", _wire_contract(compiled), address))

    def deploy(self, compiled: CompiledContract, args: tuple[Any, ...],
               sender: LocalAccount) -> ChecksumAddress:
        address: ChecksumAddress = self._request(
            ("deploy", _wire_contract(compiled), args, bytes(sender.key)))
        return address

    def call(self, address: ChecksumAddress, function: str, args: tuple[Any, ...],
             block: int | None) -> Any:
        return self._request(("call", address, function, args, block))

    def transact(self, address: ChecksumAddress, function: str, args: tuple[Any, ...],
                 sender: LocalAccount, gas: int | None) -> Receipt:
        receipt: Receipt = self._request(
            ("transact", address, function, args, bytes(sender.key), gas))
        return receipt

    def _request(self, request: tuple[Any, ...]) -> Any:
        """One round trip; the child's exception is raised here."""
        with self._lock:
            if self._closed:
                raise EmbeddedChainError("the embedded chain was closed")
            try:
                _write_frame(self._requests, request)
                status, value = _read_frame(self._answers)
            except (OSError, EOFError) as error:
                self._closed = True
                raise EmbeddedChainError(
                    f"the embedded chain process (pid {self._process.pid}) is gone: "
                    f"exit {self._process.poll()}") from error
            except BaseException:  # interrupted mid-frame: the stream is out of step for good
                self._closed = True
                raise
        if status == "error":
            raise value
        return value

    def is_connected(self, show_traceback: bool = False) -> bool:
        return not self._closed and self._process.poll() is None

    def close(self) -> None:
        """End the child (idempotent): end of its input, then a kill if it lingers."""
        with self._lock:
            if self._stopped:
                return
            self._closed = self._stopped = True
            with contextlib.suppress(OSError):  # a dead child: its pipe is already broken
                self._requests.close()
            try:
                self._process.wait(CHILD_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._answers.close()


def start_embedded_chain() -> tuple[ChildChainProvider, tuple[bytes, ...]]:
    """Start the child; its provider and the dev accounts' private keys (funded there)."""
    # py-evm hashes through eth_hash, whose default (pycryptodome) is ~5x slower than pysha3
    # (rollbook's keccak); chosen at the first hash, so set before the child starts
    environment = {**os.environ, "ETH_HASH_BACKEND": os.environ.get("ETH_HASH_BACKEND", "pysha3")}
    process = subprocess.Popen(
        [sys.executable, "-m", "rollbook.settlement.embedded"], env=environment,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True)
    assert process.stdout is not None
    timer = threading.Timer(CHILD_START_TIMEOUT_S, process.kill)
    timer.start()
    try:
        status, keys = _read_frame(process.stdout)
    except (OSError, EOFError) as error:
        process.kill()
        raise EmbeddedChainError(f"the embedded chain process failed to start: exit "
                                 f"{process.wait()}") from error
    finally:
        timer.cancel()
    if status != "ready":
        process.kill()
        raise EmbeddedChainError(f"the embedded chain process answered {status!r} at start")
    return ChildChainProvider(process), tuple(keys)


# --- the child -----------------------------------------------------------------------------


class _ChildEndpoint:
    """eth-tester behind raw requests (plus anvil's dev-clock methods), and a ``Chain`` over the
    same tester for contract work."""

    def __init__(self) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import Web3

        self.backend = PyEVMBackend()
        self.tester = EthereumTester(self.backend)
        self.provider = EthereumTesterProvider(self.tester)
        self.chain = Chain(Web3(self.provider), dev_keys=self.dev_keys(),
                           description="embedded py-evm chain", embedded=True)
        self.handles: dict[str, ContractHandle] = {}
        self.signers: dict[bytes, LocalAccount] = {}
        self.next_timestamp: int | None = None

    def dev_keys(self) -> list[bytes]:
        return [key.to_bytes() for key in self.backend.account_keys]

    def handle(self, request: tuple[Any, ...]) -> Any:
        kind = request[0]
        if kind == "rpc":
            return self.rpc(request[1], request[2])
        if kind == "call":
            _, address, function, args, block = request
            return self.chain.call(self.handles[address], function, *args, block=block)
        if kind == "transact":
            _, address, function, args, key, gas = request
            return self.chain.transact(self.handles[address], function, *args,
                                       sender=self.signer(key), gas=gas)
        if kind == "attach":
            _, contract, address = request
            self.handles[address] = self.chain.attach(_contract_of(contract), address)
            return None
        if kind == "deploy":
            _, contract, args, key = request
            handle = self.chain.deploy(_contract_of(contract), *args, sender=self.signer(key))
            return handle.address
        raise ValueError(f"unknown request {kind!r}")

    def signer(self, key: bytes) -> LocalAccount:
        signer = self.signers.get(key)
        if signer is None:
            signer = self.signers[key] = Account.from_key(key)
        return signer

    def rpc(self, method: str, params: Any) -> Any:
        if method == "evm_setNextBlockTimestamp":
            self.next_timestamp = int(params[0])
            return {"jsonrpc": "2.0", "id": 0, "result": None}
        if method == "evm_mine":
            self._mine()
            return {"jsonrpc": "2.0", "id": 0, "result": "0x0"}
        return self.provider.make_request(RPCEndpoint(method), params)

    def _mine(self) -> None:
        timestamp, self.next_timestamp = self.next_timestamp, None
        if timestamp is None:
            self.tester.mine_blocks(1)
            return
        self.tester.time_travel(timestamp)
        # eth-tester 0.14 stamps the block one second early (see chain._TesterTime)
        stamped = int(self.tester.get_block_by_number("latest")["timestamp"])
        if stamped < timestamp:
            self.tester.time_travel(timestamp + (timestamp - stamped))


def _wire_contract(compiled: CompiledContract) -> tuple[str, list[dict[str, Any]], bytes]:
    # the ABI entries are read-only views (not picklable): plain dicts on the wire
    return (compiled.name, [dict(entry) for entry in compiled.abi], compiled.bytecode)


def _contract_of(wire: tuple[str, list[dict[str, Any]], bytes]) -> CompiledContract:
    name, abi, bytecode = wire
    return CompiledContract(name, tuple(MappingProxyType(entry) for entry in abi), bytecode)


def _serve() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us by closing our input
    # the protocol owns the real stdout; anything printed goes to stderr instead
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    endpoint = _ChildEndpoint()
    # only once started (before "ready", which the parent may check): started in SCHED_IDLE,
    # the imports and the genesis state starved past CHILD_START_TIMEOUT_S on a machine whose
    # cores other work kept busy (seen in a CI run)
    lower_to_background()
    _write_frame(answers, ("ready", endpoint.dev_keys()))
    while True:
        try:
            request = _read_frame(requests)
        except EOFError:
            return 0
        try:
            answer: tuple[str, Any] = ("ok", endpoint.handle(request))
        except Exception as error:  # the endpoint's own error: the caller classifies it
            answer = ("error", _picklable(error))
        _write_frame(answers, answer)


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__module__}.{type(error).__name__}: {error}")
    return error


if __name__ == "__main__":
    sys.exit(_serve())
