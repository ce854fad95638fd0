"""``python -m nimble_oke.sim.nim [--host H] [--port P] [--model M] [--gpu G] [--warm]``."""

from __future__ import annotations

import argparse

from nimble_oke.sim.nim.serve import serve_nim


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nimble_oke.sim.nim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--gpu", default="A10")
    parser.add_argument("--engine", default="emulator", choices=("emulator", "llama-cpp"))
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--cache-path", default=None)
    parser.add_argument("--zero-delay", action="store_true", help="no serving delays")
    parser.add_argument(
        "--nim-release", default=None, help="NIM release to behave as (1.x or 2.x; default 2.x)"
    )
    args = parser.parse_args(argv)
    serve_nim(
        args.host,
        args.port,
        args.model,
        args.gpu,
        args.engine,
        args.warm,
        args.cache_path,
        zero_delay=args.zero_delay,
        nim_release=args.nim_release,
    )


if __name__ == "__main__":
    main()
