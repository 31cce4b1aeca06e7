"""A small package with CLI flags, env variables and metric names, for surface tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

V1 = {
    "demo/__init__.py": "",
    "demo/prometheus_names.py": """
        class frontend_service:
            REQUESTS_TOTAL = "requests_total"
            class operation:
                TOKENIZE = "tokenize"
        class kvbm:
            HITS = "kvbm_hits"
        """,
    "demo/common/__init__.py": "",
    "demo/common/utils.py": """
        import os
        def add_argument(parser, *, flag_name, env_var, default, help, obsolete_flag=None,
                         arg_type=str, **kwargs):
            parser.add_argument(flag_name, default=os.environ.get(env_var, default), help=help)
        def add_negatable_bool_argument(parser, *, flag_name, env_var, default, help):
            add_argument(parser, flag_name=flag_name, env_var=env_var, default=default,
                         help=help, arg_type=None)
        TIMEOUT = os.environ.get("DYN_HTTP_TIMEOUT", "30")
        """,
    "demo/common/router.py": """
        import argparse
        from demo.common.utils import add_argument, add_negatable_bool_argument
        def add_router(g):
            add_argument(g, flag_name="--router-mode", env_var="DYN_ROUTER_MODE",
                         default="round-robin", help="How to route.",
                         choices=["round-robin", "random", "kv"])
            add_negatable_bool_argument(g, flag_name="--kv-events",
                                        env_var="DYN_KV_EVENTS", default=True,
                                        help="Listen to KV events.")
            add_argument(g, flag_name="--kv-block-size", env_var="DYN_KV_BLOCK_SIZE",
                         obsolete_flag="--block-size", default=16, arg_type=int,
                         help="[BETA] KV block size.")
            g.add_argument("--legacy", help=argparse.SUPPRESS)
        """,
    "demo/frontend/__init__.py": "",
    "demo/frontend/__main__.py": """
        import argparse, os
        from demo.common import router
        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--http-port", "-p", type=int, default=8000, help="HTTP port.")
            p.add_argument("--mode", choices=("a", "b"), default="a",
                           help="[EXPERIMENTAL] Mode.")
            for side in ("in", "out"):
                p.add_argument(f"--{side}-bandwidth", type=float, help="Bandwidth.")
            p.add_argument("--old-flag", dest="target", help="Deprecated: use --target.")
            router.add_router(p)
            if os.environ.get("DYN_EXPERIMENTAL_FAST"):
                pass
        """,
    "demo/mocker/__init__.py": "",
    "demo/mocker/__main__.py": """
        import argparse
        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--speedup-ratio", type=float, default=1.0, help="Speed up.")
        """,
    "demo/tests/test_x.py": """
        import os
        os.environ["DYN_TEST_ONLY"] = "1"
        """,
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root
