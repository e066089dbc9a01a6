# A notebook-style walk-through of the DSG Python client: run each cell (# %%) in Jupyter, VS Code or as a script.
# Needs a running grid (`npm start` or `dsg up` in another terminal) and the client: pip install ./python
# Run:  python3 examples/python/walkthrough.py

# %% Connect: the same settings the dsg CLI uses (dsg up wrote them to ~/.config/dsg/config.json)
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))  # the checkout's client, if not installed
from dsg_client import Client, JobFailed

grid = Client()
print("grid:", grid.base_url, "—", grid.health()["nodesOnline"], "node(s) online")

# %% A parameter sweep: 8 tasks, each estimating pi with its own seed, results as JSON files
here = Path(__file__).resolve().parent
spec = {
    "name": "pi-from-python",
    "script": 'python3 pi/pi.py --seed "$DSG_TASK_INDEX" --samples 200000 > "pi-$DSG_TASK_INDEX.json"',
    "array": 8,
    "resources": {"cpu": 1, "memory": "128Mi"},
    "inputs": ["../pi/pi.py"],          # relative to base_dir; placed at pi/pi.py in each task's working dir
    "outputs": ["pi-*.json"],
    "timeout": "5m",
}
job = grid.submit(spec, base_dir=here)
print("submitted", job["id"], "with", job["taskCount"], "tasks")

# %% Wait, with progress
def progress(j):
    c = j["counts"]
    print(f"  {c['succeeded']}/{j['taskCount']} done, {c['running']} running", end="\r")

try:
    job = grid.wait(job["id"], on_progress=progress, poll=0.5)
except JobFailed as e:
    print("\nthe job failed:", e.job["state"], "— first task's log:\n", grid.logs(e.job["id"], task=0))
    raise
print("\nfinished:", job["state"])

# %% Collect the results and combine them
import json
import tempfile

out = Path(tempfile.mkdtemp(prefix="dsg-pi-"))
files = grid.download_outputs(job["id"], out)
estimates = [json.loads(f.read_text())["pi"] for f in files]
print(f"{len(files)} results in {out}; pi ≈ {sum(estimates) / len(estimates):.4f}")

# %% A task's log, as the task wrote it
print(grid.logs(job["id"], task=0) or "(task 0 wrote nothing to stdout/stderr)")
