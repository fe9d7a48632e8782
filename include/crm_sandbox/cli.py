"""``crm-sandbox``: run the Salesforce and HubSpot emulators, point clients at them, make data.

Commands (DESIGN.md, "Contract")::

    crm-sandbox serve --salesforce-port P --hubspot-port Q [--scenario FILE|NAME] [limits...]
    crm-sandbox connections --salesforce-port P --hubspot-port Q     # eval "$(...)"
    crm-sandbox generate --seed S --accounts N [...] [--output FILE]
    crm-sandbox stats --salesforce-port P --hubspot-port Q [--json]
    crm-sandbox reset --salesforce-port P --hubspot-port Q
    crm-sandbox check FILE|NAME                                       # validate, print counts

``serve`` and ``connections`` are separate processes that agree on the CA bundle's location
through :func:`crm_sandbox.tls.tls_dir_for_port`, so a shell, the demo or CI can start the
sandbox once and configure any number of clients from the ports alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from crm_sandbox.tls import ca_bundle_for_port

#: The line ``serve`` prints (and flushes) once both emulators accept connections.
READY_PREFIX = "crm-sandbox ready:"


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return value


def _add_ports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--salesforce-port", type=_port, required=True, help="Salesforce emulator port (HTTPS)"
    )
    parser.add_argument("--hubspot-port", type=_port, required=True, help="HubSpot emulator port (HTTP)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-sandbox",
        description="Local Salesforce and HubSpot emulators for crm-sync, reached through the real clients.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run both emulators on 127.0.0.1 until SIGTERM/SIGINT")
    _add_ports(serve)
    serve.add_argument(
        "--scenario", help="scenario JSON file, or the name of a bundled one (e.g. demo); default: empty org"
    )
    serve.add_argument("--hubspot-requests-per-10s", type=_positive, help="HubSpot burst limit (default 190)")
    serve.add_argument("--hubspot-search-per-second", type=_positive, help="HubSpot search limit (default 5)")
    serve.add_argument(
        "--salesforce-daily-api-limit", type=_positive, help="Salesforce daily API request limit"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default 127.0.0.1; 0.0.0.0 to serve other hosts, e.g. in docker-compose)",
    )
    serve.add_argument(
        "--tls-hostname",
        action="append",
        default=[],
        metavar="NAME",
        help="extra name for the Salesforce certificate (repeatable), e.g. the compose service name",
    )

    conn = sub.add_parser("connections", help="print the export lines that point Airflow and requests here")
    _add_ports(conn)
    conn.add_argument(
        "--session-id", default="sandbox-session", help="Salesforce session id to put in the conn"
    )
    conn.add_argument("--token", default="sandbox-token", help="HubSpot access token to put in the conn")

    gen = sub.add_parser("generate", help="write a deterministic scenario at any scale")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--accounts", type=_non_negative, required=True)
    gen.add_argument("--contacts-per-account", type=_non_negative, default=3)
    gen.add_argument("--leads", type=_non_negative, help="default: --accounts")
    gen.add_argument("--opportunities", type=_non_negative, help="default: 2 x --accounts")
    gen.add_argument("--record-types", type=_non_negative, default=3, help="Opportunity record types")
    gen.add_argument("--hubspot-companies", type=_non_negative, help="default: --accounts / 2")
    gen.add_argument("--hubspot-contacts", type=_non_negative, help="default: contacts / 2")
    gen.add_argument("--hubspot-deals", type=_non_negative, help="default: opportunities / 2")
    gen.add_argument("--linked-fraction", type=_fraction, default=0.4, help="share of HubSpot records linked")
    gen.add_argument("--duplicate-fraction", type=_fraction, default=0.02, help="share of duplicate Accounts")
    gen.add_argument("--users", type=_positive, help="Salesforce users (default: accounts / 100, 6..2000)")
    gen.add_argument("--org-domain", default=None, help="email domain of users (default northwind-demo.com)")
    gen.add_argument(
        "--as-of", default=None, help="latest timestamp in the data (default 2026-03-31T00:00:00Z)"
    )
    gen.add_argument("--start", default=None, help="earliest created date (default 2019-01-01T00:00:00Z)")
    gen.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")

    for name, text in (("stats", "print request counts of a running sandbox"), ("reset", "reseed it")):
        cmd = sub.add_parser(name, help=text)
        _add_ports(cmd)
        if name == "stats":
            cmd.add_argument("--json", action="store_true", help="print the raw JSON of both emulators")

    check = sub.add_parser("check", help="validate a scenario file and print its record counts")
    check.add_argument("scenario", help="scenario JSON file, or a bundled scenario name")
    return parser


# ------------------------------------------------------------------------------------------------
# serve
# ------------------------------------------------------------------------------------------------


def _port_in_use(port: int) -> bool:
    """True if something already listens on 127.0.0.1:port (checked the way uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _serve(args: argparse.Namespace) -> int:
    from crm_sandbox.scenario import load_scenario, record_counts
    from crm_sandbox.server import running_sandbox

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(signum).name
        print(f"crm-sandbox: {name} received, shutting down (again to force)", file=sys.stderr, flush=True)
        # A second signal takes the default action, so a stuck shutdown or a long load can be cut.
        signal.signal(signum, signal.SIG_DFL)
        stop.set()

    # Installed before the (possibly long) scenario load, so an early SIGTERM still exits 0.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    if args.salesforce_port == args.hubspot_port:
        return _error("--salesforce-port and --hubspot-port must differ")
    for flag, port in (("--salesforce-port", args.salesforce_port), ("--hubspot-port", args.hubspot_port)):
        # Checked before the TLS files are written: they live in a folder named after the port,
        # and overwriting them would break the clients of a sandbox already running there.
        if _port_in_use(port):
            return _error(f"{flag} {port} is already in use on 127.0.0.1")

    scenario: dict[str, Any] = {}
    if args.scenario:
        started = time.perf_counter()
        scenario = load_scenario(args.scenario)
        counts = ", ".join(f"{k}={v}" for k, v in record_counts(scenario).items()) or "no records"
        print(
            f"crm-sandbox: loaded {args.scenario} in {time.perf_counter() - started:.1f}s ({counts})",
            file=sys.stderr,
            flush=True,
        )
    options: dict[str, dict[str, Any]] = {"salesforce": {}, "hubspot": {}}
    if args.hubspot_requests_per_10s is not None:
        options["hubspot"]["requests_per_10s"] = args.hubspot_requests_per_10s
    if args.hubspot_search_per_second is not None:
        options["hubspot"]["search_per_second"] = args.hubspot_search_per_second
    if args.salesforce_daily_api_limit is not None:
        options["salesforce"]["daily_api_limit"] = args.salesforce_daily_api_limit
    if stop.is_set():
        return 0

    with contextlib.ExitStack() as stack:
        try:
            endpoints = stack.enter_context(
                running_sandbox(
                    scenario,
                    salesforce_port=args.salesforce_port,
                    hubspot_port=args.hubspot_port,
                    options=options,
                    host=args.host,
                    tls_hostnames=args.tls_hostname,
                )
            )
        except RuntimeError as exc:  # a server that could not bind or start
            return _error(str(exc))
        except ValueError as exc:  # an emulator rejected the scenario's content
            return _error(f"scenario rejected by an emulator: {exc}")
        del scenario  # drop our reference; each emulator keeps its seed for /__sandbox/reset
        print(
            f"{READY_PREFIX} salesforce={endpoints.salesforce_url} hubspot={endpoints.hubspot_url} "
            f"ca_bundle={endpoints.ca_bundle}",
            flush=True,
        )
        print(
            f'crm-sandbox: configure clients with: eval "$(crm-sandbox connections --salesforce-port '
            f'{endpoints.salesforce_port} --hubspot-port {endpoints.hubspot_port})"',
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    print("crm-sandbox: stopped", file=sys.stderr, flush=True)
    return 0


# ------------------------------------------------------------------------------------------------
# connections, stats, reset
# ------------------------------------------------------------------------------------------------


def connection_lines(salesforce_port: int, hubspot_port: int, session_id: str, token: str) -> list[str]:
    """The ``export NAME='value'`` lines, shell-quoted so ``eval "$(...)"`` sets them exactly."""
    from crm_sandbox.server import connection_env

    env = connection_env(
        salesforce_port, hubspot_port, ca_bundle_for_port(salesforce_port), session_id, token
    )
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def _connections(args: argparse.Namespace) -> int:
    for line in connection_lines(args.salesforce_port, args.hubspot_port, args.session_id, args.token):
        print(line)
    bundle = ca_bundle_for_port(args.salesforce_port)
    if not bundle.exists():
        print(
            f"crm-sandbox: note: {bundle} does not exist yet; it is written when "
            f"`crm-sandbox serve --salesforce-port {args.salesforce_port}` starts",
            file=sys.stderr,
        )
    return 0


def _control(port: int, path: str, *, https: bool, ca_port: int, method: str = "GET") -> Any:
    """Call a ``/__sandbox/`` endpoint of one emulator and return its JSON."""
    scheme = "https" if https else "http"
    url = f"{scheme}://127.0.0.1:{port}/__sandbox/{path}"
    request = urllib.request.Request(url, method=method, data=None if method == "GET" else b"")  # noqa: S310
    context = ssl.create_default_context(cafile=str(ca_bundle_for_port(ca_port))) if https else None
    with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
        return json.loads(response.read())


def _both(args: argparse.Namespace, path: str, method: str) -> dict[str, Any]:
    return {
        "salesforce": _control(
            args.salesforce_port, path, https=True, ca_port=args.salesforce_port, method=method
        ),
        "hubspot": _control(
            args.hubspot_port, path, https=False, ca_port=args.salesforce_port, method=method
        ),
    }


def _stats(args: argparse.Namespace) -> int:
    result = _both(args, "stats", "GET")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for api, stats in result.items():
        statuses = ", ".join(f"{k}: {v}" for k, v in stats.get("by_status", {}).items()) or "-"
        print(f"{api}: {stats.get('total', 0)} requests (status {statuses})")
        rows = sorted(stats.get("requests", []), key=lambda r: -int(r["count"]))
        for row in rows[:15]:
            print(f"  {row['count']:>8}  {row['method']:<6} {row['path']}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    _both(args, "reset", "POST")
    print("crm-sandbox: both emulators reset to their scenario")
    return 0


# ------------------------------------------------------------------------------------------------
# generate, check
# ------------------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from crm_sandbox.generate import GeneratorConfig, generate, generate_file

    overrides = {
        key: value
        for key, value in (("org_domain", args.org_domain), ("as_of", args.as_of), ("start", args.start))
        if value is not None
    }
    config = GeneratorConfig(
        seed=args.seed,
        accounts=args.accounts,
        contacts_per_account=args.contacts_per_account,
        leads=args.leads,
        opportunities=args.opportunities,
        record_types=args.record_types,
        hubspot_companies=args.hubspot_companies,
        hubspot_contacts=args.hubspot_contacts,
        hubspot_deals=args.hubspot_deals,
        linked_fraction=args.linked_fraction,
        duplicate_fraction=args.duplicate_fraction,
        users=args.users,
        **overrides,
    )
    try:
        config.resolved()  # fail on bad options (the message names the option) before writing
    except ValueError as exc:
        return _error(str(exc))
    started = time.perf_counter()
    counts = generate_file(config, args.output) if args.output else generate(config, sys.stdout)
    sys.stdout.flush()
    total = sum(counts.values())
    summary = ", ".join(f"{k}={v}" for k, v in counts.items())
    where = args.output or "stdout"
    print(
        f"crm-sandbox: wrote {total} records to {where} in {time.perf_counter() - started:.1f}s ({summary})",
        file=sys.stderr,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from crm_sandbox.scenario import load_scenario, record_counts

    scenario = load_scenario(args.scenario)
    for key, count in record_counts(scenario).items():
        print(f"{key}: {count}")
    return 0


# ------------------------------------------------------------------------------------------------


def _error(message: str) -> int:
    print(f"crm-sandbox: error: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crm-sandbox`` console script; returns the exit status."""
    from crm_sandbox.scenario import ScenarioError

    args = build_parser().parse_args(argv)
    commands = {
        "serve": _serve,
        "connections": _connections,
        "generate": _generate,
        "stats": _stats,
        "reset": _reset,
        "check": _check,
    }
    try:
        return commands[args.command](args)
    except ScenarioError as exc:
        return _error(str(exc))
    except urllib.error.URLError as exc:
        return _error(f"no sandbox answering on those ports ({exc.reason})")
    except BrokenPipeError:  # e.g. `crm-sandbox generate ... | head`
        return 1


if __name__ == "__main__":
    sys.exit(main())
