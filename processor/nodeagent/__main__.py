"""`python -m processor.nodeagent --kubeconfig FILE --workdir DIR`: run the pods the
scheduler binds to this node as local processes, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from processor.nodeagent.agent import AgentSettings, NodeAgent
from processor.nodeagent.image import DockerfileError, read_image_config
from processor.nodeagent.kubeapi import KubeApi, read_kubeconfig
from votecontract.jsonlog import configure_logging

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m processor.nodeagent", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--node-name", default="local-node")
    parser.add_argument(
        "--image-repository",
        default="vote-pipeline",
        help="the image that maps to this virtualenv (any tag)",
    )
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("text")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per API call otherwise
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        image = read_image_config(args.dockerfile)
    except (OSError, DockerfileError) as error:
        print(f"nodeagent: {error}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    api = KubeApi(read_kubeconfig(args.kubeconfig, args.workdir))
    settings = AgentSettings(
        args.node_name, args.workdir, args.image_repository, poll_s=args.poll_interval
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger(__name__).info(
        "node %s: running pods of %s", args.node_name, args.image_repository
    )
    NodeAgent(api, settings, image).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
