"""Human-readable tables for the CLI (JSON output is produced elsewhere, unformatted)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def metrics_tables(result: dict[str, Any]) -> list[Table]:
    head = Table(title=f"evaluation ({result.get('split', 'data')}: {result['n']} examples)", show_header=False)
    head.add_row("accuracy", f"{result['accuracy']:.4f}")
    head.add_row("macro F1", f"{result['macro_f1']:.4f}")
    per = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, m in result["per_class"].items():
        per.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    conf = Table(title="confusion (rows: true, columns: predicted)")
    labels = result["confusion"]["labels"]
    conf.add_column("")
    for lab in labels:
        conf.add_column(lab, justify="right")
    for lab, row in zip(labels, result["confusion"]["matrix"], strict=True):
        conf.add_row(lab, *[str(v) for v in row])
    return [head, per, conf]


def predictions_table(preds: list[dict[str, Any]]) -> Table:
    table = Table()
    table.add_column("input", overflow="fold")
    table.add_column("label")
    table.add_column("probability", justify="right")
    table.add_column("runners-up")
    for p in preds:
        top = p["top"]
        table.add_row(str(p["input"]), top[0]["label"], f"{top[0]['probability']:.3f}",
                      ", ".join(f"{t['label']} {t['probability']:.3f}" for t in top[1:]))
    return table


def backbones_table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for col in ("name", "modality", "features", "params (M)", "offline", "note"):
        table.add_column(col, justify="right" if col in ("features", "params (M)") else "left")
    for r in rows:
        table.add_row(r["name"], r["modality"], str(r["feature_dim"]), f"{r['params_m']:.1f}",
                      "yes" if r["offline"] else "no", r["note"])
    return table


def groups_table(groups: dict[str, Any]) -> Table:
    """Per-group accuracy and macro F1 with their bootstrap confidence intervals."""
    level = 1 - groups.get("settings", {}).get("alpha", 0.05)
    table = Table(title=f"per group ({level:.0%} bootstrap intervals)")
    for col in ("group", "n", "accuracy", "macro F1", "ECE", "note"):
        table.add_column(col, justify="left" if col in ("group", "note") else "right")
    calib = (groups.get("calibration") or {}).get("per_group", {})
    for name, g in groups["groups"].items():
        acc, f1 = g["accuracy"], g["macro_f1"]
        ece = calib.get(name, {}).get("ece")
        table.add_row(name, str(g["n"]), f"{acc['value']:.3f} [{acc['ci'][0]:.3f}, {acc['ci'][1]:.3f}]",
                      f"{f1['value']:.3f} [{f1['ci'][0]:.3f}, {f1['ci'][1]:.3f}]",
                      "" if ece is None else f"{ece:.3f}", "" if g["judged"] else "too small to judge")
    return table


def finding_line(finding: dict[str, Any]) -> str:
    advice = f"\n  what to do: {finding['advice']}" if finding.get("advice") else ""
    return f"[{finding['severity']}] {finding['code']}: {finding['message']}{advice}"
