"""Import every DAG file under a Python audit hook and print what the imports touched (JSON).

Run as a subprocess by test_dag_integrity.py. Airflow itself is imported first, so only what the
DAG files (and what they import) do at parse time is recorded: network, databases, processes,
files opened for writing or data files read, and secrets (connection/variable) lookups.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task
from airflow.sdk.definitions._internal.contextmanager import DagContext

# Warm Airflow up first, so its own lazy imports (timetables, croniter, ...) are not charged to
# the DAG files: build and discard a DAG that uses the same features.
with DAG("warm_up", schedule="@hourly", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    task(lambda: None, task_id="noop")()

EVENTS = {
    "socket.connect",
    "socket.getaddrinfo",
    "sqlite3.connect",
    "subprocess.Popen",
    "os.system",
    "crm_sync.secrets_lookup",
    "urllib.Request",
}
CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth", ".typed")
seen: list[list[str]] = []
state = {"recording": False}


def hook(event: str, args: tuple[object, ...]) -> None:
    if not state["recording"]:
        return
    if event in EVENTS:
        seen.append([event, repr(args)[:200]])
    elif event == "open" and args:
        path, mode = str(args[0]), str(args[1]) if len(args) > 1 else "r"
        writing = any(flag in mode for flag in "wax+")
        if writing or (not path.endswith(CODE_SUFFIXES) and not Path(path).is_dir()):
            seen.append([event, f"{path} ({mode})"])


def main() -> None:
    dag_dir = Path(sys.argv[1])
    sys.addaudithook(hook)
    modules = {}
    for path in sorted(dag_dir.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        DagContext.current_autoregister_module_name = spec.name
        state["recording"] = True
        try:
            spec.loader.exec_module(module)
        finally:
            state["recording"] = False
        modules[path.name] = sorted(
            dag.dag_id for dag, mod in DagContext.autoregistered_dags if mod is module
        )
    print(json.dumps({"events": seen, "modules": modules}))


if __name__ == "__main__":
    main()
