"""`tinyml federate`: the student trained across clients that keep their data, on
Flower (`flwr`), then int8 artifacts and a report like `tinyml prepare`'s.

The server is Flower's gRPC server (`flwr.server.start_server`) in this process;
every client is a separate process (`tinyml federate-client`, Flower's
`start_client`) that connects to its address, so clients on other machines run
the same command with the server's address. Flower's simulation engine would
pull Ray, a cluster runtime far heavier than these models on 2 cores; the gRPC
route needs none.

flwr 1.42 marks start_server/start_client deprecated (still working) in favour
of its Deployment Runtime: a `flower-superlink` process, one `flower-supernode`
process per client (by address, so still real processes), and a Flower App
(pyproject.toml with [tool.flwr.app] components, a ServerApp and a ClientApp)
submitted with `flwr run`. Tried on this machine (outside the tree): it does
what this module needs (the legacy Strategy subclass below runs unchanged in a
ServerApp; a killed ClientApp is a round failure, a NaN update is dropped by
check_update), but the ServerApp runs in a process the SuperLink spawns (the
report must come back through files), every message starts a fresh
`flwr-clientapp` process that re-imports torch and reloads the data, the app is
packaged and installed under FLWR_HOME with a `flwr` config file naming the
SuperLink, and in a 1-round toy run with no fault injected one of three
replies failed as "Message Unavailable" at the 60 s round timeout (most likely
a ClientApp still importing torch on the loaded machine). Moving over is open
work (issue 19).

Robustness: Flower's strategy accepts failures (a client that dies mid-round is
a failure of that round, the others are aggregated), and every update is checked
before aggregation (same number of arrays, same shapes, all finite): a bad one
is dropped. The report lists each drop with its round and reason.

Data: each client takes its share of the training split (`--partition iid` or
`dirichlet:ALPHA`, deterministic from the seed). The server holds only the
validation split: per-round accuracy and int8 calibration. The test split is
only reported. Centralized training on the union of the clients' data with the
same number of epochs is the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinymlError

STRATEGIES = ("fedavg", "fedprox")
MIN_SAMPLES_PER_CLIENT = 2


@dataclass
class Partition:
    kind: str                  # "iid" | "dirichlet"
    alpha: float | None = None

    @classmethod
    def parse(cls, text: str) -> Partition:
        if text == "iid":
            return cls("iid")
        if text.startswith("dirichlet:"):
            try:
                alpha = float(text.split(":", 1)[1])
            except ValueError:
                alpha = -1.0
            if not alpha > 0:
                raise TinymlError(f"--partition {text}: the Dirichlet alpha must be a positive number (dirichlet:0.5)")
            return cls("dirichlet", alpha)
        raise TinymlError(f"unknown partition '{text}' (choose iid or dirichlet:ALPHA, e.g. dirichlet:0.5)")

    def __str__(self) -> str:
        return "iid" if self.kind == "iid" else f"dirichlet:{self.alpha:g}"


@dataclass
class FederateOptions:
    out: Path
    dataset: str = "digits"
    board: str = "stm32f405"
    clients: int = 8
    rounds: int = 10
    partition: str = "iid"
    strategy: str = "fedavg"
    local_epochs: int = 2
    proximal_mu: float = 0.01
    lr: float = 1e-2                    # a client runs few steps per round (its share of the data)
    seed: int = 0
    address: str = "127.0.0.1:0"       # port 0: pick a free one
    spawn_clients: bool = True          # False: wait for clients started elsewhere
    connect_timeout_s: float = 300.0
    round_timeout_s: float = 600.0
    # For tests and drills: client index -> round in which that client process kills itself
    # mid-fit, or sends a poisoned update ("nan" or "shape").
    kill_client_in_round: dict[int, int] = field(default_factory=dict)
    poison_client: dict[int, tuple[int, str]] = field(default_factory=dict)
    progress: bool = True


@dataclass
class ClientOptions:
    server: str
    client_id: int
    clients: int
    dataset: str = "digits"
    board: str = "stm32f405"
    partition: str = "iid"
    seed: int = 0
    die_in_round: int | None = None
    poison_round: int | None = None
    poison: str = "nan"


@dataclass
class FederateResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- data (no torch)


def partition_indices(y: np.ndarray, clients: int, partition: Partition, seed: int) -> list[np.ndarray]:
    """Each client's indices into the training split."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    shares: list[list[np.ndarray]] = [[] for _ in range(clients)]
    if partition.kind == "iid":
        for c in classes:
            for client, part in enumerate(np.array_split(rng.permutation(np.flatnonzero(y == c)), clients)):
                shares[client].append(part)
        return [np.sort(np.concatenate(s)) for s in shares]
    for _ in range(100):   # redraw until every client has a few samples
        shares = [[] for _ in range(clients)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(y == c))
            proportions = rng.dirichlet(np.full(clients, partition.alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(members)).astype(int)
            for client, part in enumerate(np.split(members, cuts)):
                shares[client].append(part)
        result = [np.sort(np.concatenate(s)) for s in shares]
        if min(len(r) for r in result) >= MIN_SAMPLES_PER_CLIENT:
            return result
    raise TinymlError(f"dirichlet:{partition.alpha:g} left a client with fewer than {MIN_SAMPLES_PER_CLIENT} samples "
                      f"in 100 draws: use fewer clients or a larger alpha")


def validate_federate(options: FederateOptions):
    """Every check that needs no training, before torch is imported; returns the splits."""
    from .boards import load_board
    from .data import load_dataset

    if options.strategy not in STRATEGIES:
        raise TinymlError(f"unknown strategy '{options.strategy}' (choose {', '.join(STRATEGIES)})")
    partition = Partition.parse(options.partition)
    if options.clients < 1 or options.rounds < 1 or options.local_epochs < 1:
        raise TinymlError("--clients, --rounds and --local-epochs must be at least 1")
    if options.proximal_mu < 0:
        raise TinymlError(f"--proximal-mu must be >= 0, got {options.proximal_mu}")
    for client in list(options.kill_client_in_round) + list(options.poison_client):
        if not 0 <= client < options.clients:
            raise TinymlError(f"client {client} does not exist (clients are 0..{options.clients - 1})")
    _split_address(options.address)
    load_board(options.board)
    splits = load_dataset(options.dataset, seed=options.seed)
    per_class = np.bincount(splits.y_train)
    rarest = int(np.argmin(per_class))
    if options.clients > int(per_class[rarest]):
        raise TinymlError(f"{options.clients} clients but class '{splits.labels[rarest]}' has only "
                          f"{int(per_class[rarest])} training samples: at most {int(per_class[rarest])} clients "
                          f"for {splits.name}")
    partition_indices(splits.y_train, options.clients, partition, options.seed)
    return splits


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise TinymlError(f"bad address '{address}' (expected HOST:PORT, e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- model (torch)


def _student(splits, board_name: str):
    from . import models
    from .boards import load_board
    from .budgets import largest_fitting_student

    config = largest_fitting_student(load_board(board_name), splits.input_shape, splits.num_classes)
    return config, models.build_student(config, splits.input_shape, splits.num_classes)


def _weight_names(model) -> list[str]:
    """The state entries exchanged: every float tensor (weights and BatchNorm statistics)."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point()]


def get_weights(model) -> list[np.ndarray]:
    state = model.state_dict()
    return [state[k].detach().cpu().numpy().copy() for k in _weight_names(model)]


def set_weights(model, weights: list[np.ndarray]) -> None:
    import torch

    state = model.state_dict()
    for name, value in zip(_weight_names(model), weights):
        state[name] = torch.from_numpy(np.asarray(value, np.float32).copy())
    model.load_state_dict(state)


def check_update(weights: list[np.ndarray], reference: list[np.ndarray]) -> str | None:
    """Why an update must not be aggregated, or None if it may."""
    if len(weights) != len(reference):
        return f"{len(weights)} arrays, expected {len(reference)}"
    for index, (w, r) in enumerate(zip(weights, reference)):
        if tuple(w.shape) != tuple(r.shape):
            return f"array {index} has shape {list(w.shape)}, expected {list(r.shape)}"
        if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
            return f"array {index} holds NaN, infinite or non-float values"
    return None


def train_local(model, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
                proximal_mu: float = 0.0) -> float:
    """Local epochs of AdamW on a client's data; with proximal_mu, FedProx's mu/2 ||w - w_global||^2."""
    import torch
    import torch.nn.functional as F

    from .distill import _batches, _random_shift, _nchw, torch_threads

    anchor = [p.detach().clone() for p in model.parameters()]
    images, labels = _nchw(x), torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    height, width = x.shape[1:3]
    max_shift = max(1, round(min(height, width) / 14))
    total, seen = 0.0, 0
    with torch_threads(1):
        model.train()
        for _ in range(epochs):
            for index in _batches(len(images), 32, generator):
                logits = model(_random_shift(images[index], max_shift, generator))
                loss = F.cross_entropy(logits, labels[index])
                if proximal_mu > 0:
                    loss = loss + proximal_mu / 2 * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, seen = total + loss.item() * len(index), seen + len(index)
    model.eval()
    return total / max(1, seen)


# ---------------------------------------------------------------- client process


def run_client(options: ClientOptions) -> None:
    """One Flower client: its share of the data, local training on request, until the server ends."""
    import flwr as fl

    from .data import load_dataset

    _split_address(options.server)
    splits = load_dataset(options.dataset, seed=options.seed)
    shares = partition_indices(splits.y_train, options.clients, Partition.parse(options.partition), options.seed)
    if not 0 <= options.client_id < len(shares):
        raise TinymlError(f"client id {options.client_id} outside 0..{len(shares) - 1}")
    mine = shares[options.client_id]
    x, y = splits.x_train[mine], splits.y_train[mine]
    _, model = _student(splits, options.board)

    class StudentClient(fl.client.NumPyClient):
        def get_parameters(self, config):
            return get_weights(model)

        def fit(self, parameters, config):
            server_round = int(config.get("server_round", 0))
            set_weights(model, parameters)
            if options.die_in_round is not None and server_round == options.die_in_round:
                os.kill(os.getpid(), 9)   # a crash mid-round: the process is gone, no reply is sent
            loss = train_local(model, x, y, int(config.get("local_epochs", 1)), float(config.get("lr", 3e-3)),
                               options.seed * 1000 + options.client_id * 31 + server_round,
                               float(config.get("proximal_mu", 0.0)))
            weights = get_weights(model)
            if options.poison_round is not None and server_round == options.poison_round:
                if options.poison == "nan":
                    weights = [np.full_like(w, np.nan) for w in weights]
                else:
                    weights = [w[..., :1] if w.ndim else w for w in weights]
            return weights, len(y), {"client_id": options.client_id, "train_loss": loss}

    fl.client.start_client(server_address=options.server, client=StudentClient().to_client(), insecure=True,
                           max_retries=None, max_wait_time=120.0)


# ---------------------------------------------------------------- server


def _checked_strategy(base: type, reference: list[np.ndarray], events: dict[str, Any], expected_clients: int,
                      connect_timeout_s: float):
    """A Flower strategy `base` (FedAvg, FedProx) that checks every update and records what it drops."""
    from flwr.common import parameters_to_ndarrays

    class Checked(base):  # type: ignore[misc, valid-type]
        def configure_fit(self, server_round, parameters, client_manager):
            if server_round == 1 and not client_manager.wait_for(expected_clients, timeout=int(connect_timeout_s)):
                events["connect_error"] = (f"only {client_manager.num_available()} of {expected_clients} clients "
                                           f"connected within {connect_timeout_s:.0f} s")
            clients = list(client_manager.all().values())
            instructions = super().configure_fit(server_round, parameters, client_manager)
            # Every connected client takes part in every round (Flower's sampling would wait for a fixed count).
            fit_ins = instructions[0][1] if instructions else None
            if fit_ins is None:
                return []
            fit_ins.config["server_round"] = server_round
            payload = sum(len(t) for t in parameters.tensors)
            events["bytes_sent"] += payload * len(clients)
            events["asked"][server_round] = [c.cid for c in clients]
            return [(c, fit_ins) for c in clients]

        def aggregate_fit(self, server_round, results, failures):
            kept = []
            answered = set()
            for proxy, fit_res in results:
                events["bytes_received"] += sum(len(t) for t in fit_res.parameters.tensors)
                client_id = fit_res.metrics.get("client_id")
                if client_id is not None:
                    events["names"][proxy.cid] = int(client_id)
                answered.add(proxy.cid)
                reason = check_update(parameters_to_ndarrays(fit_res.parameters), reference)
                if reason is None:
                    kept.append((proxy, fit_res))
                else:
                    events["dropped"].append({"round": server_round, "client": client_id, "reason": f"update rejected: {reason}"})
            for failure in failures:
                if isinstance(failure, BaseException):
                    continue   # named below from the clients that did not answer
                proxy, fit_res = failure
                answered.add(proxy.cid)
                events["dropped"].append({"round": server_round, "client": events["names"].get(proxy.cid),
                                          "reason": f"client reported failure: {fit_res.status.message}"})
            for cid in events["asked"].get(server_round, []):
                if cid not in answered:
                    events["dropped"].append({"round": server_round, "client": events["names"].get(cid),
                                              "reason": "no update: the client failed or disconnected mid-round"})
            events["kept"][server_round] = len(kept)
            if not kept:
                return None, {}
            return super().aggregate_fit(server_round, kept, [])

    return Checked


def _say(options: FederateOptions, text: str) -> None:
    if options.progress:
        print(f"[federate] {text}", flush=True)


def _client_command(options: FederateOptions, address: str, client_id: int) -> list[str]:
    command = [sys.executable, "-m", "tinyml.cli", "federate-client", "--server", address, "--client-id",
               str(client_id), "--clients", str(options.clients), "--dataset", options.dataset, "--board",
               options.board, "--partition", options.partition, "--seed", str(options.seed)]
    if client_id in options.kill_client_in_round:
        command += ["--die-in-round", str(options.kill_client_in_round[client_id])]
    if client_id in options.poison_client:
        round_, kind = options.poison_client[client_id]
        command += ["--poison-round", str(round_), "--poison", kind]
    return command


def federate(options: FederateOptions) -> FederateResult:
    splits = validate_federate(options)
    import flwr as fl
    from flwr.common import ndarrays_to_parameters

    from . import distill
    from .boards import load_board
    from .deploy import deploy_student, int8_accuracy, quantize_student
    from .fsutil import atomic_output_dir

    started = time.perf_counter()
    partition = Partition.parse(options.partition)
    board = load_board(options.board)
    config, model = _student(splits, options.board)
    distill._reset_parameters(model, options.seed)
    initial = get_weights(model)
    shares = partition_indices(splits.y_train, options.clients, partition, options.seed)
    host, port = _split_address(options.address)
    port = port or _free_port(host)
    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    _say(options, f"{splits.name}: {options.clients} clients ({partition}: {min(map(len, shares))}-"
                  f"{max(map(len, shares))} samples each), {options.rounds} rounds of {options.local_epochs} local "
                  f"epochs, {options.strategy}; student {config.name()}; server on {address}")

    history: list[dict[str, Any]] = []

    def evaluate(server_round: int, weights: list[np.ndarray], _config: dict) -> tuple[float, dict]:
        set_weights(model, weights)
        accuracy = distill.evaluate(model, splits.x_val, splits.y_val)
        history.append({"round": server_round, "val_accuracy": accuracy, "seconds": round(time.perf_counter() - started, 2)})
        if server_round:
            _say(options, f"round {server_round}: validation accuracy {accuracy:.2%}")
        return 1.0 - accuracy, {"accuracy": accuracy}

    events: dict[str, Any] = {"dropped": [], "bytes_sent": 0, "bytes_received": 0, "names": {}, "asked": {}, "kept": {}}
    base = fl.server.strategy.FedProx if options.strategy == "fedprox" else fl.server.strategy.FedAvg
    extra = {"proximal_mu": options.proximal_mu} if options.strategy == "fedprox" else {}
    strategy = _checked_strategy(base, initial, events, options.clients, options.connect_timeout_s)(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=1, min_evaluate_clients=0,
        min_available_clients=1, evaluate_fn=evaluate, accept_failures=True,
        initial_parameters=ndarrays_to_parameters(initial),
        on_fit_config_fn=lambda r: {"local_epochs": options.local_epochs, "lr": options.lr}, **extra)

    processes: list[subprocess.Popen] = []
    logs_dir = Path(options.out).parent / f".{Path(options.out).name}.client-logs"
    try:
        if options.spawn_clients:
            logs_dir.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "GRPC_VERBOSITY": "ERROR"}
            for client_id in range(options.clients):
                log = open(logs_dir / f"client{client_id}.log", "w")
                processes.append(subprocess.Popen(_client_command(options, address, client_id), stdout=log,
                                                  stderr=subprocess.STDOUT, env=env))
                log.close()
        else:
            _say(options, f"waiting for {options.clients} clients: `tinyml federate-client --server {address} ...`")
        fl.server.start_server(server_address=address, strategy=strategy,
                               config=fl.server.ServerConfig(num_rounds=options.rounds,
                                                             round_timeout=options.round_timeout_s))
    finally:
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if events.get("connect_error"):
        raise TinymlError(events["connect_error"])
    exit_codes = {i: p.returncode for i, p in enumerate(processes)}
    final = history[-1]
    if not any(events["kept"].values()):
        raise TinymlError("no client update was accepted in any round: nothing was trained")
    federated_seconds = round(time.perf_counter() - started, 2)

    _say(options, f"centralized reference: {options.rounds * options.local_epochs} epochs on the union of the clients' data")
    from . import models

    t = time.perf_counter()
    central = models.build_student(config, splits.input_shape, splits.num_classes)
    distill._reset_parameters(central, options.seed)
    train_local(central, splits.x_train, splits.y_train, options.rounds * options.local_epochs, options.lr, options.seed)
    central_seconds = round(time.perf_counter() - t, 2)

    with atomic_output_dir(Path(options.out), keep_existing=False) as tmp:
        scratch = tmp / ".central"
        scratch.mkdir()
        central_bytes = quantize_student(central, splits.input_shape, splits.x_val, scratch)
        central_int8 = int8_accuracy(central_bytes, splits.x_test, splits.y_test)
        shutil.rmtree(scratch)
        deployed = deploy_student(model, splits.input_shape, list(splits.labels), splits.x_val, splits.x_test,
                                  splits.y_test, board, tmp, {"dataset": splits.name, "student": config.name(),
                                                              "federated": {"clients": options.clients,
                                                                            "rounds": options.rounds}})
        report: dict[str, Any] = {
            "dataset": splits.name, "board": board.name, "student": config.name(), "clients": options.clients,
            "rounds": options.rounds, "local_epochs": options.local_epochs, "partition": str(partition),
            "strategy": options.strategy, "proximal_mu": options.proximal_mu if options.strategy == "fedprox" else None,
            "server_address": address, "engine": "flwr gRPC (start_server / start_client), one process per client",
            "flwr_version": fl.__version__,
            "client_samples": [int(len(s)) for s in shares],
            "rounds_history": history,
            "accepted_updates": {str(k): v for k, v in events["kept"].items()},
            "dropped": events["dropped"],
            "client_exit_codes": {str(k): v for k, v in exit_codes.items()},
            "bytes_sent": events["bytes_sent"], "bytes_received": events["bytes_received"],
            "bytes_exchanged": events["bytes_sent"] + events["bytes_received"],
            "federated_float_accuracy": distill.evaluate(model, splits.x_test, splits.y_test),
            "federated_int8_accuracy": deployed.int8_accuracy,
            "centralized_float_accuracy": distill.evaluate(central, splits.x_test, splits.y_test),
            "centralized_int8_accuracy": central_int8,
            "final_val_accuracy": final["val_accuracy"],
            "model_sha256": deployed.sha256, "flash_bytes": deployed.flash_bytes, "arena_bytes": deployed.arena_bytes,
            "params": deployed.params, "macs": deployed.macs,
            "federated_seconds": federated_seconds, "centralized_seconds": central_seconds,
        }
        report["gap_points"] = round(100 * (report["centralized_int8_accuracy"] - report["federated_int8_accuracy"]), 2)
        report["wall_seconds"] = round(time.perf_counter() - started, 2)
        files = deployed.files + write_federate_report(tmp, report)
    shutil.rmtree(logs_dir, ignore_errors=True)
    _say(options, f"federated int8 {report['federated_int8_accuracy']:.2%}, centralized int8 "
                  f"{report['centralized_int8_accuracy']:.2%}; {len(report['dropped'])} update(s) dropped; "
                  f"{report['bytes_exchanged']:,} B exchanged -> {options.out}")
    return FederateResult(Path(options.out), report, files)


def write_federate_report(directory: Path, report: dict[str, Any]) -> list[str]:
    from .plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    rounds = [h["round"] for h in report["rounds_history"]]
    ax.plot(rounds, [h["val_accuracy"] for h in report["rounds_history"]], marker="o", label="federated (validation)")
    ax.axhline(report["centralized_float_accuracy"], color="#999999", linestyle="--", label="centralized (test, float)")
    for drop in report["dropped"]:
        ax.axvline(drop["round"], color="#ee6677", alpha=0.4)
    ax.set_xlabel("round (red: an update was dropped)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report['strategy']}, {report['clients']} clients, {report['partition']}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(directory / "round_accuracy.png", dpi=110)
    plt.close(fig)

    def pct(v: float) -> str:
        return f"{100 * v:.2f}%"

    lines = [
        f"# tinyml federate: {report['dataset']}, {report['clients']} clients, {report['partition']}, {report['strategy']}",
        "",
        f"Flower {report['flwr_version']} ({report['engine']}), {report['rounds']} rounds of {report['local_epochs']} "
        f"local epochs; student `{report['student']}` for {report['board']}.",
        "",
        "| model | test float | test int8 (TFLite-Micro) |",
        "| --- | --- | --- |",
        f"| federated | {pct(report['federated_float_accuracy'])} | {pct(report['federated_int8_accuracy'])} |",
        f"| centralized, same data and epochs | {pct(report['centralized_float_accuracy'])} | "
        f"{pct(report['centralized_int8_accuracy'])} |",
        "",
        f"Gap: {report['gap_points']:.2f} points. Bytes exchanged (weight payloads): {report['bytes_sent']:,} sent, "
        f"{report['bytes_received']:,} received, {report['bytes_exchanged']:,} in all.",
        "",
        "## Dropped updates",
        "",
    ]
    if report["dropped"]:
        lines += ["| round | client | reason |", "| --- | --- | --- |"]
        lines += [f"| {d['round']} | {d['client'] if d['client'] is not None else 'unknown'} | {d['reason']} |"
                  for d in report["dropped"]]
    else:
        lines.append("None.")
    lines += ["", "| round | validation accuracy |", "| --- | --- |"]
    lines += [f"| {h['round']} | {pct(h['val_accuracy'])} |" for h in report["rounds_history"]]
    lines += ["", "![round_accuracy.png](round_accuracy.png)", ""]
    (directory / "report.json").write_text(json.dumps({**report, "plots": ["round_accuracy.png"]}, indent=2) + "\n")
    (directory / "report.md").write_text("\n".join(lines))
    return ["report.json", "report.md", "round_accuracy.png"]
