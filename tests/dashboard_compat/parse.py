"""Reads a folder of results files as the original tool's dashboard does, and prints what it saw.

Written for this project's tests from what the dashboard of huggingface/inference-benchmarker
v1.1.0 (extra/dashboard/parse_results.py and app.py) does to a file, step by step:

- every *.json in the folder and in its sub-folders (one level down);
- per file: config.meta (null counts as empty), config.model_name, config.run_id;
- per entry of results: pandas.json_normalize(entry) as one record, the meta keys engine, tp,
  version and device, model and run_id added, made a one-row DataFrame (this is where a list
  inside an entry fails), 'config.' stripped from column names, dots turned into underscores;
- all rows concatenated; error_rate, prompt_tokens and decoded_tokens computed;
- the app's view: rows whose id is neither warmup nor throughput and whose executor_type is
  ConstantArrivalRate, and its summary table grouped by model, run_id and rate.

Usage: parse.py FOLDER. Prints one JSON object: rows, plotted, summary, columns, and
mixed_columns (columns whose values are of more than one kind: the dashboard's parquet file
could not store them).
"""

import json
import os
import sys

import pandas as pd

META_KEYS = ["engine", "tp", "version", "device"]
SUMMARY_METRICS = [
    "inter_token_latency_ms_p90",
    "time_to_first_token_ms_p90",
    "e2e_latency_ms_p90",
    "token_throughput_secs",
    "successful_requests",
    "error_rate",
]


def rows_of_file(path):
    with open(path) as f:
        data = json.load(f)
    meta = data["config"]["meta"] or {}
    frames = []
    for result in data["results"]:
        entry = pd.json_normalize(result).to_dict(orient="records")[0]
        for key in META_KEYS:
            if key in meta:
                entry[key] = meta[key]
        entry["model"] = data["config"]["model_name"]
        entry["run_id"] = data["config"]["run_id"]
        frame = pd.DataFrame(entry, index=[0])
        frame = frame.rename(columns={c: c.split("config.")[-1] for c in frame.columns})
        frame.columns = [c.replace(".", "_") for c in frame.columns]
        frames.append(frame)
    return frames


def results_frame(folder):
    folders = [os.path.join(folder, d) for d in os.listdir(folder)
               if os.path.isdir(os.path.join(folder, d))] + [folder]
    frames = []
    for d in folders:
        for name in sorted(os.listdir(d)):
            if name.endswith(".json"):
                frames.extend(rows_of_file(os.path.join(d, name)))
    df = pd.concat(frames)
    if "device" not in df.columns:
        df["device"] = None
    df["error_rate"] = df["failed_requests"] / (df["failed_requests"] + df["successful_requests"]) * 100.0
    df["prompt_tokens"] = df["total_tokens_sent"] / df["successful_requests"]
    df["decoded_tokens"] = df["total_tokens"] / df["successful_requests"]
    return df


def kinds(series):
    """The kinds of the non-null values: a parquet column holds one."""
    found = set()
    for v in series.dropna():
        if isinstance(v, bool):
            found.add("bool")
        elif isinstance(v, (int, float)):
            found.add("number")
        elif isinstance(v, str):
            found.add("string")
        else:
            found.add(type(v).__name__)
    return found


def main():
    df = results_frame(sys.argv[1])
    plotted = df[(df["id"] != "warmup") & (df["id"] != "throughput")]
    plotted = plotted[plotted["executor_type"] == "ConstantArrivalRate"]
    summary = plotted.groupby(["model", "run_id", "rate"]).agg(
        {m: "mean" for m in SUMMARY_METRICS}).reset_index()
    out = {
        "columns": list(df.columns),
        "mixed_columns": sorted(c for c in df.columns
                                if df[c].dtype == object and len(kinds(df[c])) > 1),
        "rows": json.loads(df.to_json(orient="records")),
        "plotted": json.loads(plotted.to_json(orient="records")),
        "summary": json.loads(summary.to_json(orient="records")),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
